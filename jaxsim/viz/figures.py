"""Matplotlib figures: the relevance heatmap and the paper-style pair figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsim.errors import JaxsimError, OptionError
from jaxsim.explain.result import Explanation, PairExplanation, TokenExplanation


def _heatmap(ax, labels_a, labels_b, matrix) -> None:
    scale = float(np.abs(matrix).max()) or 1.0
    ax.imshow(matrix / scale, cmap="bwr", vmin=-1, vmax=1)
    ax.set_xticks(range(len(labels_b)), labels_b, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels_a)), labels_a, fontsize=8)
    ax.set_xlabel("text b")
    ax.set_ylabel("text a")


def _lines(ax, labels_a, labels_b, matrix, threshold: float = 0.2) -> None:
    """Text a on top, text b below, a line per pair with |R| >= threshold * max|R|;
    width and opacity by |R|, red positive, blue negative (as the BiLRP paper's figures)."""
    scale = float(np.abs(matrix).max()) or 1.0
    xa = np.linspace(0, 1, len(labels_a)) if len(labels_a) > 1 else np.array([0.5])
    xb = np.linspace(0, 1, len(labels_b)) if len(labels_b) > 1 else np.array([0.5])
    for i, j in zip(*np.nonzero(np.abs(matrix) >= threshold * scale), strict=True):
        value = matrix[i, j] / scale
        ax.plot([xa[i], xb[j]], [1, 0], color="tab:red" if value > 0 else "tab:blue",
                linewidth=4 * abs(value), alpha=min(1.0, 0.2 + abs(value)))
    for x, label in zip(xa, labels_a, strict=True):
        ax.text(x, 1.04, label, rotation=60, ha="left", va="bottom", fontsize=9)
    for x, label in zip(xb, labels_b, strict=True):
        ax.text(x, -0.04, label, rotation=-60, ha="left", va="top", fontsize=9)
    ax.set_xlim(-0.05, 1.1)
    ax.set_ylim(-0.5, 1.5)
    ax.axis("off")


def save_pair_png(result: PairExplanation, path: Path, kind: str = "both") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if kind not in ("matrix", "lines", "both"):
        raise OptionError(f"kind must be matrix, lines or both, got {kind!r}")
    labels_a, labels_b, matrix = result.word_relevance()
    panels = ["matrix", "lines"] if kind == "both" else [kind]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        (_heatmap if panel == "matrix" else _lines)(ax, labels_a, labels_b, matrix)
    fig.suptitle(f"{result.method} · {result.model} · {result.similarity_kind} "
                 f"{result.similarity:.3f}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_token_png(result: TokenExplanation, path: Path) -> Path:
    """Bar chart of the token scores (a's pieces, then b's), specials in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(result.tokens)), 3.0))
    colors = ["0.6" if s < 0 else ("tab:blue" if s == 0 else "tab:orange") for s in result.segment]
    ax.bar(np.arange(len(result.tokens)), result.scores, color=colors)
    ax.set_xticks(np.arange(len(result.tokens)), result.tokens, rotation=90, fontsize=8)
    ax.set_ylabel(f"{result.method} score")
    ax.set_title(f"{result.method}: {result.output} of {result.target_label}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_png(result: Explanation, path: Path, kind: str = "both") -> Path:
    """The figure of any result that has one: pair relevance (``save_pair_png``, ``kind``) or token
    scores (``save_token_png``)."""
    if isinstance(result, PairExplanation):
        return save_pair_png(result, path, kind)
    if isinstance(result, TokenExplanation):
        return save_token_png(result, path)
    raise JaxsimError(f"no figure for {type(result).__name__}: use to_html() or show()")
