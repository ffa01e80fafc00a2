"""``jaxsim index`` / ``jaxsim search``: stored factors explain hits exactly, exact top-k, 8 host
devices = 1, kill -9 and resume, refusals, the JSON contract and the results page.

Multi-device and kill checks run in subprocesses (``XLA_FLAGS`` must be set before jax starts).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import jaxsim
from jaxsim.cli import main
from jaxsim.corpus.io import BadRow
from jaxsim.corpus.shards import finished_shards
from jaxsim.errors import JaxsimError
from jaxsim.explain.result import SearchHit, SearchResult
from jaxsim.index import Index, build, iter_docs
from jaxsim.index import store as index_store
from jaxsim.index.docs import Doc
from jaxsim.index.topk import place_rows, top_k, unit_rows
from jaxsim.models.placement import data_mesh
from jaxsim.viz.search import search_data, search_html
from tests import html_fixtures as fx
from tests.test_corpus import env_for
from tests.test_html import EXTERNAL, page_json

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    "A man is playing a guitar.", "A woman slices an onion in the kitchen.",
    "Two dogs run along the beach.", "Someone plays an instrument on stage.",
    "A child reads a book under a tree.", "The cat sleeps on the sofa.",
    "A man plays the violin.", "People are dancing at a party.",
]
QUERIES = ["A person plays music.", "An animal is running outside."]
EXPLAIN_KEYS = {"method", "model", "tokens_a", "tokens_b", "relevance", "similarity",
                "sum_relevance", "words_a", "words_b", "word_relevance"}


def synthetic_docs(n: int) -> list[str]:
    subjects = ["A man", "A woman", "The child", "A dog", "Two cats", "The old farmer"]
    verbs = ["plays a guitar", "reads a book", "rides a horse", "is cooking dinner",
             "runs on the beach", "paints a wall near the river"]
    return [f"{subjects[i % 6]} {verbs[(i // 6) % 6]} number {i}." for i in range(n)]


def write_txt(path: Path, docs: list[str]) -> Path:
    path.write_text("".join(d + "\n" for d in docs), encoding="utf-8")
    return path


def cli(*argv: str, devices: int = 1, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxsim.cli", *argv], env=env_for(devices),
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_relevance_close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> float:
    """max|actual - expected| / max|expected| <= rtol; returns that relative error."""
    error = float(np.abs(actual - expected).max() / np.abs(expected).max())
    assert actual.shape == expected.shape and error <= rtol, error
    return error


# --- documents ---------------------------------------------------------------------------------

def test_document_readers_give_stable_rows_ids_and_bad_rows(tmp_path):
    txt = tmp_path / "d.txt"
    txt.write_bytes(b"\xef\xbb\xbfone\r\ntwo\xe2\x80\xa8still two\n\nbad \xff\nlast")
    rows = list(iter_docs(txt))
    assert rows[:3] == [Doc(0, 0, "one"), Doc(1, 1, "two\u2028still two"), Doc(2, 2, "")]
    assert isinstance(rows[3], BadRow) and rows[3].reason == "undecodable"
    assert rows[4] == Doc(4, 4, "last") and len(rows) == 5

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "a", "id": "doc-a"}\n{"text": "b"}\n{"id": 3}\nnot json\n'
                     '{"text": "c", "id": [1]}\n{"text": null}\n', encoding="utf-8")
    rows = list(iter_docs(jsonl))
    assert rows[0] == Doc(0, "doc-a", "a") and rows[1] == Doc(1, 1, "b")
    assert [r.reason for r in rows[2:5]] == ["malformed"] * 3
    assert rows[5] == Doc(5, 5, "")

    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["first", "second"]}), parquet)
    assert list(iter_docs(parquet)) == [Doc(0, "x", "first"), Doc(1, "y", "second")]
    pq.write_table(pa.table({"body": ["first"]}), tmp_path / "bad.parquet")
    with pytest.raises(JaxsimError, match="no 'text' column"):
        iter_docs(tmp_path / "bad.parquet")
    with pytest.raises(JaxsimError, match="cannot tell the format"):
        iter_docs(tmp_path / "d.csv")


# --- explanations from stored factors ----------------------------------------------------------

@pytest.fixture(scope="module")
def minilm_index(minilm, tmp_path_factory):
    return Index.build(minilm, DOCS, tmp_path_factory.mktemp("minilm") / "idx", factors="fp32",
                       shard_size=3)


@pytest.fixture(scope="module")
def tiny_index(tiny_bert, tmp_path_factory):
    source = write_txt(tmp_path_factory.mktemp("tiny") / "docs.txt", synthetic_docs(40))
    return Index.build(tiny_bert, source, tmp_path_factory.mktemp("tiny") / "idx", factors="fp32",
                       shard_size=7)


@pytest.mark.parametrize("which", ["minilm", "tiny"])
def test_hit_relevance_from_stored_fp32_factors_equals_model_explain(which, request):
    index = request.getfixturevalue(f"{which}_index")
    kind = index.similarity
    assert kind == ("cosine" if which == "minilm" else "dot")  # MiniLM normalises, tiny BERT not
    for query in QUERIES:
        result = index.search(query, k=3, explain=True)
        assert len(result) == 3
        for hit in result:
            ref = index.model.explain(query, hit.text, similarity=kind)
            e = hit.explanation
            assert (e.tokens_a, e.tokens_b, e.words_b) == (ref.tokens_a, ref.tokens_b, ref.words_b)
            np.testing.assert_array_equal(e.word_ids_b, ref.word_ids_b)
            assert_relevance_close(e.relevance, ref.relevance, 1e-5)
            assert e.similarity == pytest.approx(ref.similarity, rel=1e-5)
            assert hit.score == pytest.approx(ref.similarity, rel=1e-5, abs=1e-6)
            assert e.sum_relevance == pytest.approx(float(e.relevance.sum()), rel=1e-12)
            assert e.sum_relevance == pytest.approx(ref.sum_relevance, rel=1e-5)


def test_cosine_relevance_is_the_dot_relevance_over_both_norms(minilm_index):
    hit = minilm_index.search(QUERIES[0], k=1, explain=True)[0]
    dot = minilm_index.model.explain(QUERIES[0], hit.text, similarity="dot")
    phi_q, phi_d = minilm_index.model.embed([QUERIES[0], hit.text], normalize=False)
    norms = float(np.linalg.norm(phi_q) * np.linalg.norm(phi_d))
    assert_relevance_close(hit.explanation.relevance, dot.relevance / norms, 1e-5)
    assert hit.explanation.sum_relevance == pytest.approx(dot.sum_relevance / norms, rel=1e-5)


def test_fp16_factors_halve_the_bytes_and_bound_the_relevance_error(minilm, minilm_index, tmp_path):
    half = Index.build(minilm, DOCS, tmp_path / "fp16", factors="fp16", shard_size=3)
    assert half.record["docs"] == minilm_index.record["docs"] == len(DOCS)
    factor_bytes = {name: sum(s["files"]["factors"]["bytes"] for s in idx.record["shards"])
                    for name, idx in (("fp16", half), ("fp32", minilm_index))}
    assert factor_bytes["fp16"] < 0.55 * factor_bytes["fp32"]
    worst = 0.0
    for query in QUERIES:
        exact = {h.id: h for h in minilm_index.search(query, k=len(DOCS), explain=True)}
        for hit in half.search(query, k=len(DOCS), explain=True):
            worst = max(worst, assert_relevance_close(
                hit.explanation.relevance, exact[hit.id].explanation.relevance, 1e-3))
            assert hit.score == exact[hit.id].score  # embeddings stay float32
    print(f"fp16 factors: max |R16 - R32| / max |R32| = {worst:.2e}")
    assert worst > 0  # really rounded


def test_an_index_without_factors_explains_hits_like_one_with_them(minilm, minilm_index, tmp_path):
    bare = Index.build(minilm, DOCS, tmp_path / "none", factors="none", shard_size=5)
    assert "factors" not in bare.record["shards"][0]["files"]
    with_factors = minilm_index.search(QUERIES[1], k=3, explain=True)
    without = bare.search(QUERIES[1], k=3, explain=True)
    assert [h.id for h in without] == [h.id for h in with_factors]
    for a, b in zip(without, with_factors, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-5)
        assert_relevance_close(a.explanation.relevance, b.explanation.relevance, 1e-5)


# --- ranking -----------------------------------------------------------------------------------

@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_top_k_equals_brute_force_numpy_ranking(tiny_bert, tmp_path, similarity):
    index = Index.build(tiny_bert, synthetic_docs(50), tmp_path / "idx", factors="none",
                        shard_size=16, similarity=similarity)
    queries = ["A dog rides a horse.", "The farmer paints", "cooking 12"]
    phis = tiny_bert.embed(queries, normalize=False)
    stored = index.embeddings
    if similarity == "cosine":
        phis, stored = unit_rows(phis), unit_rows(stored)
    brute = phis @ stored.T  # f32[Q, N]
    for query, scores in zip(queries, brute, strict=True):
        result = index.search(query, k=7)
        order = np.argsort(-scores, kind="stable")[:7]
        np.testing.assert_allclose([h.score for h in result], scores[order], rtol=1e-5, atol=1e-6)
        got = [h.row for h in result]
        # equal ids, except where two documents score the same to float precision
        for rank, (g, want) in enumerate(zip(got, order, strict=True)):
            assert g == want or abs(scores[g] - scores[want]) < 1e-6, (rank, g, want)
    everything = index.search(queries[0], k=500)
    assert len(everything) == 50 and sorted(h.row for h in everything) == list(range(50))


def test_top_k_pads_rows_to_the_device_count_and_never_returns_padding():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(5, 4)).astype(np.float32)
    queries = rng.normal(size=(3, 4)).astype(np.float32)
    placed = place_rows(emb, data_mesh(1))
    scores, rows = top_k(placed, queries, 10)
    assert scores.shape == (3, 5) and np.isfinite(scores).all()
    np.testing.assert_array_equal(rows, np.argsort(-(queries @ emb.T), axis=1, kind="stable"))


EIGHT = """
import json, sys, jax
from jaxsim.cli import main
assert len(jax.local_devices()) == 8
assert main(sys.argv[1:]) == 0
"""


def test_eight_host_devices_index_and_rank_like_one(tiny_bert, tiny_bert_dir, weights_dir, tmp_path):
    source = write_txt(tmp_path / "docs.txt", synthetic_docs(45))
    index_argv = ["index", "--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir),
                  "--input", str(source), "--shard-size", "10", "--factors", "fp32", "--no-progress"]
    built = subprocess.run([sys.executable, "-c", EIGHT, *index_argv, "--out", str(tmp_path / "eight")],
                           env=env_for(8), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    assert "on 8 devices" in built.stdout
    queries = tmp_path / "q.txt"
    write_txt(queries, ["A dog rides a horse.", "The farmer is cooking"])
    searched = subprocess.run(
        [sys.executable, "-c", EIGHT, "search", "--index", str(tmp_path / "eight"), "--weights-dir",
         str(weights_dir), "--queries", str(queries), "--top-k", "6", "--explain", "--format", "json"],
        env=env_for(8), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert searched.returncode == 0, searched.stderr
    eight = [json.loads(line) for line in searched.stdout.splitlines()]

    one = Index.build(tiny_bert, source, tmp_path / "one", factors="fp32", shard_size=10, devices=1)
    assert one.placed.mesh.size == 1
    for n, expected in enumerate(one.search_many(["A dog rides a horse.", "The farmer is cooking"],
                                                 k=6, explain=True)):
        got = eight[n]["hits"]
        assert [h["id"] for h in got] == [h.id for h in expected]
        for g, e in zip(got, expected, strict=True):
            assert g["score"] == pytest.approx(e.score, rel=1e-5)
            assert_relevance_close(np.asarray(g["relevance"]), e.explanation.relevance, 1e-5)
    for shard in range(5):  # the stored factors too
        a = np.load(index_store.part_path(tmp_path / "eight", shard, "factors"))
        b = np.load(index_store.part_path(tmp_path / "one", shard, "factors"))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


def test_ranking_is_split_over_eight_devices_with_padded_rows(tmp_path):
    code = """
import numpy as np, jax
from jaxsim.index.topk import place_rows, top_k
from jaxsim.models.placement import data_mesh
rng = np.random.default_rng(1)
emb = rng.normal(size=(37, 16)).astype(np.float32)   # 37 rows: padded to 40 over 8 devices
q = rng.normal(size=(4, 16)).astype(np.float32)
placed = place_rows(emb, data_mesh(8))
assert len(placed.rows.sharding.device_set) == 8 and placed.rows.shape[0] == 40
for k in (1, 3, 9, 37, 50):
    scores, rows = top_k(placed, q, k)
    want = np.argsort(-(q @ emb.T), axis=1, kind="stable")[:, :k]
    assert (rows == want).all() and rows.max() < 37, (k, rows, want)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], env=env_for(8), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# --- build: resume, refusals -------------------------------------------------------------------

def test_kill_9_during_index_then_resume_indexes_every_document_exactly_once(
        tiny_bert, tiny_bert_dir, weights_dir, tmp_path):
    n, shard_size = 120, 4
    docs = synthetic_docs(n)
    docs[17] = "   "  # a bad row, reported and kept out
    source = write_txt(tmp_path / "docs.txt", docs)
    out = tmp_path / "idx"
    argv = ["index", "--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir), "--input",
            str(source), "--out", str(out), "--shard-size", str(shard_size), "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "jaxsim.cli", *argv], env=env_for(1), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not finished_shards(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the build ended before it could be killed"
    killed_at = finished_shards(out)
    total = n // shard_size
    assert 1 <= len(killed_at) < total

    half = cli("search", "--index", str(out), "--weights-dir", str(weights_dir), "a dog")
    assert half.returncode == 2 and half.stderr.startswith("error: ") and "Traceback" not in half.stderr
    assert "half-built" in half.stderr and "--resume" in half.stderr
    with pytest.raises(JaxsimError, match="half-built"):
        Index.open(out, tiny_bert)
    again = cli(*argv)  # without --resume: refused, nothing overwritten
    assert again.returncode == 2 and "pass --resume" in again.stderr

    resumed = cli(*argv, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total - len(killed_at)} shards written, {len(killed_at)} already committed" in resumed.stdout
    rows = []
    for shard in range(total):
        lines = index_store.part_path(out, shard, "docs").read_text(encoding="utf-8").splitlines()
        rows += [json.loads(line)["row"] for line in lines]
    assert sorted(rows) == rows and len(set(rows)) == len(rows)
    assert rows == [r for r in range(n) if r != 17]  # every document exactly once, none lost
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["row"], e["reason"]) for e in errors] == [(17, "empty")]

    index = Index.open(out, tiny_bert, verify=True)
    assert len(index) == n - 1
    assert [index.document(i)["row"] for i in range(len(index))] == rows
    hits = index.search(docs[40], k=5, explain=True)
    assert len(hits) == 5 and all(h.text == docs[h.row] for h in hits)

    other = cli("search", "--index", str(out), "--model", "all-MiniLM-L6-v2", "--weights-dir",
                str(weights_dir), "a dog")
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert tiny_bert_dir.name in other.stderr and "all-MiniLM-L6-v2" in other.stderr
    assert "model weights" in other.stderr


def test_search_with_another_model_is_refused_naming_both(tiny_index, minilm):
    with pytest.raises(JaxsimError) as info:
        Index.open(tiny_index.path, minilm)
    message = str(info.value)
    assert tiny_index.model.name in message and "all-MiniLM-L6-v2" in message
    assert "\n" not in message and "--model" in message


def test_a_resume_with_other_settings_or_another_model_is_refused(tiny_bert, minilm, tmp_path):
    source = write_txt(tmp_path / "docs.txt", synthetic_docs(6))
    build(source, tmp_path / "idx", model=tiny_bert, shard_size=3, progress=False)
    with pytest.raises(JaxsimError, match="other settings.*factors"):
        build(source, tmp_path / "idx", model=tiny_bert, shard_size=3, factors="fp32", resume=True)
    with pytest.raises(JaxsimError, match="other settings.*model"):
        build(source, tmp_path / "idx", model=minilm, shard_size=3, resume=True)
    write_txt(source, synthetic_docs(7))
    with pytest.raises(JaxsimError, match="documents changed"):
        build(source, tmp_path / "idx", model=tiny_bert, shard_size=3, resume=True)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(JaxsimError, match="holds no jaxsim index"):
        build(source, tmp_path / "foreign", model=tiny_bert)
    with pytest.raises(JaxsimError, match="holds no jaxsim index: build one"):
        Index.open(tmp_path / "missing", tiny_bert)


def test_a_damaged_shard_is_refused_at_search_and_redone_on_resume(tiny_bert, tmp_path):
    source = write_txt(tmp_path / "docs.txt", synthetic_docs(9))
    build(source, tmp_path / "idx", model=tiny_bert, shard_size=4, progress=False)
    emb = index_store.part_path(tmp_path / "idx", 1, "emb")
    emb.write_bytes(emb.read_bytes()[:-4])
    with pytest.raises(JaxsimError, match="damaged.*part-000001.emb.npy.*--resume"):
        Index.open(tmp_path / "idx", tiny_bert)
    with pytest.warns(UserWarning, match="shard 1 is redone"):
        summary = build(source, tmp_path / "idx", model=tiny_bert, shard_size=4, resume=True,
                        progress=False)
    assert summary.shards_written == 1 and summary.record["complete"]
    assert len(Index.open(tmp_path / "idx", tiny_bert, verify=True)) == 9


def test_long_documents_are_bad_rows_unless_truncated(tiny_bert, tmp_path):
    long = " ".join(["word"] * 600)
    kept = build(["short one", long], tmp_path / "a", model=tiny_bert, progress=False).record
    assert kept["docs"] == 1 and kept["errors_by_reason"] == {"too_long": 1}
    cut = build(["short one", long], tmp_path / "b", model=tiny_bert, truncate=True,
                progress=False).record
    assert cut["docs"] == 2 and cut["errors"] == 0


# --- results: JSON, terminal, HTML, pytree -----------------------------------------------------

def test_search_json_has_the_explain_contract_for_each_hit(tiny_index, tiny_bert_dir, weights_dir,
                                                          tmp_path, capsys):
    assert main(["search", "--index", str(tiny_index.path), "--weights-dir", str(weights_dir),
                 "--top-k", "3", "--explain", "--format", "json", QUERIES[0]]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"query", "model", "hits"} and data["query"] == QUERIES[0]
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3]
    explained = main(["explain", "--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir),
                      "--format", "json", QUERIES[0], data["hits"][0]["text"]])
    assert explained == 0
    reference = json.loads(capsys.readouterr().out)
    assert set(reference) == EXPLAIN_KEYS
    for hit in data["hits"]:
        assert set(hit) == EXPLAIN_KEYS | {"rank", "id", "text", "score"}
    first = data["hits"][0]
    assert first["tokens_a"] == reference["tokens_a"] and first["words_b"] == reference["words_b"]
    assert_relevance_close(np.asarray(first["relevance"]), np.asarray(reference["relevance"]), 1e-5)
    assert first["sum_relevance"] == pytest.approx(np.sum(first["relevance"]), rel=1e-9)

    queries = write_txt(tmp_path / "q.txt", QUERIES)
    out = tmp_path / "hits.jsonl"
    assert main(["search", "--index", str(tiny_index.path), "--weights-dir", str(weights_dir),
                 "--queries", str(queries), "--format", "json", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["query"] for r in lines] == QUERIES
    assert set(lines[0]["hits"][0]) == {"rank", "id", "text", "score"}  # not explained
    assert main(["search", "--index", str(tiny_index.path), "--queries", str(queries), "x"]) == 2


def test_show_lists_each_hit_with_its_top_word_pairs(tiny_index):
    result = tiny_index.search(QUERIES[0], k=4, explain=True)
    text = result.show()
    assert QUERIES[0] in text and f"4 of {len(tiny_index)} documents" in text
    for hit in result:
        a, b, value = hit.top_pairs(1)[0]
        assert f"{a} ~ {b} {value:+.3f}" in text and hit.text in text
    bare = tiny_index.search(QUERIES[0], k=2)
    assert "top pairs" not in bare.show()
    with pytest.raises(JaxsimError, match="explain=True"):
        bare[0].top_pairs()


def test_search_results_are_pytrees():
    result = SearchResult(query="q", model="m", similarity_kind="dot", pooling="mean", documents=2,
                          hits=[SearchHit(rank=1, id="x", row=0, text="t", score=0.5,
                                          explanation=fx.pair_result(0)),
                                SearchHit(rank=2, id=7, row=1, text="u", score=0.4)])
    leaves = jax.tree_util.tree_leaves(result)
    assert len(leaves) == 5  # the one explanation's arrays
    doubled = jax.tree_util.tree_map(lambda x: x * 2 if x.dtype.kind == "f" else x, result)
    np.testing.assert_array_equal(doubled[0].explanation.relevance, 2 * fx.pair_result(0).relevance)
    assert doubled[1].explanation is None and doubled.to_dict()["hits"][1] == {
        "rank": 2, "id": 7, "text": "u", "score": 0.4}


def test_search_page_is_self_contained_and_its_bars_add_up(tiny_index, tmp_path):
    results = tiny_index.search_many(QUERIES, k=4, explain=True)
    page = search_html(results)
    assert EXTERNAL.findall(page) == []
    assert page.count("<script") == 2 and "<style>" in page
    data = page_json(page)
    assert data == json.loads(json.dumps(search_data(results)))
    assert data["kind"] == "search" and [q["query"] for q in data["queries"]] == QUERIES
    for q, result in zip(data["queries"], results, strict=True):
        assert q["words"] == result[0].explanation.words_a
        for hit, real in zip(q["hits"], result, strict=True):
            R = real.explanation.relevance
            assert sum(hit["query_relevance"]) + hit["query_special"] == pytest.approx(R.sum())
            specials_b = R[:, real.explanation.special_b].sum()
            assert sum(hit["doc_relevance"]) + specials_b == pytest.approx(R.sum())
            assert hit["view"]["levels"]["token"]["matrix"] == R.tolist()
    assert page_json(results[0].to_html())["queries"][0]["query"] == QUERIES[0]
    out = tmp_path / "hits.html"
    assert main(["search", "--index", str(tiny_index.path), "--explain", "--format", "html",
                 "--out", str(out), QUERIES[1]]) == 0
    assert EXTERNAL.findall(out.read_text(encoding="utf-8")) == []


def test_package_exports_index():
    assert jaxsim.Index is Index and "Index" in jaxsim.__all__
