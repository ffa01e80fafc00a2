"""Nothing lost, nothing mixed, never a traceback: corpus and CLI integrity under wrong, changed
and hostile input (docs/integrity.md).

The user meets these through the command line, so most checks run it in a subprocess. To keep
the suite fast, one subprocess (``DRIVER``) runs several commands one after another through
``jaxsim.cli.main``, as the ``jaxsim`` script does, and reports each one's exit status, stdout
and stderr (an exception escaping ``main`` is printed as the traceback a user would see).
Arguments that must be raw bytes, Ctrl-C and concurrent runs use their own processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import load_file, save_file

import jaxsim
from jaxsim.corpus import iter_records, run
from jaxsim.corpus.io import BadRow, iter_rows
from jaxsim.corpus.shards import finished_shards, part_path, write_manifest
from jaxsim.errors import InputTextError, NoContentError, WeightsError
from tests.test_corpus import ids_in, synthetic_pairs, write_tsv
from tests.tiny_models import TOKENIZER_FILES

ROOT = Path(__file__).resolve().parents[1]
ZERO_WIDTH = "\u200b\u200d\ufeff"

DRIVER = r"""
import json, sys, traceback
from jaxsim.cli import main
for argv in json.loads(sys.argv[1]):
    for stream in (sys.stdout, sys.stderr):
        print("\x00call", file=stream, flush=True)
    try:
        rc = main(argv)
    except SystemExit as exit:
        rc = exit.code
    except BaseException:
        traceback.print_exc()
        rc = 1
    sys.stdout.flush()
    sys.stderr.flush()
    print("\x00rc", rc, file=sys.stdout, flush=True)
"""


class Call(NamedTuple):
    rc: int
    out: str
    err: str


def env() -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),
            "JAXSIM_COMPILE_CACHE": "off", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def cli_calls(*argvs: list[str], timeout: float = 300) -> list[Call]:
    """Run each argv through ``jaxsim.cli.main`` in one fresh process, in order."""
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([list(map(str, a)) for a in argvs])],
                          env=env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    outs = done.stdout.split("\x00call\n")[1:]
    errs = done.stderr.split("\x00call\n")[1:]
    assert len(outs) == len(errs) == len(argvs), done.stderr
    calls = []
    for out, err in zip(outs, errs, strict=True):
        out, _, rc = out.rpartition("\x00rc ")
        calls.append(Call(int(rc), out, err))
    return calls


def assert_one_line_error(call: Call, *phrases: str) -> str:
    """Exit status != 0, exactly one line on stderr, ``error: ...``, no traceback."""
    assert call.rc not in (0, None), call
    assert "Traceback" not in call.err + call.out, call.err
    lines = call.err.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), call.err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def corpus_argv(model_dir, weights_dir, source, out, *extra) -> list[str]:
    return ["corpus", "--model", str(model_dir), "--weights-dir", str(weights_dir), "--input",
            str(source), "--out", str(out), "--no-progress", "--shard-size", "4", *extra]


def copy_model(src: Path, dst: Path, scale: float | None = None) -> Path:
    """A copy of a model folder; ``scale`` multiplies one weight tensor (same names, shapes)."""
    dst.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", *TOKENIZER_FILES):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    if scale is not None:
        tensors = load_file(dst / "model.safetensors")
        key = next(k for k in sorted(tensors) if k.endswith("query.weight"))
        tensors[key] = tensors[key] * np.float32(scale)
        save_file(tensors, dst / "model.safetensors")
    return dst


@pytest.fixture(scope="module")
def twin_models(tiny_bert_dir, weights_dir, tmp_path_factory) -> tuple[Path, Path]:
    """Two folders both named ``model``: the tiny BERT, and the same with other weights (their
    conversions cached, so the CLI prints nothing about converting)."""
    root = tmp_path_factory.mktemp("twins")
    same = copy_model(tiny_bert_dir, root / "a" / "model")
    other = copy_model(tiny_bert_dir, root / "b" / "model", scale=1.5)
    for folder in (same, other):
        jaxsim.load_model(folder, weights_dir=weights_dir)
    return same, other


# --- 1. a run is bound to what produced it ------------------------------------------------------


def test_resume_refuses_other_weights_of_the_same_name_and_edited_input_rows(
        twin_models, weights_dir, tmp_path):
    same, other = twin_models
    model = jaxsim.load_model(same, weights_dir=weights_dir)
    first = write_tsv(tmp_path / "first.tsv", synthetic_pairs(12))
    run(first, tmp_path / "weights", model=model, shard_size=4, progress=False)
    second = write_tsv(tmp_path / "second.tsv", synthetic_pairs(12))
    run(second, tmp_path / "rows", model=model, shard_size=4, progress=False)
    # one row of shard 1 edited in place, the file's size unchanged
    data = second.read_bytes()
    row5 = data.index(b"5.\t")
    second.write_bytes(data[:row5] + b"6" + data[row5 + 1:])
    assert len(second.read_bytes()) == len(data)

    weights, rows, agree = cli_calls(
        corpus_argv(other, weights_dir, first, tmp_path / "weights", "--resume"),
        corpus_argv(same, weights_dir, second, tmp_path / "rows", "--resume"),
        corpus_argv(same, weights_dir, first, tmp_path / "weights", "--resume"),
    )
    assert_one_line_error(weights, "model weights changed", "another --out")
    assert_one_line_error(rows, "input rows of shard 1 (rows 4-7)", "another --out")
    assert agree.rc == 0 and "0 shards written, 3 already finished" in agree.out, agree
    recorded = json.loads((tmp_path / "weights" / "run.json").read_text())
    assert set(recorded["model_fingerprint"]) == {"weights", "tokenizer", "config"}
    assert len(recorded["input_sha256"]) == 64


def test_fingerprints_tell_weights_tokenizer_and_config_apart(tiny_bert, tiny_gpt_neo):
    from jaxsim.corpus.integrity import model_changes, model_fingerprint, rows_hash

    bert = model_fingerprint(tiny_bert)
    assert bert == model_fingerprint(tiny_bert)  # deterministic
    # the tiny models share MiniLM's tokenizer files
    assert model_changes(bert, model_fingerprint(tiny_gpt_neo)) == ["model weights", "model config"]
    shorter = dataclasses.replace(tiny_bert, tokenizer=dataclasses.replace(tiny_bert.tokenizer,
                                                                           max_length=16))
    assert model_changes(bert, model_fingerprint(shorter)) == ["tokenizer"]
    assert model_changes(None, bert) == ["model weights", "tokenizer", "model config"]
    assert model_changes(bert, model_fingerprint(tiny_bert.with_pooling("qkv"))) == ["model weights"]
    assert rows_hash([BadRow(0, "empty", "")]) != rows_hash([("empty", 0, "")])


# --- 2. committed means verified ----------------------------------------------------------------


def test_resume_redoes_a_truncated_committed_shard(tiny_bert, tiny_bert_dir, weights_dir,
                                                   tmp_path):
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(12))
    out = tmp_path / "out"
    run(source, out, model=tiny_bert, shard_size=4, progress=False)
    part = part_path(out, 1)
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    assert finished_shards(out) == {0, 1, 2}  # still "committed" by its .done.json
    assert not write_manifest(out, 3, {})["complete"]  # ... but never declared complete
    (call,) = cli_calls(corpus_argv(tiny_bert_dir, weights_dir, source, out, "--resume"))
    assert call.rc == 0, call
    assert "warning: shard 1 is redone" in call.err and "Traceback" not in call.err
    assert "1 shards written, 2 already finished" in call.out and "output complete" in call.out
    assert ids_in(out) == (list(range(12)), [])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["verified"] and manifest["unverified"] == []


# --- 3. never write over what is not ours; one run at a time; Ctrl-C -----------------------------


def test_out_with_a_users_files_is_refused_untouched(tiny_bert_dir, weights_dir, tmp_path):
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(4))
    users = tmp_path / "users"
    users.mkdir()
    (users / "manifest.json").write_text('{"mine": true}\n')
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "run.json").write_text('{"experiment": 7}\n')
    refused, not_ours, fresh = cli_calls(
        corpus_argv(tiny_bert_dir, weights_dir, source, users),
        corpus_argv(tiny_bert_dir, weights_dir, source, foreign, "--resume"),
        corpus_argv(tiny_bert_dir, weights_dir, source, tmp_path / "new" / "deeper"),
    )
    assert_one_line_error(refused, "not empty", "manifest.json")
    assert sorted(p.name for p in users.iterdir()) == ["manifest.json"]
    assert (users / "manifest.json").read_text() == '{"mine": true}\n'
    assert_one_line_error(not_ours, "run.json")
    assert (foreign / "run.json").read_text() == '{"experiment": 7}\n'
    assert fresh.rc == 0 and "output complete" in fresh.out  # a missing folder is created


def test_second_concurrent_run_is_refused_and_ctrl_c_leaves_a_resumable_run(
        tiny_bert, tiny_bert_dir, weights_dir, tmp_path):
    n = 6000
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(n))
    out = tmp_path / "out"
    argv = corpus_argv(tiny_bert_dir, weights_dir, source, out, "--batch-size", "8")
    first = subprocess.Popen([sys.executable, "-m", "jaxsim.cli", *argv], env=env(), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not finished_shards(out) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        (second,) = cli_calls(argv + ["--resume"])
        assert first.poll() is None, "the first run ended before the second started"
        assert_one_line_error(second, "another jaxsim corpus run is writing to")
        first.send_signal(signal.SIGINT)
        stdout, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130, stderr
    assert stderr.strip() == "error: interrupted", stderr
    interrupted = finished_shards(out)
    assert 1 <= len(interrupted) < n // 4 and not (out / "manifest.json").exists()
    summary = run(source, out, model=tiny_bert, shard_size=4, batch_size=8, resume=True,
                  progress=False)
    assert summary.shards_skipped == len(interrupted) and summary.manifest["complete"]
    assert ids_in(out) == (list(range(n)), [])  # nothing lost, nothing twice


# --- 4. rows match lines -------------------------------------------------------------------------


def test_embed_writes_one_row_per_line_and_names_blank_lines(tiny_bert, tiny_bert_dir,
                                                             weights_dir, tmp_path):
    lines = ["a line with\u2028a line separator", "form\x0cfeed and next\x85line", "plain",
             "crlf ending"]
    source = tmp_path / "in.txt"
    source.write_bytes(("\ufeff" + "\n".join(lines[:3]) + "\n" + lines[3] + "\r\n").encode())
    blank = tmp_path / "blank.txt"
    blank.write_text("one\ntwo\n   \nfour\n", encoding="utf-8")
    model = ["--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir)]
    rows, refused, skipped = cli_calls(
        ["embed", "--input", source, "--out", tmp_path / "vectors", *model],
        ["embed", "--input", blank, "--out", tmp_path / "blank.npy", *model],
        ["embed", "--input", blank, "--out", tmp_path / "kept.npy", "--skip-blank", *model],
    )
    assert rows.rc == 0, rows
    assert f"to {tmp_path / 'vectors.npy'}" in rows.out  # the file really written
    np.testing.assert_allclose(np.load(tmp_path / "vectors.npy"), tiny_bert.embed(lines),
                               atol=1e-6)
    assert_one_line_error(refused, "line 3 is blank", "--skip-blank")
    assert not (tmp_path / "blank.npy").exists()
    assert skipped.rc == 0 and np.load(tmp_path / "kept.npy").shape[0] == 3
    assert (tmp_path / "kept.lines.txt").read_text() == "1\n2\n4\n"


def test_corpus_records_keep_line_separators_and_jsonl_bom(tiny_bert, tmp_path):
    source = tmp_path / "p.jsonl"
    rows = [{"sentence1": "first\u2028row", "sentence2": "b\x0cc"},
            {"sentence1": "second row", "sentence2": "next\x85line"}]
    source.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                 for r in rows).encode())
    assert [type(r).__name__ for r in iter_rows(source)] == ["Pair", "Pair"]
    run(source, tmp_path / "out", model=tiny_bert, progress=False)
    records = list(iter_records(tmp_path / "out"))
    assert [(r["id"], r["text_a"], r["text_b"]) for r in records] == [
        (0, rows[0]["sentence1"], rows[0]["sentence2"]),
        (1, rows[1]["sentence1"], rows[1]["sentence2"])]


# --- 5. no content, no explanation ---------------------------------------------------------------


@pytest.mark.parametrize("text", [ZERO_WIDTH, "\x1b\x07\x7f", "\ufffd\ufffd", "[CLS] [SEP]",
                                  "[PAD] \u200b [MASK]", "\u00ad\u202e"])
def test_text_without_content_is_refused_by_every_encoder(tiny_bert, text):
    tok = tiny_bert.tokenizer
    for call in (lambda: tok.encode(text), lambda: tok.encode_for_embedding(["ok", text]),
                 lambda: tok.encode_pair("ok", text), lambda: tiny_bert.embed([text])):
        with pytest.raises(NoContentError, match="no content"):
            call()
    assert issubclass(NoContentError, InputTextError)
    for fine in ("\U0001F600", "e\u0301", "\u200bword", "[UNK]"):
        tok.encode(fine)


def test_zero_width_text_is_refused_by_explain_similarity_embed_and_corpus(
        tiny_bert_dir, weights_dir, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text(f"fine\n{ZERO_WIDTH}\n", encoding="utf-8")
    pairs = synthetic_pairs(3) + [(ZERO_WIDTH, "a text"), ("a text", "[CLS] [SEP]"), (" ", "x")]
    source = write_tsv(tmp_path / "p.tsv", pairs)
    model = ["--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir)]
    explain, bti, similarity, embed, corpus = cli_calls(
        ["explain", ZERO_WIDTH, "a text", *model],
        ["explain", "a text", ZERO_WIDTH, "--method", "bti", *model],
        ["similarity", "a text", ZERO_WIDTH, *model],
        ["embed", "--input", lines, "--out", tmp_path / "e.npy", *model],
        corpus_argv(tiny_bert_dir, weights_dir, source, tmp_path / "out"),
    )
    assert_one_line_error(explain, "text a has no content")
    assert_one_line_error(bti, "text b has no content")
    assert_one_line_error(similarity, "text b has no content")
    assert_one_line_error(embed, "line 2 has no content")
    assert corpus.rc == 0, corpus
    errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().split("\n")
              if line]
    assert [(e["id"], e["reason"]) for e in errors] == [(3, "no_content"), (4, "no_content"),
                                                        (5, "empty")]
    assert errors[0]["detail"].startswith("text a: ") and errors[1]["detail"].startswith("text b: ")


# --- 6. one-line errors everywhere ---------------------------------------------------------------


def broken_configs(src: Path, root: Path) -> dict[str, Path]:
    """Model folders whose config.json is nonsensical, and one missing ~thousands of tensors."""
    changes = {"heads0": {"num_attention_heads": 0}, "float_size": {"hidden_size": 32.5},
               "string_size": {"intermediate_size": "64"}, "indivisible": {"hidden_size": 30},
               "negative_eps": {"layer_norm_eps": -1e-12}, "layers500": {"num_hidden_layers": 500}}
    folders = {}
    for name, change in changes.items():
        folder = copy_model(src, root / name)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | change))
        folders[name] = folder
    return folders


def test_error_paths_end_in_one_line_never_a_traceback(tiny_bert_dir, weights_dir, tmp_path):
    model = ["--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir)]
    lines = tmp_path / "lines.txt"
    lines.write_text("a text\nanother\n", encoding="utf-8")
    (tmp_path / "a_file").write_text("not a folder")
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(4))
    configs = broken_configs(tiny_bert_dir, tmp_path / "configs")
    # a Parquet file whose second row group has a corrupt data page header
    parquet = tmp_path / "p.parquet"
    table = pa.table({"sentence1": [f"a {i}." for i in range(8)],
                      "sentence2": [f"b {i}." for i in range(8)]})
    pq.write_table(table, parquet, row_group_size=4, compression="snappy")
    offset = pq.ParquetFile(parquet).metadata.row_group(1).column(0).data_page_offset
    raw = bytearray(parquet.read_bytes())
    raw[offset:offset + 12] = b"\xff" * 12
    parquet.write_bytes(bytes(raw))

    sizes = [["embed", "--input", lines, "--out", tmp_path / "x.npy", "--batch-size", "0"],
             ["corpus", "--input", source, "--out", tmp_path / "c", "--batch-size", "-3"],
             ["corpus", "--input", source, "--out", tmp_path / "c", "--shard-size", "0"],
             ["train", "--train", source, "--out", tmp_path / "t", "--max-length", "0"],
             ["train", "--train", source, "--out", tmp_path / "t", "--batch-size", "0"],
             ["evaluate", "sts", "--data", source, "--batch-size", "0"],
             ["evaluate", "aupc", "--data", source, "--batch-size", "-1"],
             ["evaluate", "deletion", "--data", source, "--out", tmp_path / "d", "--batch-size",
              "0"],
             ["evaluate", "gmask", "--data", source, "--out", tmp_path / "g", "--batch-size", "0"]]
    calls = cli_calls(
        ["embed", "--input", lines, "--out", tmp_path / "new" / "dir" / "e.npy", *model],
        ["explain", "a cat", "a dog", "--out", tmp_path / "new2" / "x.json", "--format", "json",
         *model],
        ["embed", "--input", lines, "--out", tmp_path / "a_file" / "e.npy", *model],
        ["explain", "a cat", "a dog", "--out", tmp_path / "a_file" / "x.txt", *model],
        corpus_argv(tiny_bert_dir, weights_dir, parquet, tmp_path / "pq"),
        *[["convert", "--model", folder, "--weights-dir", tmp_path / "w"]
          for folder in configs.values()],
        *sizes,
    )
    made, explained, not_dir, not_dir2, corrupt, *rest = calls
    config_calls, size_calls = rest[:len(configs)], rest[len(configs):]
    assert made.rc == 0 and (tmp_path / "new" / "dir" / "e.npy").is_file(), made
    assert explained.rc == 0 and (tmp_path / "new2" / "x.json").is_file(), explained
    assert_one_line_error(not_dir, "a_file")
    assert_one_line_error(not_dir2, "a_file")
    assert corrupt.rc == 0, corrupt
    errors = [json.loads(line)
              for line in (tmp_path / "pq" / "errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["reason"]) for e in errors] == [(i, "unreadable") for i in range(4, 8)]
    assert [r["id"] for r in iter_records(tmp_path / "pq")] == [0, 1, 2, 3]
    phrases = {"heads0": "num_attention_heads=0", "float_size": "hidden_size=32.5",
               "string_size": "intermediate_size='64'", "indivisible": "divisible",
               "negative_eps": "layer_norm_eps", "layers500": "missing 7968 tensors (first 10:"}
    for name, call in zip(configs, config_calls, strict=True):
        line = assert_one_line_error(call, phrases[name])
        assert len(line) < 1500, (name, len(line))
    for argv, call in zip(sizes, size_calls, strict=True):
        assert argv[0] and assert_one_line_error(call, "must be at least 1")


def test_non_utf8_argument_is_refused_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jaxsim.cli", "similarity", b"caf\xe9", "x"],
                          env=env(), cwd=ROOT, capture_output=True, timeout=120)
    call = Call(done.returncode, done.stdout.decode(), done.stderr.decode())
    assert_one_line_error(call, "not valid UTF-8", "caf\\udce9")


# --- 7. small truths ---------------------------------------------------------------------------


def test_terminal_view_escapes_controls_and_undefined_rho_says_why(tiny_bert_dir, weights_dir,
                                                                   tmp_path):
    model = ["--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir)]
    scored = tmp_path / "sts" / "const.tsv"
    scored.parent.mkdir()
    scored.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"{a}\t{b}\t3.0\n" for a, b in synthetic_pairs(6)), encoding="utf-8")
    view, rho = cli_calls(
        ["explain", "red\x1b[2J alert\x07 now", "a calm \u202edrow", *model],
        ["evaluate", "sts", "--data", scored, "--pooling", "mean", "--out", tmp_path / "r.json",
         *model],
    )
    assert view.rc == 0, view
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in view.out
    assert "\\x1b" in view.out and "\\x07" in view.out
    assert rho.rc == 0, rho
    assert "nan" not in rho.out and "| mean | undefined |" in rho.out
    assert "every gold score is 3" in rho.err and "undefined" in rho.err
    assert json.loads((tmp_path / "r.json").read_text())["spearman_x100"] == {
        "mean": {"sts/const": None}}


def test_pickle_is_read_with_weights_only_and_code_in_it_never_runs(tiny_bert_dir, tmp_path):
    import torch

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = copy_model(tiny_bert_dir, tmp_path / "model")
    (folder / "model.safetensors").unlink()
    torch.save({"payload": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"weights_only=True") as info:
        jaxsim.load_model(folder, allow_pickle=True, use_cache=False)
    assert "\n" not in str(info.value)
    assert not marker.exists()


# --- 8. benchmark results that do not hold are marked ----------------------------------------


def test_gmask_results_mark_the_superseded_twin_rows():
    text = (ROOT / "benchmarks" / "results" / "gmask.md").read_text(encoding="utf-8")
    assert "| 3.2x |" not in text and "| 3.4x |" not in text
    assert text.count("superseded") >= 3 and "gmask_speed_cpu.md" in text
