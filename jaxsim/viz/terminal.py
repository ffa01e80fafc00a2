"""Terminal views of every result (no colours needed, readable in logs): ``render(result, k)``."""

from __future__ import annotations

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

# A cell that rounds to zero. Not "." : that is also a token (the full stop), and a matrix of
# "." cells next to a "." column read as if the full stop were everywhere.
NEAR_ZERO = "·"


def _cell(value: float) -> str:
    return f"{value:+.2f}" if abs(value) >= 0.005 else f"   {NEAR_ZERO} "


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


def render_pair(result: PairExplanation, k: int = 8, max_words: int = 14) -> str:
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
    prompts = {result.extras.get("prompt_a"), result.extras.get("prompt_b")} - {None, ""}
    if prompts:  # its pieces carry relevance in the token matrix but belong to no word
        lines[2:2] = [f"prompt before each text: {' / '.join(repr(printable(p)) for p in sorted(prompts))} "
                      "(its pieces are tokens of R, in no word)"]
    width = max([len(w) for w in words_a] + [4])
    width_b = max([len(w) for w in words_b] + [4])
    for a, b, value in result.top_pairs(k):
        a, b = printable(a), printable(b)
        lines.append(f"  {a:>{width}} ~ {b:<{width_b}} {value:+.4f}")
    lines += ["", "strongest partner of each word of a (argmax |relevance| over b):"]
    lines += alignment(words_a, words_b, matrix, width, width_b)
    scale = float(np.abs(matrix).max()) or 1.0
    shown_a, shown_b = words_a[:max_words], words_b[:max_words]
    lines += ["", f"word relevance / max|R|  (rows: text a, columns: text b; {NEAR_ZERO} = |value| < 0.005)"]
    col = max([len(w) for w in shown_b] + [5])
    lines.append(" " * (width + 2) + " ".join(f"{w[:col]:>{col}}" for w in shown_b))
    for i, a in enumerate(shown_a):
        cells = " ".join(f"{_cell(matrix[i, j] / scale):>{col}}" for j in range(len(shown_b)))
        lines.append(f"{a:>{width}}  {cells}")
    if len(words_a) > max_words or len(words_b) > max_words:
        lines.append(f"(matrix truncated to {max_words} words per text)")
    return "\n".join(lines)


def render_word_pairs(result: WordPairExplanation, k: int = 10) -> str:
    lines = [f"{result.method} on {result.model}", f"cosine similarity = {result.similarity:.4f}",
             "", "selected word pairs (score = cosine x saliency_a x saliency_b):"]
    width = max([len(p["word_a"]) for p in result.word_pairs] + [4])
    for p in result.word_pairs[:k]:
        lines.append(f"  {p['word_a']:>{width}} ~ {p['word_b']:<16} {p['score']:.4f}  "
                     f"(c {p['cosine']:.2f}, s {p['saliency_a']:.2f} / {p['saliency_b']:.2f})")
    for name, words, sal in (("a", result.words_a, result.word_saliency_a),
                             ("b", result.words_b, result.word_saliency_b)):
        shown = " ".join(f"{w}({s:.2f})" for w, s in zip(words, sal, strict=True))
        lines.append(f"\nword saliency, text {name}: {shown}")
    return "\n".join(lines)


def render_tokens(result: TokenExplanation, k: int = 8) -> str:
    """Terminal view: prediction, the explained value, top words and the scored tokens."""
    probs = result.probabilities
    lines = [
        f"{result.method} on {result.model}: predicted {result.labels[result.predicted]} "
        f"(p = {probs[result.predicted]:.3f}); explaining the {result.output} of "
        f"{result.target_label} = {result.explained_value:.4f}",
        "", f"top {k} words (score / max):",
    ]
    top = result.top_words(k)
    peak = max((abs(s) for _, _, s in top), default=0.0) or 1.0
    width = max((len(w) for _, w, _ in top), default=0)
    for side, word, score in top:
        lines.append(f"  {side}: {word:<{width}} {score / peak:6.3f} {'#' * round(20 * score / peak)}")
    peak_t = float(np.abs(result.scores).max()) or 1.0
    lines += ["", "tokens (score / max):",
              "  " + " ".join(f"{t}:{s / peak_t:.2f}" for t, s in zip(result.tokens, result.scores,
                                                                    strict=True))]
    return "\n".join(lines)


def group_lines(result: GroupExplanation) -> list[str]:
    """``group i (ψ = ...): a: w1 w2 | b: w3`` for the groups that hold pieces, by ψ."""
    psi = np.asarray(result.extras["group_probs"])
    lines = []
    for g in np.argsort(-psi, kind="stable"):
        members = np.flatnonzero(result.groups == g)
        if not len(members):
            continue
        a = " ".join(result.tokens[t] for t in members if result.segment[t] == 0) or "-"
        b = " ".join(result.tokens[t] for t in members if result.segment[t] == 1) or "-"
        lines.append(f"  group {g} (psi = {psi[g]:.3f}): a: {a} | b: {b}")
    return lines


def render_groups(result: GroupExplanation, k: int = 8) -> str:
    """IMASK: the token-score view. GMASK: θ per word with bars over the *range* of the selected
    pieces' θ (θ is a convex mix of ψ, so the values cluster: bars against the max would all be
    full), each piece's rank, then the word groups."""
    if result.method != "gmask":
        return render_tokens(result, k)
    probs = result.probabilities
    selected = result.scores[result.groups >= 0]
    low, high = (float(selected.min()), float(selected.max())) if selected.size else (0.0, 1.0)
    span = (high - low) or 1.0
    top = [t for t in result.top_words(k) if t[2] > 0]
    width = max((len(w) for _, w, _ in top), default=0)
    rank = {int(t): r + 1 for r, t in enumerate(result.ranking[: selected.size])}
    lines = [f"gmask on {result.model}: predicted {result.labels[result.predicted]} "
             f"(p = {probs[result.predicted]:.3f}); {selected.size} pieces selected, "
             f"theta {low:.4f} .. {high:.4f}", "",
             f"top {len(top)} words (theta; bar = place between the lowest and highest theta):"]
    lines += [f"  {side}: {word:<{width}} {score:.4f} {'#' * (1 + round(19 * (score - low) / span))}"
              for side, word, score in top]
    lines += ["", "tokens (GMASK rank; - = not selected):",
              "  " + " ".join(f"{tok}:{rank.get(t, '-')}" for t, tok in enumerate(result.tokens)),
              "", "word groups (by group selection probability):", *group_lines(result)]
    return "\n".join(lines)


def render_search(result: SearchResult, k: int = 3, width: int = 100) -> str:
    """Each hit: rank, score, id and text (cut to ``width``), then its top ``k`` word pairs
    (query word ~ document word, signed relevance) when the search explained it."""
    lines = [f"search on {result.model} ({result.pooling} pooling, {result.similarity_kind}): "
             f"{len(result.hits)} of {result.documents} documents",
             f"query: {printable(result.query)}", ""]
    for hit in result.hits:
        text = printable(hit.text)
        text = text if len(text) <= width else text[: width - 1] + "…"
        lines.append(f"{hit.rank:>3}. {hit.score:.4f}  [{printable(str(hit.id))}] {text}")
        if hit.explanation is not None:
            e = hit.explanation
            pairs = "   ".join(f"{printable(a)} ~ {printable(b)} {v:+.3f}"
                               for a, b, v in e.top_pairs(k))
            lines.append(f"       sum of relevance {e.sum_relevance:.4f}; top pairs: {pairs}")
    if not result.hits:
        lines.append("  (no documents)")
    return "\n".join(lines)


def render(result: Explanation, k: int | None = None) -> str:
    """The terminal view of any result; ``k`` top items (default: the view's own)."""
    options = {} if k is None else {"k": k}
    if isinstance(result, PairExplanation):
        return render_pair(result, **options)
    if isinstance(result, SearchResult):
        return render_search(result, **options)
    if isinstance(result, WordPairExplanation):
        return render_word_pairs(result, **options)
    if isinstance(result, GroupExplanation):
        return render_groups(result, **options)
    if isinstance(result, TokenExplanation):
        return render_tokens(result, **options)
    raise JaxsimError(f"no terminal view for {type(result).__name__}")


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
