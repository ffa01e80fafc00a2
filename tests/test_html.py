"""HTML views, notebook display, ``jaxsim report`` and the CLI's help (no browser needed)."""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxsim.cli import build_parser, main
from jaxsim.corpus import shards
from jaxsim.corpus.store import Store, pair_record
from jaxsim.errors import JaxsimError
from jaxsim.viz import html as views
from jaxsim.viz.report import contributions, report_html
from tests import html_fixtures as fx

# Anything that could make a page load something: a URL scheme, a protocol-relative or CSS url,
# an attribute that fetches. The SVG namespace is read from the DOM, so no URL is allowed at all.
EXTERNAL = re.compile(r"(?i)\b(?:https?|ftp|wss?|file):|\bsrc\s*=|\bhref\s*=|@import|url\(|<link\b"
                      r"|<img\b|<iframe\b|\bfetch\(|XMLHttpRequest|//[a-z0-9-]+\.[a-z0-9.-]+/")


def _subcommands() -> list[str]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def page_json(page: str) -> dict:
    match = re.search(r"<script type='application/json' id='jaxsim-data'>(.*?)</script>", page, re.S)
    assert match, "no jaxsim-data script"
    return json.loads(match.group(1))


def write_corpus(out: Path, results, store: Store, method: str = "bilrp", pos: bool = False) -> Path:
    """A corpus output folder in the store's format, written by the store's own functions."""
    shards.write_run(out, {"input": "hand.tsv", "method": method, "model": "hand-made",
                           "pooling": "mean", "store": str(store), "shard_size": 2})
    records = []
    for row, result in enumerate(results):
        text_a, text_b = " ".join(result.words_a), " ".join(result.words_b)  # same word split
        record = pair_record(store, row, text_a, text_b, result)
        if pos:
            record["pos_a"] = ["DET", "NOUN", "VERB", "NOUN"][: len(record["words_a"])]
            record["pos_b"] = ["DET", "NOUN", "VERB", "NOUN"][: len(record["words_b"])]
        records.append(record)
    for shard, start in enumerate(range(0, len(records), 2)):
        chunk = records[start:start + 2]  # rows = pairs + bad rows, as a real run commits
        shards.commit_shard(out, {"shard": shard, "first_row": start, "rows": len(chunk),
                                  "process": 0, "errors": []}, chunk)
    shards.write_manifest(out, (len(records) + 1) // 2, {})
    return out


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    return write_corpus(tmp_path / "run", [fx.pair_result(seed) for seed in range(5)], Store("words"))


def all_pages(corpus: Path) -> dict[str, str]:
    return {"pair": fx.pair_result().to_html(), "word_pairs": fx.word_pair_result().to_html(),
            "token_scores": fx.token_result().to_html(),
            "groups": views.groups_html(*fx.GROUP_WORDS, fx.GROUP_IDS, fx.GROUP_IMPORTANCE),
            "report": report_html(corpus), "search": fx.search_result().to_html()}


# --- explanation pages -------------------------------------------------------------------------

def test_pair_page_embeds_word_and_token_relevance_as_json():
    result = fx.pair_result()
    data = page_json(result.to_html())
    words_a, words_b, word_matrix = result.word_relevance()
    word, token = data["levels"]["word"], data["levels"]["token"]
    assert (word["labels_a"], word["labels_b"]) == (words_a, words_b)
    np.testing.assert_array_equal(np.array(word["matrix"]), word_matrix)
    np.testing.assert_array_equal(np.array(token["matrix"]), result.relevance)
    assert token["labels_a"] == result.tokens_a
    np.testing.assert_allclose(word["saliency_a"], word_matrix.sum(1))
    meta = dict(data["meta"])
    assert meta["method"] == "bilrp" and meta["model"] == "hand-made"
    assert meta["conservation"].startswith("sum / similarity = 1.0000")


@pytest.mark.parametrize("kind", ["pair", "word_pairs", "token_scores", "groups", "report", "search"])
def test_pages_hold_no_external_url(kind, corpus_dir):
    page = all_pages(corpus_dir)[kind]
    assert EXTERNAL.findall(page) == []
    assert page.count("<script") == 2 and "<style>" in page  # data + renderer, inline CSS


def test_text_cannot_close_the_data_script():
    result = fx.pair_result()
    hostile = "</script><script>alert(1)</script><!--"
    result = type(result)(**{**result.__dict__, "tokens_a": [hostile] + result.tokens_a[1:]})
    page = result.to_html()
    assert page.count("</script>") == 2
    assert page_json(page)["levels"]["token"]["labels_a"][0] == hostile


def test_non_finite_values_become_null():
    level = views.pair_level(["x"], ["y", "z"], np.array([[np.nan, 1.0]]))
    assert json.loads(views.data_json(level))["matrix"] == [[None, 1.0]]


def test_word_pair_page_outlines_the_selected_pairs_and_starts_at_their_threshold():
    result = fx.word_pair_result()
    data = page_json(result.to_html())
    word = data["levels"]["word"]
    assert word["selected"] == [[2, 2], [1, 1]]
    assert word["matrix"][2][2] == 0.9 and word["matrix"][0][1] is None
    peak = 0.9
    shown = [v for row in word["matrix"] for v in row if v is not None
             and abs(v) >= data["default_threshold"] * peak]
    assert sorted(shown) == [0.7, 0.9]  # exactly the two selected pairs' lines
    assert data["levels"]["token"]["matrix"] is None
    assert data["levels"]["token"]["labels_b"] == result.tokens_b


def test_token_score_page_splits_the_pair_at_text_b():
    result = fx.token_result()
    data = page_json(result.to_html())
    token, word = data["levels"]["token"], data["levels"]["word"]
    assert token["labels_a"] == ["[CLS]", "a", "cat", "[SEP]"]
    assert token["labels_b"] == ["a", "kit", "##ten", "[SEP]"]
    assert (word["labels_a"], word["labels_b"]) == (["a", "cat"], ["a", "kitten"])
    assert word["saliency_b"] == pytest.approx([0.1, 0.9])  # GI sums the pieces
    assert "conservation" in dict(data["meta"])


def test_groups_accept_ids_or_index_lists_and_give_the_same_page():
    words_a, words_b = fx.GROUP_WORDS
    by_ids = views.groups_data(words_a, words_b, fx.GROUP_IDS, fx.GROUP_IMPORTANCE)
    lists = [([1], [1]), ([2], [3]), ([3], [4]), ([5], [6])]
    by_lists = views.groups_data(words_a, words_b, lists, fx.GROUP_IMPORTANCE)
    assert by_ids == by_lists
    level = by_ids["levels"]["word"]
    assert level["matrix"][1][1] == 0.8 and level["matrix"][0][0] is None
    assert [g["id"] for g in by_ids["groups"]] == [0, 1, 3, 2]  # by importance
    assert by_ids["groups"][0]["words_a"] == ["cat"] and by_ids["groups"][0]["words_b"] == ["kitten"]


@pytest.mark.parametrize("groups, importance, message", [
    ([0, 1], [1.0, 2.0], "int\\[6 \\+ 7\\]"),
    ([([9], [0])], [1.0], "word 9 of text a"),
    ([([0], [0])], [1.0, 2.0], "1 groups but 2"),
    ([5] + [-1] * 12, [1.0], "out of range"),
    (fx.GROUP_IDS, [1.0, np.nan, 0.0, 0.0], "NaN"),
])
def test_bad_groups_raise_a_clear_error(groups, importance, message):
    with pytest.raises(JaxsimError, match=message):
        views.groups_data(*fx.GROUP_WORDS, groups, importance)


def test_results_render_in_notebooks_as_a_sandboxed_iframe():
    for result in (fx.pair_result(), fx.word_pair_result(), fx.token_result()):
        shown = result._repr_html_()
        assert shown.startswith("<iframe srcdoc=\"") and "sandbox='allow-scripts'" in shown
        srcdoc = re.match(r'<iframe srcdoc="(.*?)" sandbox', shown, re.S).group(1)
        assert html.unescape(srcdoc) == result.to_html()


def test_show_prints_top_pairs_and_each_words_partner():
    text = fx.pair_result().show()
    assert "top 8 word pairs" in text and "strongest partner" in text
    assert "  plays -> plays  +1.3665 ####################" in text


def test_show_marks_near_zero_cells_with_a_glyph_that_is_not_the_full_stop_token():
    result = fx.pair_result()
    relevance = result.relevance.copy()
    relevance[:, 4] = 1e-9  # the column of "music": every cell rounds to zero
    text = dataclasses.replace(result, relevance=relevance).show()
    rows = text.split("word relevance / max|R|")[1].splitlines()[2:]
    cells = [row.split()[1:] for row in rows]
    assert len(cells) == 4 and all(len(c) == 4 and c[-1] == "·" for c in cells), rows
    assert all(cell != "." for row in cells for cell in row)


# --- corpus report -----------------------------------------------------------------------------

def test_report_summarises_similarities_word_pairs_and_drill_down(corpus_dir):
    data = page_json(report_html(corpus_dir))
    records = list(shards.iter_records(corpus_dir))
    assert sum(data["similarity"]["counts"]) == len(records) == 5
    assert data["similarity"]["edges"][0] == pytest.approx(min(r["similarity"] for r in records))
    expected: dict[tuple[str, str], float] = {}
    for record in records:
        for c in contributions(record, per_pair=20):
            expected[c.word_a, c.word_b] = expected.get((c.word_a, c.word_b), 0.0) + c.value
    best = max(expected.items(), key=lambda kv: kv[1])
    top = data["top_word_pairs"][0]
    assert (top["word_a"], top["word_b"]) == best[0] and top["total"] == pytest.approx(best[1])
    assert [p["id"] for p in data["pairs"]] == list(range(5))
    view = data["pairs"][3]["view"]
    np.testing.assert_allclose(np.array(view["levels"]["word"]["matrix"]), records[3]["word_relevance"])
    assert data["pos"] is None and "pos_a" in data["pos_note"]


def test_report_draws_a_pos_pair_heatmap_when_records_carry_tags(tmp_path):
    out = write_corpus(tmp_path / "run", [fx.pair_result(s) for s in range(3)], Store("words"), pos=True)
    pos = page_json(report_html(out))["pos"]
    assert pos["labels_a"] == ["DET", "NOUN", "VERB"] and pos["labels_b"] == ["DET", "NOUN", "VERB"]
    records = list(shards.iter_records(out))
    noun_verb = [r["word_relevance"][i][2] for r in records for i in (1, 3)]
    assert pos["matrix"][1][2] == pytest.approx(np.mean(noun_verb))


def test_report_reads_topk_and_bti_stores_and_caps_the_drill_down(tmp_path):
    topk = write_corpus(tmp_path / "topk", [fx.pair_result(s) for s in range(4)], Store("topk", 3))
    data = page_json(report_html(topk, max_pairs=2))
    assert len(data["pairs"]) == 2 and "first 2 of 4" in data["pairs_note"]
    assert data["word_pairs_source"] == "the word pairs each record kept"
    kept = data["pairs"][1]["view"]["levels"]["word"]  # the 3 kept entries, None elsewhere
    words_a, words_b, matrix = fx.pair_result(1).word_relevance()
    assert (kept["labels_a"], kept["labels_b"]) == (words_a, words_b)
    assert sorted(v for row in kept["matrix"] for v in row if v is not None) == sorted(
        v for _, _, v in fx.pair_result(1).top_pairs(3))
    bti = write_corpus(tmp_path / "bti", [fx.word_pair_result()] * 2, Store("full"), method="bti")
    data = page_json(report_html(bti))
    assert (data["top_word_pairs"][0]["word_a"], data["top_word_pairs"][0]["total"]) == ("dress", 1.8)
    assert data["pairs"][0]["view"]["levels"]["word"]["selected"] == [[2, 2], [1, 1]]
    full = write_corpus(tmp_path / "full", [fx.pair_result(s) for s in range(3)], Store("full"))
    data = page_json(report_html(full, token_cells=2 * 7 * 6))  # room for two pairs' R
    assert [set(p["view"]["levels"]) for p in data["pairs"]] == [{"word", "token"}] * 2 + [{"word"}]
    assert "1 pairs at word level only" in data["pairs_note"]


def test_report_cli_writes_the_page_and_rejects_a_folder_without_a_run(corpus_dir, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--input", str(corpus_dir), "--out", str(out)]) == 0
    assert "wrote corpus report" in capsys.readouterr().out
    assert page_json(out.read_text(encoding="utf-8"))["kind"] == "report"
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        assert main(["report", "--input", str(folder), "--out", str(out)]) == 2
        assert "jaxsim corpus" in capsys.readouterr().err
    assert main(["report", "--input", str(corpus_dir), "--out", str(out), "--page-size", "0"]) == 2


# --- command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [None, *_subcommands()])
def test_every_help_runs_and_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"] if command is None else [command, "--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out


def test_report_is_a_subcommand():
    assert "report" in _subcommands() and build_parser().parse_args(
        ["report", "--input", "x", "--out", "y"]).max_pairs == 500


def test_the_installed_entry_point_prints_help():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "jaxsim.cli", "--help"], cwd=root, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0 and "report" in done.stdout and "example" in done.stdout
