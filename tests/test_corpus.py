"""``jaxsim corpus``: streamed input, sharded devices, atomic shards, resume, bad rows.

Multi-device and multi-process checks run in subprocesses: the pytest process already imported
jax with one CPU device, and ``XLA_FLAGS`` / ``jax.distributed`` must be set before that.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxsim.cli import main
from jaxsim.corpus import iter_records, parse_store, run
from jaxsim.corpus.io import BadRow, Pair, count_rows, iter_chunks, iter_rows
from jaxsim.corpus.runner import shard_rows_owned
from jaxsim.corpus.sharding import owns_shard, round_batch_size
from jaxsim.corpus.shards import done_path, finished_shards, part_path
from jaxsim.corpus.store import Store, top_entries
from jaxsim.errors import JaxsimError

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ["A man", "A woman", "The child", "A dog", "Two cats", "The old farmer", "A girl",
            "Some people"]
VERBS = ["plays a guitar", "reads a book", "rides a horse", "is cooking dinner",
         "runs on the beach", "sings a song", "is sleeping", "paints a wall"]


def synthetic_pairs(n: int, long_every: int = 0) -> list[tuple[str, str]]:
    """n distinct short pairs; every ``long_every``-th text a is longer (a second bucket)."""
    pairs = []
    for i in range(n):
        a = f"{SUBJECTS[i % 8]} {VERBS[(i // 8) % 8]} {i}."
        if long_every and i % long_every == 0:
            a += " It happens on a sunny afternoon near the old wooden bridge."
        pairs.append((a, f"{SUBJECTS[(i + 3) % 8]} {VERBS[(i + 5) % 8]}."))
    return pairs


def write_tsv(path: Path, pairs, extra: bytes = b"") -> Path:
    lines = ["sentence1\tsentence2\tscore"] + [f"{a}\t{b}\t1.0" for a, b in pairs]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + extra)
    return path


def ids_in(out: Path) -> tuple[list[int], list[int]]:
    """(ids of explained pairs, ids of bad rows) of a finished output folder."""
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    return [r["id"] for r in iter_records(out)], [e["id"] for e in errors]


def assert_same_relevance(actual, expected: np.ndarray) -> None:
    """Equal up to float reassociation (batch composition may differ): 1e-5 of max |R|."""
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def env_for(devices: int = 1) -> dict[str, str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def corpus_argv(model_dir, weights_dir, source, out, *extra) -> list[str]:
    return ["corpus", "--model", str(model_dir), "--weights-dir", str(weights_dir), "--input",
            str(source), "--out", str(out), "--no-progress", *extra]


def cli_process(argv: list[str], devices: int = 1, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jaxsim.cli", *argv], env=env_for(devices),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


# --- pure pieces ----------------------------------------------------------------------------


def test_store_spec_parses_full_words_and_topk():
    assert parse_store("full") == Store("full") and parse_store("words") == Store("words")
    assert parse_store("topk:8") == Store("topk", 8) and str(parse_store("topk:8")) == "topk:8"
    for bad in ("topk", "topk:0", "topk:x", "all", "full:3"):
        with pytest.raises(JaxsimError, match="full, words or topk:K"):
            parse_store(bad)


def test_top_entries_rank_by_absolute_value():
    matrix = np.array([[0.1, -3.0], [2.0, 0.5]])
    assert top_entries(matrix, 3) == [(0, 1, -3.0), (1, 0, 2.0), (1, 1, 0.5)]


@pytest.mark.parametrize("processes", [1, 2, 3, 4])
def test_shard_ownership_gives_every_shard_to_exactly_one_process(processes):
    """Process-index arithmetic of the multi-host split (the real 2-process run is below)."""
    shards = range(23)
    owners = [[p for p in range(processes) if owns_shard(k, p, processes)] for k in shards]
    assert all(len(o) == 1 for o in owners)
    rows = [shard_rows_owned(90, 4, lambda k, p=p: owns_shard(k, p, processes))
            for p in range(processes)]
    assert sum(rows) == 90 and max(rows) - min(rows) <= 4


def test_batch_size_is_rounded_up_to_a_multiple_of_the_device_count():
    assert round_batch_size(None, 8) == 64 and round_batch_size(5, 4) == 8
    assert round_batch_size(8, 1) == 8 and round_batch_size(8, 8) == 8


def test_readers_stream_tsv_jsonl_and_parquet_with_stable_ids(tmp_path):
    pairs = [("a one", "b one"), ("a two", "b two"), ("a three", "b three")]
    tsv = write_tsv(tmp_path / "p.tsv", pairs, extra=b"bad \xff\tx\t1\nonly-one-field\n")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_bytes(b"".join(json.dumps({"text_a": a, "text_b": b}).encode() + b"\n"
                               for a, b in pairs) + b"{not json\n\"a string\"\n{\"text_a\": \"x\"}\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"sentence1": [a for a, _ in pairs] + [None],
                             "sentence2": [b for _, b in pairs] + ["y"]}), parquet)
    good = [Pair(i, a, b) for i, (a, b) in enumerate(pairs)]
    rows = iter_rows(tsv)
    assert not isinstance(rows, list)  # a lazy iterator: the file is never read whole
    rows = list(rows)
    assert rows[:3] == good and [type(r) for r in rows[3:]] == [BadRow, BadRow]
    assert [(r.row, r.reason) for r in rows[3:]] == [(3, "undecodable"), (4, "malformed")]
    rows = list(iter_rows(jsonl))
    assert rows[:3] == good and [(r.row, r.reason) for r in rows[3:]] == [
        (3, "malformed"), (4, "malformed"), (5, "malformed")]
    assert list(iter_rows(parquet)) == good + [Pair(3, "", "y")]  # null text: empty, caught later
    assert [count_rows(p) for p in (tsv, jsonl, parquet)] == [5, 6, 4]
    assert [len(c) for c in iter_chunks(iter_rows(tsv), 2)] == [2, 2, 1]
    with pytest.raises(JaxsimError, match="has no column q, d"):
        iter_rows(tsv, columns=("q", "d"))
    (tmp_path / "q.tsv").write_text("q\td\nx\ty\n")
    with pytest.raises(JaxsimError, match="--columns A,B"):
        iter_rows(tmp_path / "q.tsv")
    assert list(iter_rows(tmp_path / "q.tsv", columns=("q", "d"))) == [Pair(0, "x", "y")]
    with pytest.raises(JaxsimError, match=r"\*\.tsv, \*\.jsonl or \*\.parquet"):
        iter_rows(tmp_path / "p.csv")


# --- runs in this process (1 device) --------------------------------------------------------


def test_corpus_records_equal_explain_pairs_for_every_store(tiny_bert, tmp_path):
    pairs = synthetic_pairs(5, long_every=4)  # two length buckets
    pairs.append(pairs[0])  # a repeated pair
    source = write_tsv(tmp_path / "p.tsv", pairs)
    expected = tiny_bert.explain_pairs(pairs, progress=False)
    for spec in ("full", "words", "topk:3"):
        out = tmp_path / spec.replace(":", "")
        summary = run(source, out, model=tiny_bert, store=spec, shard_size=4, progress=False)
        assert (summary.pairs, summary.errors, summary.shards_written) == (6, 0, 2)
        records = list(iter_records(out))
        assert [r["id"] for r in records] == list(range(6))
        for record, (a, b), exp in zip(records, pairs, expected, strict=True):
            assert (record["text_a"], record["text_b"]) == (a, b)
            assert record["similarity"] == pytest.approx(exp.similarity, rel=1e-6)
            words_a, words_b, words = exp.word_relevance()
            if spec == "full":
                assert_same_relevance(record["relevance"], exp.relevance)
                assert record["tokens_a"] == exp.tokens_a and record["words_b"] == words_b
            elif spec == "words":
                assert_same_relevance(record["word_relevance"], words)
                assert record["words_a"] == words_a
            else:
                top = [(w["word_a"], w["word_b"]) for w in record["top_words"]]
                assert top == [(p[0], p[1]) for p in exp.top_pairs(3)]
                assert len(record["top_tokens"]) == 3
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["complete"] and manifest["pairs"] == 6 and manifest["errors"] == 0


def test_bad_rows_are_reported_and_skipped_and_good_rows_all_present(tiny_bert_dir, weights_dir,
                                                                     tmp_path, capsys):
    pairs = synthetic_pairs(7)
    pairs.insert(2, ("   ", "an empty text a"))
    pairs.insert(5, ("too long", "word " * 300))
    source = write_tsv(tmp_path / "p.tsv", pairs, extra=b"caf\xe9\tx\t1\nno tab here\n")
    out = tmp_path / "out"
    assert main(corpus_argv(tiny_bert_dir, weights_dir, source, out, "--shard-size", "4")) == 0
    printed = capsys.readouterr().out
    assert "7 pairs explained, 4 bad rows" in printed and "output complete" in printed
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["reason"]) for e in errors] == [
        (2, "empty"), (5, "too_long"), (9, "undecodable"), (10, "malformed")]
    assert errors[0]["detail"].startswith("text a: empty")
    good = [i for i in range(11) if i not in (2, 5, 9, 10)]
    assert [r["id"] for r in iter_records(out)] == good
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["errors_by_reason"] == {"empty": 1, "malformed": 1, "too_long": 1,
                                            "undecodable": 1}
    # --truncate keeps the long text instead
    out2 = tmp_path / "out2"
    assert main(corpus_argv(tiny_bert_dir, weights_dir, source, out2, "--truncate")) == 0
    assert 5 in [r["id"] for r in iter_records(out2)]


def test_resume_skips_finished_shards_and_refuses_to_mix_runs(tiny_bert, tiny_bert_dir,
                                                              weights_dir, tmp_path, capsys):
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(10))
    out = tmp_path / "out"
    first = run(source, out, model=tiny_bert, shard_size=4, progress=False)
    assert first.shards_written == 3
    again = run(source, out, model=tiny_bert, shard_size=4, resume=True, progress=False)
    assert (again.shards_written, again.shards_skipped, again.pairs) == (0, 3, 0)
    assert again.manifest["complete"] and again.manifest["pairs"] == 10
    with pytest.raises(JaxsimError, match="--resume"):
        run(source, out, model=tiny_bert, shard_size=4, progress=False)
    with pytest.raises(JaxsimError, match="shard_size: 4 -> 5"):
        run(source, out, model=tiny_bert, shard_size=5, resume=True, progress=False)
    assert main(corpus_argv(tiny_bert_dir, weights_dir, source, out, "--shard-size", "4")) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_uncommitted_or_partial_shards_are_never_read_and_are_redone(tiny_bert, tmp_path):
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(12))
    out = tmp_path / "out"
    run(source, out, model=tiny_bert, shard_size=4, progress=False)
    # a kill between the two renames of shard 1, and during the write of shard 2's temp file
    done_path(out, 1).unlink()
    part = part_path(out, 1)
    part.write_bytes(part.read_bytes()[:50])
    temporary = part.with_name(f".{part_path(out, 2).name}.tmp.99999")
    temporary.write_bytes(b'{"id": 8, "trunc')
    assert finished_shards(out) == {0, 2}
    assert [r["id"] for r in iter_records(out)] == [0, 1, 2, 3, 8, 9, 10, 11]
    summary = run(source, out, model=tiny_bert, shard_size=4, resume=True, progress=False)
    assert (summary.shards_written, summary.shards_skipped) == (1, 2)
    assert not temporary.exists()
    assert ids_in(out) == (list(range(12)), [])


def test_bti_corpus_matches_bti_explain_pairs(tiny_bert, tmp_path):
    from jaxsim.explain import bti

    pairs = synthetic_pairs(3)
    source = write_tsv(tmp_path / "p.tsv", pairs)
    run(source, tmp_path / "out", model=tiny_bert, method="bti", store="full", progress=False)
    expected = bti.explain_pairs(tiny_bert, pairs, batch_size=8)
    for record, exp in zip(iter_records(tmp_path / "out"), expected, strict=True):
        assert record["word_pairs"] == exp.word_pairs
        np.testing.assert_allclose(record["word_saliency_a"], exp.word_saliency_a)


@pytest.mark.parametrize("method", ["hxp", "embedding"])
def test_baseline_methods_match_explain_pairs(tiny_bert, tmp_path, method):
    pairs = synthetic_pairs(2)
    run(write_tsv(tmp_path / "p.tsv", pairs), tmp_path / "out", model=tiny_bert, method=method,
        store="full", progress=False)
    expected = tiny_bert.explain_pairs(pairs, method=method, progress=False)
    for record, exp in zip(iter_records(tmp_path / "out"), expected, strict=True):
        assert_same_relevance(record["relevance"], exp.relevance)


# --- subprocesses: 8 host devices, SIGKILL, 2 processes ---------------------------------------

EIGHT_DEVICES = """
import sys, jaxsim
from jaxsim.cli import main
from jaxsim.corpus import compute, sharding
from jaxsim.explain.bilrp import token_relevance
from jaxsim.text import pad_batch
assert main(sys.argv[1:]) == 0
model = jaxsim.load_model(sys.argv[3], weights_dir=sys.argv[5], pooling="mean")
mesh = sharding.data_mesh()
placed = compute.place(model, mesh)
batch = sharding.shard_rows(pad_batch(model.encode(["a b c"] * 8), 16), mesh)
r, _ = token_relevance(placed.params, placed.pool_params, *batch, config=model.config,
                       pooling=model.pooling, mode="forward", chunk_size=16)
print("output on", len(r.sharding.device_set), "devices, spec", tuple(r.sharding.spec))
"""


def test_eight_host_devices_give_the_same_relevance_as_one_device(tiny_bert, tiny_bert_dir,
                                                                 weights_dir, tmp_path):
    # shards of 64 pairs hold >= 64 distinct texts: the adaptive length classes run on both sides
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(128, long_every=5))
    argv = corpus_argv(tiny_bert_dir, weights_dir, source, tmp_path / "eight", "--store", "full",
                       "--batch-size", "8", "--shard-size", "64")
    eight = subprocess.Popen([sys.executable, "-c", EIGHT_DEVICES, *argv], env=env_for(8),
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run(source, tmp_path / "one", model=tiny_bert, store="full", batch_size=8, shard_size=64,
        progress=False)
    stdout, stderr = eight.communicate(timeout=300)
    assert eight.returncode == 0, stderr
    assert "on 8 devices" in stdout  # the run's summary
    assert "output on 8 devices, spec ('data',)" in stdout  # token_relevance really is sharded
    one, many = list(iter_records(tmp_path / "one")), list(iter_records(tmp_path / "eight"))
    assert [r["id"] for r in many] == [r["id"] for r in one] == list(range(128))
    worst = 0.0
    for a, b in zip(one, many, strict=True):
        assert a["tokens_a"] == b["tokens_a"] and a["tokens_b"] == b["tokens_b"]
        ra, rb = np.asarray(a["relevance"]), np.asarray(b["relevance"])
        worst = max(worst, float(np.abs(ra - rb).max() / np.abs(ra).max()))
        assert b["similarity"] == pytest.approx(a["similarity"], rel=1e-5)
    print(f"8 vs 1 device: max relative difference of R = {worst:.3g}")
    assert worst <= 1e-5


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tiny_bert, tiny_bert_dir,
                                                                 weights_dir, tmp_path):
    n, shard_size = 400, 8
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(n), extra=b"\t\t\n")  # + 1 bad row
    out = tmp_path / "out"
    process = cli_process(corpus_argv(tiny_bert_dir, weights_dir, source, out, "--shard-size",
                                      str(shard_size), "--batch-size", "8"))
    deadline = time.monotonic() + 240
    while len(finished_shards(out)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = finished_shards(out)
    total = -(-(n + 1) // shard_size)
    assert 3 <= len(killed_at) < total
    assert not (out / "manifest.json").exists()
    summary = run(source, out, model=tiny_bert, shard_size=shard_size, batch_size=8, resume=True,
                  progress=False)
    assert summary.shards_skipped == len(killed_at)
    assert summary.shards_written == total - len(killed_at)
    assert summary.manifest["complete"]
    explained, bad = ids_in(out)
    assert sorted(explained) == explained and len(set(explained)) == len(explained)
    assert bad == [n] and sorted(explained + bad) == list(range(n + 1))  # 0 lost, 0 duplicated


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_on_localhost_each_explain_their_own_shards(tiny_bert_dir, weights_dir,
                                                                  tmp_path):
    """jax.distributed on localhost with CPU: a real 2-process run into one output folder."""
    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(10))
    out = tmp_path / "out"
    port = _free_port()
    processes = [
        cli_process(corpus_argv(tiny_bert_dir, weights_dir, source, out, "--shard-size", "3",
                                "--multihost", "--coordinator", f"localhost:{port}",
                                "--num-processes", "2", "--process-id", str(i)))
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (_, stderr) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, stderr
    assert "process 0/2" in outputs[0][0] and "output complete" in outputs[0][0]
    assert "process 1/2" in outputs[1][0]
    entries = [json.loads(done_path(out, k).read_text()) for k in range(4)]
    assert [e["process"] for e in entries] == [0, 1, 0, 1]
    assert ids_in(out) == (list(range(10)), [])


# --- slow: memory ---------------------------------------------------------------------------


@pytest.mark.slow
def test_rss_stays_bounded_on_20k_pairs_with_topk8(tiny_bert, tmp_path):
    import psutil

    source = write_tsv(tmp_path / "p.tsv", synthetic_pairs(20_000))
    rss: list[float] = []
    process = psutil.Process()
    def sample(_entry) -> None:
        rss.append(process.memory_info().rss / 2**20)

    summary = run(source, tmp_path / "out", model=tiny_bert, store="topk:8", shard_size=256,
                  progress=False, on_shard=sample)
    assert summary.pairs == 20_000 and len(rss) == 79
    growth = max(rss[10:]) - rss[10]  # after warm-up: compiles and allocator pools settled
    print(f"RSS after shard 10: {rss[10]:.0f} MiB, max later: {max(rss[10:]):.0f} MiB")
    assert growth < 64
