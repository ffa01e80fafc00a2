"""STS evaluation: Spearman rho x 100 between model similarity and gold scores ([BiLRP] §4.4, Table 1).

The similarity is the cosine (default, METHODS.md A1) or the dot product of the pooled embeddings;
Spearman's rho is computed here with average ranks for ties (scipy's definition) so the library
needs no scipy for it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxsim.errors import InputTextError, JaxsimError


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


def average_ranks(values: np.ndarray) -> np.ndarray:
    """``f64[N] -> f64[N]``: ranks 1..N, tied values get the mean of their ranks."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # boundaries of runs of equal values
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values) != 0) + 1]
    stops = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), np.float64)
    for start, stop in zip(starts, stops, strict=True):
        ranks[order[start:stop]] = (start + stop + 1) / 2.0  # mean of ranks start+1 .. stop
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of ``f[N]`` and ``f[N]``: Pearson correlation of their average ranks."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise JaxsimError(f"spearman needs two 1-d arrays of one length >= 2, got {x.shape} and {y.shape}")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def pair_similarities(model, pairs: Sequence[tuple[str, str, float]] | Sequence[tuple[str, str]],
                      similarity: str = "cosine", batch_size: int = 64) -> np.ndarray:
    """``f64[N]`` cosine (or dot) similarity of each pair's pooled embeddings."""
    if similarity not in ("cosine", "dot"):
        raise JaxsimError(f"unknown similarity {similarity!r}: choose cosine or dot")
    texts = [p[0] for p in pairs] + [p[1] for p in pairs]
    vectors = model.embed(texts, batch_size=batch_size, normalize=similarity == "cosine").astype(np.float64)
    a, b = vectors[: len(pairs)], vectors[len(pairs):]
    return (a * b).sum(-1)


def sts_spearman(model, pairs: Sequence[tuple[str, str, float]], similarity: str = "cosine",
                 batch_size: int = 64) -> float:
    """Spearman rho x 100 of the pairs' model similarity vs their gold scores."""
    predicted = pair_similarities(model, pairs, similarity, batch_size)
    return 100.0 * spearman(predicted, np.array([p[2] for p in pairs], np.float64))


def sts_table(model, datasets: Mapping[str, str | Path], poolings: Sequence[str] = ("cls", "mean", "qkv"),
              similarity: str = "cosine", qkv_params: dict | None = None, batch_size: int = 64,
              limit: int | None = None) -> dict[str, dict[str, float]]:
    """``{pooling: {dataset: rho x 100}}`` for every pooling of ``model`` on every TSV in
    ``datasets`` (name -> path). ``qkv`` uses ``qkv_params`` or, if None, the untrained init
    (query 0: attention-uniform, i.e. a mean of near-identity value projections)."""
    data = {name: read_scored_pairs(path, limit) for name, path in datasets.items()}
    table: dict[str, dict[str, float]] = {}
    for pooling in poolings:
        m = model.with_pooling(pooling, qkv_params if pooling == "qkv" else None)
        table[pooling] = {name: sts_spearman(m, pairs, similarity, batch_size)
                          for name, pairs in data.items()}
    return table
