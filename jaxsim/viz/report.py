"""``jaxsim report``: one self-contained HTML page summarising a corpus run (``jaxsim corpus``).

It reads the committed shards of an output folder (``jaxsim.corpus.shards.iter_records``) once,
streaming, and shows:

- the run's settings and totals (``run.json``, ``manifest.json``);
- a histogram of the pairs' similarities;
- the most relevant word pairs overall: relevance (BTI: score) summed over all pairs, words
  lower-cased, from each pair's ``per_pair`` strongest word pairs (``words``/``full`` stores) or
  what a ``topk:K`` store kept;
- a part-of-speech-pair heatmap (mean relevance per tag pair) when the records carry tags:
  ``pos_a`` / ``pos_b`` lists aligned with ``words_a`` / ``words_b``, or ``pos_a`` / ``pos_b``
  keys in ``top_words`` / ``word_pairs`` entries; skipped with a note otherwise;
- a paged drill-down into the first ``max_pairs`` pairs, each drawn as ``jaxsim explain``'s page.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxsim.corpus import shards
from jaxsim.errors import JaxsimError
from jaxsim.text.words import word_spans
from jaxsim.viz.html import Data, page, pair_level, word_pair_level


class Contribution(NamedTuple):
    """One word pair of one corpus pair: its relevance (or BTI score) and optional POS tags."""

    word_a: str
    word_b: str
    value: float
    pos_a: str | None = None
    pos_b: str | None = None


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def check_run_dir(out: Path) -> None:
    if not out.is_dir():
        raise JaxsimError(f"{out} is not a folder: pass the --out folder of a `jaxsim corpus` run")
    if not (out / shards.RUN_FILE).is_file() and not shards.finished_shards(out):
        raise JaxsimError(f"{out} holds no corpus run (no {shards.RUN_FILE}, no committed shards): "
                          "pass the --out folder of a `jaxsim corpus` run")


def _tag(tags: list | None, i: int) -> str | None:
    return str(tags[i]) if tags is not None and i < len(tags) else None


def contributions(record: dict[str, Any], per_pair: int) -> list[Contribution]:
    """The word pairs a stored record holds, strongest first (see the module doc)."""
    if "word_relevance" in record:
        matrix = np.asarray(record["word_relevance"], np.float64)
        if matrix.size == 0:
            return []
        flat = np.argsort(-np.abs(matrix), axis=None, kind="stable")[:per_pair]
        pos_a, pos_b = record.get("pos_a"), record.get("pos_b")
        return [Contribution(record["words_a"][i], record["words_b"][j], float(matrix[i, j]),
                             _tag(pos_a, i), _tag(pos_b, j))
                for i, j in zip(*np.unravel_index(flat, matrix.shape), strict=True)]
    if "top_words" in record:
        return [Contribution(e["word_a"], e["word_b"], float(e["relevance"]), e.get("pos_a"),
                             e.get("pos_b")) for e in record["top_words"]]
    if "word_pairs" in record:
        return [Contribution(p["word_a"], p["word_b"], float(p["score"]), p.get("pos_a"),
                             p.get("pos_b")) for p in record["word_pairs"]]
    return []


def _words_of(text: str) -> list[str]:
    return [text[s:e] for s, e in word_spans(text)]


def _sparse_level(record: dict[str, Any]) -> Data | None:
    """A ``topk`` record's word level: the text's words, the kept entries, None elsewhere."""
    words_a, words_b = _words_of(record["text_a"]), _words_of(record["text_b"])
    entries = record.get("top_words", [])
    fits = all(e["a"] < len(words_a) and e["b"] < len(words_b) and words_a[e["a"]] == e["word_a"]
               and words_b[e["b"]] == e["word_b"] for e in entries)
    if not entries or not fits:
        return None
    matrix: list[list[float | None]] = [[None] * len(words_b) for _ in words_a]
    for e in entries:
        matrix[e["a"]][e["b"]] = float(e["relevance"])
    sums = np.nan_to_num(np.array(matrix, dtype=np.float64))
    return {"labels_a": words_a, "labels_b": words_b, "matrix": matrix,
            "saliency_a": sums.sum(1).tolist(), "saliency_b": sums.sum(0).tolist(),
            "saliency_name": "kept relevance"}


def pair_view(record: dict[str, Any], with_tokens: bool = True) -> Data | None:
    """The drill-down page data of one stored record (the levels its store kept; the word-piece
    level only ``with_tokens``)."""
    levels: dict[str, Data] = {}
    value_name, threshold = "relevance", 0.2
    if "word_relevance" in record:
        levels["word"] = pair_level(record["words_a"], record["words_b"],
                                    np.asarray(record["word_relevance"], np.float64).reshape(
                                        len(record["words_a"]), len(record["words_b"])))
        if "relevance" in record and with_tokens:
            levels["token"] = pair_level(record["tokens_a"], record["tokens_b"],
                                         np.asarray(record["relevance"], np.float64))
    elif "top_words" in record:
        level = _sparse_level(record)
        if level is not None:
            levels["word"] = level
    elif "word_pairs" in record:
        words_a = record.get("words_a") or _words_of(record["text_a"])
        words_b = record.get("words_b") or _words_of(record["text_b"])
        sal_a = record.get("word_saliency_a") or [None] * len(words_a)
        sal_b = record.get("word_saliency_b") or [None] * len(words_b)
        try:
            levels["word"] = word_pair_level(words_a, words_b, record["word_pairs"],
                                             record["word_pairs"], sal_a, sal_b)
        except JaxsimError:  # a pair word not among the text's words (truncated text)
            return None
        value_name, threshold = "score", 0.0
    if not levels:
        return None
    meta = [["similarity", f"{record['similarity']:.6g}"]]
    if "sum_relevance" in record:
        meta.append(["sum of relevance", f"{record['sum_relevance']:.6g}"])
    return {"kind": "pair", "title": None, "meta": meta, "levels": levels,
            "default_level": "word", "default_threshold": threshold, "value_name": value_name,
            "colour": "sign"}


def _top_pairs(totals: dict[tuple[str, str], list[float]], top: int) -> list[dict[str, Any]]:
    rows = [{"word_a": a, "word_b": b, "count": int(n), "total": s, "mean": s / n}
            for (a, b), (s, n) in totals.items()]
    return sorted(rows, key=lambda r: (-r["total"], r["word_a"], r["word_b"]))[:top]


def _pos_level(pos: dict[tuple[str, str], list[float]]) -> Data | None:
    if not pos:
        return None
    tags_a = sorted({a for a, _ in pos})
    tags_b = sorted({b for _, b in pos})
    matrix = [[pos[a, b][0] / pos[a, b][1] if (a, b) in pos else None for b in tags_b] for a in tags_a]
    return {"labels_a": tags_a, "labels_b": tags_b, "matrix": matrix, "value_name": "mean relevance"}


def _meta(out: Path, run: dict | None, manifest: dict | None, pairs: int) -> list[list[str]]:
    run = run or {}
    meta = [["output folder", str(out)], ["input", str(run.get("input", "?"))],
            ["method", str(run.get("method", "?"))], ["model", str(run.get("model", "?"))],
            ["pooling", str(run.get("pooling", "?"))], ["store", str(run.get("store", "?"))],
            ["pairs", str(pairs)]]
    if manifest:
        meta += [["bad rows", f"{manifest.get('errors', 0)} {manifest.get('errors_by_reason', {})}"],
                 ["shards", f"{manifest.get('finished_shards')} of {manifest.get('total_shards')} "
                            f"({'complete' if manifest.get('complete') else 'incomplete'})"]]
    return meta


def report_data(records: Iterable[dict[str, Any]], *, out: Path, run: dict | None = None,
                manifest: dict | None = None, max_pairs: int = 500, per_pair: int = 20,
                top: int = 30, bins: int = 20, page_size: int = 20,
                token_cells: int = 1_000_000) -> Data:
    """Aggregate the records of a corpus run into the report's page data (one pass).

    token_cells: budget of word-piece matrix entries embedded for the drill-down (a ``full``
    store keeps [n_a, n_b] per pair); past it, pairs are drawn at word level only.
    """
    similarities: list[float] = []
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    pos: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    drill: list[dict[str, Any]] = []
    stores: set[str] = set()
    cells_left, tokens_dropped = token_cells, 0
    for record in records:
        similarities.append(float(record["similarity"]))
        for c in contributions(record, per_pair):
            entry = totals[c.word_a.lower(), c.word_b.lower()]
            entry[0] += c.value
            entry[1] += 1
            if c.pos_a is not None and c.pos_b is not None:
                tag = pos[c.pos_a, c.pos_b]
                tag[0] += c.value
                tag[1] += 1
        stores.add("word_relevance" if "word_relevance" in record else
                   "top_words" if "top_words" in record else "word_pairs")
        if len(drill) < max_pairs:
            cells = len(record.get("tokens_a", ())) * len(record.get("tokens_b", ()))
            with_tokens = cells <= cells_left
            cells_left -= cells if with_tokens else 0
            tokens_dropped += "relevance" in record and not with_tokens
            drill.append({"id": record["id"], "text_a": record["text_a"], "text_b": record["text_b"],
                          "similarity": record["similarity"], "view": pair_view(record, with_tokens)})
    if not similarities:
        raise JaxsimError(f"{out} has no explained pairs yet (no committed shard with records)")
    counts, edges = np.histogram(np.asarray(similarities), bins=bins)
    source = ("BTI scores of the selected pairs" if stores == {"word_pairs"} else
              f"the {per_pair} strongest word pairs of each pair" if stores == {"word_relevance"}
              else "the word pairs each record kept")
    pos_level = _pos_level(dict(pos))
    return {
        "kind": "report", "title": f"jaxsim corpus report · {(run or {}).get('method', '')}".strip(" ·"),
        "meta": _meta(out, run, manifest, len(similarities)),
        "similarity": {"counts": counts.tolist(), "edges": edges.tolist()},
        "top_word_pairs": _top_pairs(dict(totals), top), "word_pairs_source": source,
        "pos": pos_level,
        "pos_note": "No part-of-speech tags in these records: add pos_a / pos_b (one tag per word) "
                    "to the records or to their top_words / word_pairs entries to get this heatmap.",
        "pairs": drill, "page_size": page_size,
        "pairs_note": " ".join(
            ([f"The first {max_pairs} of {len(similarities)} pairs (--max-pairs)."]
             if len(similarities) > max_pairs else []) +
            ([f"{tokens_dropped} pairs at word level only (word-piece matrices past "
              f"{token_cells} entries are left out to keep the page small)."]
             if tokens_dropped else [])) or None,
    }


def report_html(out: str | Path, **options) -> str:
    """The report page of the corpus run in ``out`` (options: see ``report_data``)."""
    out = Path(out)
    check_run_dir(out)
    data = report_data(shards.iter_records(out), out=out, run=_read_json(out / shards.RUN_FILE),
                       manifest=_read_json(out / shards.MANIFEST_FILE), **options)
    return page(data)


def write_report(out: str | Path, path: str | Path, **options) -> Path:
    path = Path(path)
    text = report_html(out, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
