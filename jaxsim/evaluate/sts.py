"""STS evaluation: Spearman rho x 100 between model similarity and gold scores ([BiLRP] §4.4, Table 1).

The similarity is the cosine (default, METHODS.md A1) or the dot product of the pooled embeddings;
Spearman's rho is scipy's (average ranks for ties), as in ``jaxsim.evaluate.sanity``.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import spearmanr

from jaxsim.errors import InputTextError, JaxsimError

if TYPE_CHECKING:
    from jaxsim.model import Model


def read_scored_pairs(path: str | Path, limit: int | None = None) -> list[tuple[str, str, float]]:
    """A UTF-8 TSV with header ``sentence1, sentence2, score`` -> [(a, b, score)] (first ``limit``)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            pairs = [(r["sentence1"], r["sentence2"], float(r["score"])) for r in rows]
    except FileNotFoundError as err:
        raise InputTextError(f"{path}: no such file") from err
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise InputTextError(f"{path} is not a UTF-8 TSV with sentence1/sentence2/score: {err}") from err
    return pairs[:limit] if limit else pairs


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of ``f[N]`` and ``f[N]``: Pearson correlation of their average ranks (nan
    if either is constant)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise JaxsimError(f"spearman needs two 1-d arrays of one length >= 2, got {x.shape} and {y.shape}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # scipy warns and returns nan: keep it quiet
        return float("nan")
    return float(spearmanr(x, y).statistic)


def undefined_reason(predicted: np.ndarray, gold: np.ndarray) -> str | None:
    """Why Spearman's rho of ``predicted`` and ``gold`` is undefined (one of them is constant:
    its ranks have no variance), or None when it is defined."""
    if len(gold) < 2:
        return f"only {len(gold)} pair"
    if np.ptp(gold) == 0:
        return f"every gold score is {gold[0]:g}"
    if np.ptp(predicted) == 0:
        return f"the model gives every pair the same similarity ({predicted[0]:.6g})"
    return None


def pair_similarities(model: Model, pairs: Sequence[tuple[str, str, float]] | Sequence[tuple[str, str]],
                      similarity: str = "cosine", batch_size: int = 64) -> np.ndarray:
    """``f64[N]`` cosine (or dot) similarity of each pair's pooled embeddings."""
    if similarity not in ("cosine", "dot"):
        raise JaxsimError(f"unknown similarity {similarity!r}: choose cosine or dot")
    texts = [p[0] for p in pairs] + [p[1] for p in pairs]
    vectors = model.embed(texts, batch_size=batch_size, normalize=similarity == "cosine").astype(np.float64)
    a, b = vectors[: len(pairs)], vectors[len(pairs):]
    return (a * b).sum(-1)


def sts_spearman(model: Model, pairs: Sequence[tuple[str, str, float]], similarity: str = "cosine",
                 batch_size: int = 64, what: str = "the pairs") -> float:
    """Spearman rho x 100 of the pairs' model similarity vs their gold scores; nan, with a
    warning that says why (``undefined_reason``), when one side is constant."""
    predicted = pair_similarities(model, pairs, similarity, batch_size)
    gold = np.array([p[2] for p in pairs], np.float64)
    reason = undefined_reason(predicted, gold)
    if reason is not None:
        warnings.warn(f"Spearman's rho is undefined on {what}: {reason} (a constant has no "
                      "ranking to correlate)", stacklevel=2)
        return float("nan")
    return 100.0 * spearman(predicted, gold)


def sts_table(model: Model, datasets: Mapping[str, str | Path], poolings: Sequence[str] = ("cls",
              "mean", "qkv"),
              similarity: str = "cosine", qkv_params: dict | None = None, batch_size: int = 64,
              limit: int | None = None) -> dict[str, dict[str, float]]:
    """``{pooling: {dataset: rho x 100}}`` for every pooling of ``model`` on every TSV in
    ``datasets`` (name -> path). ``qkv`` uses ``qkv_params`` or, if None, the untrained init
    (query 0: attention-uniform, i.e. a mean of near-identity value projections)."""
    data = {name: read_scored_pairs(path, limit) for name, path in datasets.items()}
    table: dict[str, dict[str, float]] = {}
    for pooling in poolings:
        m = model.with_pooling(pooling, qkv_params if pooling == "qkv" else None)
        table[pooling] = {name: sts_spearman(m, pairs, similarity, batch_size,
                                             what=f"{name} ({pooling} pooling)")
                          for name, pairs in data.items()}
    return table
