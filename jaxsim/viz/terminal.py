"""Terminal rendering of a pair explanation (no colours needed, readable in logs)."""

from __future__ import annotations

import numpy as np


def _cell(value: float) -> str:
    return f"{value:+.2f}" if abs(value) >= 0.005 else "   . "


def alignment(words_a: list[str], words_b: list[str], matrix: np.ndarray, width: int,
              width_b: int) -> list[str]:
    """One line per word of a: its partner in b of largest |relevance| and that value, with a
    bar of ``#`` (positive) or ``-`` (negative) in twentieths of max|R|."""
    if matrix.size == 0:
        return []
    scale = float(np.abs(matrix).max()) or 1.0
    out = []
    for i, a in enumerate(words_a):
        j = int(np.argmax(np.abs(matrix[i])))
        value = float(matrix[i, j])
        bar = ("#" if value > 0 else "-") * round(20 * abs(value) / scale)
        out.append(f"  {a:>{width}} -> {words_b[j]:<{width_b}} {value:+.4f} {bar}")
    return out


def render_pair(result, k: int = 8, max_words: int = 14) -> str:
    """Header, the top-k word pairs, and the word matrix divided by max|R| (truncated)."""
    words_a, words_b, matrix = result.word_relevance()
    words_a, words_b = [printable(w) for w in words_a], [printable(w) for w in words_b]
    lines = [
        f"{result.method} on {result.model} ({result.pooling} pooling)",
        f"similarity ({result.similarity_kind}) = {result.similarity:.4f}   "
        f"sum of relevance = {result.sum_relevance:.4f}",
        "",
        f"top {k} word pairs (|relevance|, signed):",
    ]
    width = max([len(w) for w in words_a] + [4])
    width_b = max([len(w) for w in words_b] + [4])
    for a, b, value in result.top_pairs(k):
        a, b = printable(a), printable(b)
        lines.append(f"  {a:>{width}} ~ {b:<{width_b}} {value:+.4f}")
    lines += ["", "strongest partner of each word of a (argmax |relevance| over b):"]
    lines += alignment(words_a, words_b, matrix, width, width_b)
    scale = float(np.abs(matrix).max()) or 1.0
    shown_a, shown_b = words_a[:max_words], words_b[:max_words]
    lines += ["", "word relevance / max|R|  (rows: text a, columns: text b)"]
    col = max([len(w) for w in shown_b] + [5])
    lines.append(" " * (width + 2) + " ".join(f"{w[:col]:>{col}}" for w in shown_b))
    for i, a in enumerate(shown_a):
        cells = " ".join(f"{_cell(matrix[i, j] / scale):>{col}}" for j in range(len(shown_b)))
        lines.append(f"{a:>{width}}  {cells}")
    if len(words_a) > max_words or len(words_b) > max_words:
        lines.append(f"(matrix truncated to {max_words} words per text)")
    return "\n".join(lines)


# Characters a terminal acts on instead of showing: C0/C1 controls (ESC starts escape sequences,
# BEL rings), line/paragraph separators and the bidi controls that reorder what follows.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character a terminal would act on (ESC, BEL, CR, U+2028, bidi
    overrides, ...) shown as its escape, e.g. ``\\x1b``; characters in ``keep`` stay as they are."""
    import unicodedata

    return "".join(
        ascii(c)[1:-1] if c not in keep and (c in _BIDI or unicodedata.category(c) in
                                             ("Cc", "Zl", "Zp")) else c
        for c in text)
