"""Typed explanation results shared by every pair explainer.

``PairExplanation`` keeps the raw token-pair relevance (never normalised), the tokens and the
word map; word-level aggregation, JSON, the terminal view and the figures are derived from it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxsim.text import Encoded, aggregate


def word_groups(
    tokens: list[str], word_ids: np.ndarray, words: list[str], special: np.ndarray,
    drop_special: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Labels of the word-level axis and ``i32[n]`` group per token (-1 = dropped).

    With ``drop_special=False`` each special token ([CLS], [SEP]) is a group of its own, in
    token order among the words.
    """
    if drop_special:
        return list(words), np.asarray(word_ids, np.int32)
    labels: list[str] = []
    groups = np.full(len(tokens), -1, np.int32)
    seen: dict[int, int] = {}
    for t, (w, is_special) in enumerate(zip(word_ids, special, strict=True)):
        if is_special:
            groups[t] = len(labels)
            labels.append(tokens[t])
        elif w >= 0:
            if w not in seen:
                seen[w] = len(labels)
                labels.append(words[w])
            groups[t] = seen[w]
    return labels, groups


@dataclasses.dataclass(frozen=True)
class PairExplanation:
    """Token-pair relevance for one text pair.

    relevance: f64[n_a, n_b] raw; ``relevance.sum()`` is what the similarity decomposes into
    (exactly the similarity for BiLRP on a bias-free model). tokens_*: word pieces incl. specials.
    """

    method: str
    model: str
    tokens_a: list[str]
    tokens_b: list[str]
    relevance: np.ndarray
    similarity: float
    similarity_kind: str
    pooling: str
    words_a: list[str]
    words_b: list[str]
    word_ids_a: np.ndarray
    word_ids_b: np.ndarray
    special_a: np.ndarray
    special_b: np.ndarray
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_encodings(
        cls, *, method: str, model: str, a: Encoded, b: Encoded, relevance: np.ndarray,
        similarity: float, similarity_kind: str, pooling: str, extras: dict | None = None,
    ) -> PairExplanation:
        return cls(
            method=method, model=model, tokens_a=a.tokens, tokens_b=b.tokens,
            relevance=np.asarray(relevance), similarity=similarity,
            similarity_kind=similarity_kind, pooling=pooling, words_a=a.words, words_b=b.words,
            word_ids_a=a.word_ids, word_ids_b=b.word_ids, special_a=a.special,
            special_b=b.special, extras=dict(extras or {}),
        )

    @property
    def sum_relevance(self) -> float:
        return float(self.relevance.sum())

    def word_relevance(self, drop_special: bool = True) -> tuple[list[str], list[str], np.ndarray]:
        """Relevance summed over word pieces: (labels_a, labels_b, f64[w_a, w_b])."""
        labels_a, groups_a = word_groups(self.tokens_a, self.word_ids_a, self.words_a,
                                         self.special_a, drop_special)
        labels_b, groups_b = word_groups(self.tokens_b, self.word_ids_b, self.words_b,
                                         self.special_b, drop_special)
        rows = aggregate(self.relevance, groups_a, len(labels_a), axis=0)
        return labels_a, labels_b, aggregate(rows, groups_b, len(labels_b), axis=1)

    def top_pairs(self, k: int = 10, level: str = "word") -> list[tuple[str, str, float]]:
        """The k pairs with the largest |relevance| (signed values), word or token level."""
        if level == "word":
            labels_a, labels_b, matrix = self.word_relevance()
        elif level == "token":
            labels_a, labels_b, matrix = self.tokens_a, self.tokens_b, self.relevance
        else:
            raise ValueError(f"level must be 'word' or 'token', got {level!r}")
        flat = np.argsort(-np.abs(matrix), axis=None)[:k]
        return [(labels_a[i], labels_b[j], float(matrix[i, j]))
                for i, j in zip(*np.unravel_index(flat, matrix.shape), strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON contract (see README): raw relevance as a list of rows."""
        words_a, words_b, word_matrix = self.word_relevance()
        out = {
            "method": self.method,
            "model": self.model,
            "tokens_a": list(self.tokens_a),
            "tokens_b": list(self.tokens_b),
            "relevance": self.relevance.tolist(),
            "similarity": self.similarity,
            "sum_relevance": self.sum_relevance,
            "words_a": words_a,
            "words_b": words_b,
            "word_relevance": word_matrix.tolist(),
        }
        out.update({k: v for k, v in self.extras.items() if k == "word_pairs"})
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def show(self, k: int = 8) -> str:
        """A compact terminal view: header, top word pairs, and the word matrix (÷ max|R|)."""
        from jaxsim.viz.terminal import render_pair

        return render_pair(self, k)

    def to_html(self) -> str:
        """One self-contained HTML page: heatmap, paper-style lines, word / word-piece toggle."""
        from jaxsim.viz.html import pair_html

        return pair_html(self)

    def _repr_html_(self) -> str:  # Jupyter
        from jaxsim.viz.html import notebook_html

        return notebook_html(self.to_html())

    def save_png(self, path: str | Path, kind: str = "both") -> Path:
        """Heatmap (``matrix``), the paper-style figure (``lines``) or ``both`` side by side."""
        from jaxsim.viz.figures import save_pair_png

        return save_pair_png(self, Path(path), kind)
