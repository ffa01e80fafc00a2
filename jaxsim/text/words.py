"""Words of a text and the word-piece -> word map (METHODS.md §0).

A word is a whitespace-delimited span with its leading and trailing punctuation split off as
one-character words; internal punctuation stays ("touchscreen-compatible", "T-shirts" are one
word, "fabric." is "fabric" + "."). Pieces map to words through the fast tokenizer's character
offsets, so the map works for any tokenizer: WordPiece (``##`` continuations), byte-level BPE
(RoBERTa, ModernBERT: ``Ġ`` marks a leading space) and SentencePiece (XLM-R: ``▁`` marks a word
start; a lone ``▁`` piece belongs to the word after it).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from jaxsim.errors import OptionError

_CHUNK = re.compile(r"\S+")


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith(("P", "S"))


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``[(start, end), ...]`` of the words of ``text``."""
    spans: list[tuple[int, int]] = []
    for m in _CHUNK.finditer(text):
        start, end = m.start(), m.end()
        lead, trail = [], []
        while start < end and _is_punct(text[start]):
            lead.append((start, start + 1))
            start += 1
        while end > start and _is_punct(text[end - 1]):
            trail.append((end - 1, end))
            end -= 1
        spans.extend(lead)
        if start < end:
            spans.append((start, end))
        spans.extend(reversed(trail))
    return spans


def token_word_ids(
    offsets: list[tuple[int, int]], special: list[bool], spans: list[tuple[int, int]]
) -> np.ndarray:
    """``i32[n]``: the word index of each token, -1 for special tokens.

    A piece belongs to the word whose span contains the piece's first non-space character.
    """
    word_ids = np.full(len(offsets), -1, dtype=np.int32)
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    for t, ((start, end), is_special) in enumerate(zip(offsets, special, strict=True)):
        if is_special or end <= start or not spans:
            continue
        w = int(np.searchsorted(starts, start, side="right")) - 1
        # BPE pieces may start with the preceding space: move to the next word then.
        if w < 0 or start >= spans[w][1]:
            w = min(w + 1, len(spans) - 1)
        word_ids[t] = w
    return word_ids


def aggregate(values: np.ndarray, word_ids: np.ndarray, n_words: int, axis: int = 0,
              reduce: str = "sum") -> np.ndarray:
    """Aggregate ``values`` along ``axis`` from tokens to words (tokens with id -1 dropped).

    reduce: ``sum`` (BiLRP, GI, LRP: keeps conservation), ``max`` (BTI saliency, GS, GMASK) or
    ``mean`` (BTI word latents).
    """
    values = np.moveaxis(np.asarray(values), axis, 0)
    out_shape = (n_words,) + values.shape[1:]
    if reduce == "sum":
        out = np.zeros(out_shape, dtype=values.dtype)
        keep = word_ids >= 0
        np.add.at(out, word_ids[keep], values[: len(word_ids)][keep])
    elif reduce in ("max", "mean"):
        out = np.zeros(out_shape, dtype=values.dtype)
        for w in range(n_words):
            rows = values[: len(word_ids)][word_ids == w]
            if len(rows):
                out[w] = rows.max(0) if reduce == "max" else rows.mean(0)
    else:
        raise OptionError(f"unknown reduce {reduce!r}: choose sum, max or mean")
    return np.moveaxis(out, 0, axis)
