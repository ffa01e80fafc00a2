"""What a corpus run stores per pair (``--store``): one JSON-ready record per explained pair.

Every record has ``id`` (the input row), ``text_a``, ``text_b`` and ``similarity``; then

- token-pair methods (bilrp, hxp, embedding), with ``sum_relevance``:
  ``full``: ``PairExplanation.to_dict()`` (tokens, raw ``relevance`` [n_a][n_b], words,
  ``word_relevance``); ``topk:K``: ``top_tokens`` and ``top_words``, the K entries of largest
  |relevance| as ``{"a": i, "b": j, "token_a"/"word_a", "token_b"/"word_b", "relevance"}``;
  ``words``: ``words_a``, ``words_b``, ``word_relevance`` [w_a][w_b].
- word-pair methods (bti and its variants): ``full``: ``WordPairExplanation.to_dict()``;
  ``topk:K``: the first K selected ``word_pairs``; ``words``: words, word saliencies and the
  selected ``word_pairs``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxsim.errors import JaxsimError

KINDS = ("full", "topk", "words")


class Store(NamedTuple):
    """``kind``: full | topk | words; ``k``: entries kept by topk."""

    kind: str
    k: int = 0

    def __str__(self) -> str:
        return f"topk:{self.k}" if self.kind == "topk" else self.kind


def parse_store(spec: str | Store) -> Store:
    """``"full" | "words" | "topk:K"`` -> ``Store``."""
    if isinstance(spec, Store):
        return spec
    kind, _, k = spec.partition(":")
    if kind == "topk" and k.isdigit() and int(k) > 0:
        return Store("topk", int(k))
    if kind in ("full", "words") and not k:
        return Store(kind)
    raise JaxsimError(f"unknown store {spec!r}: choose full, words or topk:K (K >= 1, e.g. topk:8)")


def top_entries(matrix: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """The k entries of largest |value| of ``matrix`` f[n, m] as ``(i, j, value)``, largest
    first (ties: lower flat index first)."""
    flat = np.argsort(-np.abs(matrix), axis=None, kind="stable")[:k]
    return [(int(i), int(j), float(matrix[i, j]))
            for i, j in zip(*np.unravel_index(flat, matrix.shape), strict=True)]


def _top(matrix: np.ndarray, labels_a: list[str], labels_b: list[str], k: int, unit: str
         ) -> list[dict[str, Any]]:
    return [{"a": i, "b": j, f"{unit}_a": labels_a[i], f"{unit}_b": labels_b[j], "relevance": v}
            for i, j, v in top_entries(matrix, k)]


def pair_record(store: Store, row: int, text_a: str, text_b: str, result) -> dict[str, Any]:
    """The stored record of one explained pair (``PairExplanation`` or ``WordPairExplanation``)."""
    record: dict[str, Any] = {"id": row, "text_a": text_a, "text_b": text_b,
                              "similarity": float(result.similarity)}
    if hasattr(result, "relevance"):
        record["sum_relevance"] = result.sum_relevance
        if store.kind == "full":
            body = result.to_dict()
        else:
            words_a, words_b, words = result.word_relevance()
            if store.kind == "words":
                body = {"words_a": words_a, "words_b": words_b, "word_relevance": words.tolist()}
            else:
                body = {"top_tokens": _top(result.relevance, result.tokens_a, result.tokens_b,
                                           store.k, "token"),
                        "top_words": _top(words, words_a, words_b, store.k, "word")}
    else:
        if store.kind == "full":
            body = result.to_dict()
        elif store.kind == "words":
            body = {"words_a": list(result.words_a), "words_b": list(result.words_b),
                    "word_saliency_a": result.word_saliency_a.tolist(),
                    "word_saliency_b": result.word_saliency_b.tolist(),
                    "word_pairs": result.word_pairs}
        else:
            body = {"word_pairs": result.word_pairs[: store.k]}
    body = {k: v for k, v in body.items() if k not in ("method", "model", "similarity")}
    return record | body
