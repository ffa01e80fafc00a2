"""Self-contained HTML views of explanations: one file, inline CSS and JS, no network.

Each view is the explanation as JSON (``<script type="application/json" id="jaxsim-data">``)
plus a small vanilla-JS renderer (``assets/jaxsim.js``) that draws it as SVG:

- the paper-style pair view: text a above text b, a line per pair whose |value| is at least
  ``threshold x max|value|`` (slider), width and opacity by |value|, red positive, blue negative;
- a heatmap of the pair matrix with hover tooltips (both labels and the value), or bars when a
  method has per-token scores only;
- a word / word-piece toggle where both levels exist, and the summary figures (similarity,
  method, model, conservation).

The page data is a dict ``{"kind", "title", "meta": [[label, text]], "levels": {"word": L,
"token": L}, "default_level", "value_name", "colour": "sign" | "group", ...}`` with a level
``L = {"labels_a", "labels_b", "matrix": [[float | None]] | None, "saliency_a", "saliency_b",
"saliency_name", ...}``. ``groups_html`` takes plain arrays, so any word-group explainer
(GMASK) can use it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.explain.result import (
    Explanation,
    GroupExplanation,
    PairExplanation,
    SearchResult,
    TokenExplanation,
    WordPairExplanation,
)

Data = dict[str, Any]
#: The renderers of each page kind, inlined in order (default: ``jaxsim.js``). ``search.js``
#: registers its kind before ``jaxsim.js`` draws the page with it.
SCRIPTS: dict[str, tuple[str, ...]] = {"search": ("search.js", "jaxsim.js")}


def _asset(name: str) -> str:
    return resources.files("jaxsim.viz").joinpath("assets", name).read_text(encoding="utf-8")


def _finite(value: Any) -> Any:
    """Floats for JSON: NaN and inf become None (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def data_json(data: Data) -> str:
    """The page data as JSON that is safe inside a <script> element (no ``<`` at all)."""
    return json.dumps(_finite(data), ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")


def _static_header(data: Data) -> str:
    """Title and summary as plain HTML, readable without JavaScript."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in data.get("meta", []))
    return (f"<header id='jaxsim-static'><h1>{html.escape(str(data.get('title', 'jaxsim')))}</h1>"
            f"<table class='jx-meta'>{rows}</table></header>")


def page(data: Data) -> str:
    """A whole HTML document drawing ``data`` (an explanation or a corpus report)."""
    title = html.escape(str(data.get("title", "jaxsim")))
    script = "\n".join(_asset(name) for name in SCRIPTS.get(data.get("kind"), ("jaxsim.js",)))
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{_asset('jaxsim.css')}</style></head><body>"
        f"{_static_header(data)}<noscript><p>The views need JavaScript; the data is in the "
        "<code>jaxsim-data</code> script element as JSON.</p></noscript><div id='jaxsim-root'></div>"
        f"<script type='application/json' id='jaxsim-data'>{data_json(data)}</script>"
        f"<script>{script}</script></body></html>\n"
    )


def notebook_html(document: str, height: int = 760) -> str:
    """``_repr_html_``: the page in a sandboxed ``srcdoc`` iframe, so its script runs and its
    CSS stays inside (Jupyter, JupyterLab, VS Code)."""
    return (f"<iframe srcdoc=\"{html.escape(document, quote=True)}\" sandbox='allow-scripts' "
            f"style='width:100%;height:{int(height)}px;border:1px solid #ddd'></iframe>")


def _rows(matrix: np.ndarray) -> list[list[float]]:
    return np.asarray(matrix, np.float64).tolist()


def _conservation(total: float, target: float, what: str) -> str:
    if target == 0 or not math.isfinite(target):
        return f"sum = {total:.6g}, {what} = {target:.6g}"
    return f"sum / {what} = {total / target:.4f} (sum − {what} = {total - target:+.3g})"


# --- token-pair relevance (BiLRP, HxP, embedding baselines) ----------------------------------

def pair_level(labels_a: Sequence[str], labels_b: Sequence[str], matrix: np.ndarray) -> Data:
    """A matrix level; the chips are shaded by the marginal relevance (row / column sums)."""
    matrix = np.asarray(matrix, np.float64)
    if matrix.shape != (len(labels_a), len(labels_b)):
        raise JaxsimError(f"relevance has shape {matrix.shape}, expected "
                          f"({len(labels_a)}, {len(labels_b)}) from the labels")
    return {"labels_a": list(labels_a), "labels_b": list(labels_b), "matrix": _rows(matrix),
            "saliency_a": matrix.sum(1).tolist(), "saliency_b": matrix.sum(0).tolist(),
            "saliency_name": "marginal relevance"}


def pair_data(result) -> Data:
    """Page data of a ``PairExplanation``: word and word-piece levels of R."""
    words_a, words_b, word_matrix = result.word_relevance()
    kind = result.similarity_kind
    return {
        "kind": "pair", "title": f"{result.method} · {result.model}",
        "meta": [["method", result.method], ["model", result.model], ["pooling", result.pooling],
                 [f"similarity ({kind})", f"{result.similarity:.6g}"],
                 ["sum of relevance", f"{result.sum_relevance:.6g}"],
                 ["conservation", _conservation(result.sum_relevance, result.similarity, "similarity")]],
        "levels": {"word": pair_level(words_a, words_b, word_matrix),
                   "token": pair_level(result.tokens_a, result.tokens_b, result.relevance)},
        "default_level": "word", "value_name": "relevance", "colour": "sign",
        "notes": ["Word level: relevance summed over each word's pieces, special tokens dropped."],
    }


def pair_html(result) -> str:
    return page(pair_data(result))


# --- matched word pairs (BTI and its baselines) ----------------------------------------------

def _index(pair: dict[str, Any], side: str, words: Sequence[str]) -> int:
    """The word index of one side of a pair dict: ``pair[side]`` if stored, else the first word
    with that text (repeated words then map to their first occurrence)."""
    if isinstance(pair.get(side), int):
        return pair[side]
    word = pair[f"word_{side}"]
    if word not in words:
        raise JaxsimError(f"pair word {word!r} is not a word of text {side}")
    return list(words).index(word)


def word_pair_level(words_a: Sequence[str], words_b: Sequence[str], pairs: Sequence[dict[str, Any]],
                    selected: Sequence[dict[str, Any]], saliency_a, saliency_b) -> Data:
    """Matrix of pair scores (None where two words were not matched); ``selected`` outlined."""
    matrix: list[list[float | None]] = [[None] * len(words_b) for _ in words_a]
    for p in pairs:
        matrix[_index(p, "a", words_a)][_index(p, "b", words_b)] = float(p["score"])
    return {"labels_a": list(words_a), "labels_b": list(words_b), "matrix": matrix,
            "selected": [[_index(p, "a", words_a), _index(p, "b", words_b)] for p in selected],
            "saliency_a": np.asarray(saliency_a, np.float64).tolist(),
            "saliency_b": np.asarray(saliency_b, np.float64).tolist(), "saliency_name": "saliency"}


def _selection_threshold(pairs: Sequence[dict[str, Any]], selected: Sequence[dict[str, Any]]) -> float:
    """The slider position that shows exactly the selected pairs' lines (when scores are > 0)."""
    peak = max((abs(p["score"]) for p in pairs), default=0.0)
    low = min((p["score"] for p in selected), default=0.0)
    return math.floor(100 * low / peak) / 100 if peak > 0 and low > 0 else 0.2


def word_pairs_data(result) -> Data:
    """Page data of a ``WordPairExplanation`` (BTI): every matched pair, the selected outlined."""
    pairs = list(result.all_pairs) or list(result.word_pairs)
    return {
        "kind": "word_pairs", "title": f"{result.method} · {result.model}",
        "meta": [["method", result.method], ["model", result.model],
                 ["similarity (cosine)", f"{result.similarity:.6g}"],
                 ["selected pairs", f"{len(result.word_pairs)} of {len(pairs)} matched"],
                 ["conservation", "not defined (saliencies are normalised per text)"]],
        "levels": {
            "word": word_pair_level(result.words_a, result.words_b, pairs, result.word_pairs,
                                    result.word_saliency_a, result.word_saliency_b),
            "token": {"labels_a": list(result.tokens_a), "labels_b": list(result.tokens_b),
                      "matrix": None, "saliency_a": np.asarray(result.token_saliency_a).tolist(),
                      "saliency_b": np.asarray(result.token_saliency_b).tolist(),
                      "saliency_name": "saliency"},
        },
        "default_level": "word", "default_threshold": _selection_threshold(pairs, result.word_pairs),
        "value_name": "score", "colour": "sign",
        "notes": ["score = cosine × saliency_a × saliency_b; the selected pairs are outlined in the "
                  "matrix, and the initial threshold shows exactly their lines."],
    }


def word_pairs_html(result) -> str:
    return page(word_pairs_data(result))


# --- first-order token scores (pair classifiers) ---------------------------------------------

def split_pair_tokens(segment: np.ndarray) -> int:
    """Where text b starts in ``[CLS] a [SEP] b [SEP]``: the first token of segment 1."""
    starts = np.flatnonzero(np.asarray(segment) == 1)
    return int(starts[0]) if len(starts) else len(segment)


def token_scores_data(result) -> Data:
    """Page data of a ``TokenExplanation``: per-token and per-word scores of both texts."""
    cut = split_pair_tokens(result.segment)
    scores = np.asarray(result.scores, np.float64)
    words, word_values = result.word_scores()
    side_of_word = np.zeros(len(words), np.int32)
    for t, w in enumerate(result.word_ids):
        if w >= 0:
            side_of_word[w] = result.segment[t]
    in_a = side_of_word == 0
    probs = result.probabilities
    signed_sum = float(np.asarray(result.signed).sum())
    name = f"{result.method} score"
    return {
        "kind": "token_scores", "title": f"{result.method} · {result.model}",
        "meta": [["method", result.method], ["model", result.model],
                 ["prediction", f"{result.labels[result.predicted]} (p = {probs[result.predicted]:.4f})"],
                 ["explained", f"{result.output} of {result.target_label} = {result.explained_value:.6g}"],
                 ["sum of signed scores", f"{signed_sum:.6g}"],
                 ["conservation", _conservation(signed_sum, result.explained_value, "explained")]],
        "levels": {
            "word": {"labels_a": [w for w, k in zip(words, in_a, strict=True) if k],
                     "labels_b": [w for w, k in zip(words, in_a, strict=True) if not k],
                     "matrix": None, "saliency_a": word_values[in_a].tolist(),
                     "saliency_b": word_values[~in_a].tolist(), "saliency_name": name},
            "token": {"labels_a": list(result.tokens[:cut]), "labels_b": list(result.tokens[cut:]),
                      "matrix": None, "saliency_a": scores[:cut].tolist(),
                      "saliency_b": scores[cut:].tolist(), "saliency_name": name},
        },
        "default_level": "word", "value_name": name, "colour": "sign",
        "notes": ["First-order scores explain the classifier's output for the pair read together; "
                  "special tokens belong to the text they close."],
    }


def token_scores_html(result) -> str:
    return page(token_scores_data(result))


# --- word groups across both texts (GMASK) ---------------------------------------------------

def group_ids(groups, n_a: int, n_b: int, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``groups`` as ``(i32[n_a], i32[n_b])`` group per word (-1: in no group).

    Accepts an ``int[n_a + n_b]`` group per word (a's words then b's, -1 for none), or one
    ``(word indices of a, word indices of b)`` per group.
    """
    if isinstance(groups, np.ndarray) or all(isinstance(g, int | np.integer) for g in groups):
        ids = np.asarray(groups)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) != n_a + n_b:
            raise JaxsimError(f"group ids must be int[{n_a} + {n_b}] (a's words, then b's), got "
                              f"{ids.dtype}{list(ids.shape)}")
        ga, gb = ids[:n_a].astype(np.int64), ids[n_a:].astype(np.int64)
    else:
        ga, gb = np.full(n_a, -1, np.int64), np.full(n_b, -1, np.int64)
        if len(groups) != n_groups:
            raise JaxsimError(f"{len(groups)} groups but {n_groups} importance values")
        for g, members in enumerate(groups):
            if len(members) != 2:
                raise JaxsimError("each group must be (word indices of a, word indices of b)")
            for side, n, ids, chosen in (("a", n_a, ga, members[0]), ("b", n_b, gb, members[1])):
                for i in chosen:
                    if not 0 <= int(i) < n:
                        raise JaxsimError(f"group {g} names word {i} of text {side}, which has "
                                          f"{n} words")
                    ids[int(i)] = g
    bad = [int(g) for g in np.concatenate([ga, gb]) if g >= n_groups or g < -1]
    if bad:
        raise JaxsimError(f"group ids {sorted(set(bad))} out of range: {n_groups} importance values")
    return ga, gb


def groups_data(words_a: Sequence[str], words_b: Sequence[str], groups, importance, *,
                method: str = "gmask", model: str = "", similarity: float | None = None,
                title: str | None = None) -> Data:
    """Page data of a word-group explanation: words coloured by group, a line between the words
    of a and b in the same group, a matrix with the group's importance where both are in it.

    importance: f[g] one value per group (any sign). groups: see ``group_ids``.
    """
    importance = np.asarray(importance, np.float64).reshape(-1)
    if not np.isfinite(importance).all():
        raise JaxsimError("group importance has NaN or inf values")
    ga, gb = group_ids(groups, len(words_a), len(words_b), len(importance))
    matrix = [[float(importance[g]) if g >= 0 and g == h else None for h in gb] for g in ga]
    legend = [{"id": g, "importance": float(importance[g]),
               "words_a": [w for w, k in zip(words_a, ga, strict=True) if k == g],
               "words_b": [w for w, k in zip(words_b, gb, strict=True) if k == g]}
              for g in np.argsort(-importance, kind="stable").tolist()]
    meta = [["method", method], ["model", model or "—"], ["groups", str(len(importance))]]
    if similarity is not None:
        meta.append(["similarity", f"{similarity:.6g}"])
    return {
        "kind": "groups", "title": title or f"{method} · {model}".strip(" ·"), "meta": meta,
        "levels": {"word": {
            "labels_a": list(words_a), "labels_b": list(words_b), "matrix": matrix,
            "group_a": ga.tolist(), "group_b": gb.tolist(),
            "saliency_a": [float(importance[g]) if g >= 0 else None for g in ga],
            "saliency_b": [float(importance[g]) if g >= 0 else None for g in gb],
            "saliency_name": "group importance"}},
        "default_level": "word", "default_threshold": 0.0, "value_name": "importance",
        "colour": "group", "groups": legend,
    }


def groups_html(words_a: Sequence[str], words_b: Sequence[str], groups, importance, **meta) -> str:
    """One self-contained page for word groups (GMASK); see ``groups_data``."""
    return page(groups_data(words_a, words_b, groups, importance, **meta))


def gmask_groups_data(result: GroupExplanation) -> Data:
    """Page data of a GMASK result: word pieces of both texts coloured by group, lines between
    the pieces of a and b in the same group, ψ per group (``groups_data``)."""
    sides = [np.flatnonzero(result.segment == s) for s in (0, 1)]
    pieces = [[result.tokens[t] for t in idx] for idx in sides]
    groups = [int(result.groups[t]) for idx in sides for t in idx]
    return groups_data(pieces[0], pieces[1], groups, np.asarray(result.extras["group_probs"]),
                       method="gmask", model=result.model)


def explanation_data(result: Explanation) -> Data:
    """Page data of any jaxsim result (pair relevance, word pairs, word groups, token scores or
    search hits; IMASK results show their token scores)."""
    if isinstance(result, PairExplanation):
        return pair_data(result)
    if isinstance(result, SearchResult):
        from jaxsim.viz.search import search_data  # it builds on this module's pair_data

        return search_data([result])
    if isinstance(result, WordPairExplanation):
        return word_pairs_data(result)
    if isinstance(result, GroupExplanation) and result.method == "gmask":
        return gmask_groups_data(result)
    if isinstance(result, TokenExplanation):
        return token_scores_data(result)
    raise JaxsimError(f"no HTML view for {type(result).__name__}")


def explanation_html(result) -> str:
    return page(explanation_data(result))
