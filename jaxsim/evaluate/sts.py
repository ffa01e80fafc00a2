"""STS evaluation: Spearman rho x 100 between model similarity and gold scores ([BiLRP] §4.4)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from jaxsim.errors import InputTextError


def read_scored_pairs(path: str | Path, limit: int | None = None) -> list[tuple[str, str, float]]:
    """A UTF-8 TSV with header ``sentence1, sentence2, score`` -> [(a, b, score)]."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            pairs = [(r["sentence1"], r["sentence2"], float(r["score"])) for r in rows]
    except (KeyError, ValueError, UnicodeDecodeError) as err:
        raise InputTextError(f"{path} is not a UTF-8 TSV with sentence1/sentence2/score: {err}") from err
    return pairs[:limit] if limit else pairs


def sts_spearman(model, pairs: list[tuple[str, str, float]], similarity: str = "cosine",
                 batch_size: int = 64) -> float:
    """Spearman rho x 100 of cosine (or dot) similarity of pooled embeddings vs gold."""
    a = model.embed([p[0] for p in pairs], batch_size=batch_size, normalize=similarity == "cosine")
    b = model.embed([p[1] for p in pairs], batch_size=batch_size, normalize=similarity == "cosine")
    predicted = (a.astype(np.float64) * b).sum(-1)
    return 100.0 * float(spearmanr(predicted, [p[2] for p in pairs]).statistic)
