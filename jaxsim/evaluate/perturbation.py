"""AUPC perturbation test of the BiLRP paper ([BiLRP] §4.3, App. B; METHODS.md §1.4 and A6).

For one sentence of a pair, its content tokens are ranked by sum-pooled relevance (text a:
``sum_t' R[t, t']``, text b: ``sum_t R[t, t']``), most relevant first. Starting from the sentence
with every content token replaced by ``[MASK]`` (special tokens fixed), step k = 0..25 reveals the
``round(0.04 k q)`` top-ranked tokens; ``d_k = ‖phi(x~_k) − phi(x)‖₂`` on un-normalised pooled
embeddings. ``AUPC = sum_{k=0}^{24} 0.04 (d_k + d_{k+1}) / 2``: lower is better (the explanation
found the tokens that restore the representation fastest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.text import Encoded, bucket_length, pad_batch

if TYPE_CHECKING:
    from jaxsim.model import Model

STEP = 0.04
N_STEPS = 25
DEFAULT_METHODS = ("bilrp", "hxp", "embedding", "bti", "random")


def reveal_counts(q: int, step: float = STEP, n_steps: int = N_STEPS) -> np.ndarray:
    """``i64[n_steps + 1]``: how many top tokens are revealed at each step (A6)."""
    return np.array([int(round(step * k * q)) for k in range(n_steps + 1)])


def aupc(distances: np.ndarray, step: float = STEP) -> float:
    """Trapezoid area under ``d_0..d_K`` with spacing ``step``."""
    d = np.asarray(distances, np.float64)
    return float((step * (d[:-1] + d[1:]) / 2).sum())


def perturbed_ids(enc: Encoded, ranking: np.ndarray, mask_id: int) -> np.ndarray:
    """``i32[K+1, n]``: the sentence at each step. ``ranking`` lists content positions, most
    relevant first."""
    content = np.flatnonzero(~enc.special)
    if sorted(ranking.tolist()) != content.tolist():
        raise JaxsimError("ranking must be a permutation of the content token positions")
    rows = np.repeat(enc.ids[None], N_STEPS + 1, axis=0)
    rows[:, content] = mask_id
    for k, count in enumerate(reveal_counts(len(content))):
        rows[k, ranking[:count]] = enc.ids[ranking[:count]]
    return rows


def perturbation_curve(model: Model, enc: Encoded, ranking: np.ndarray) -> np.ndarray:
    """``f64[K+1]`` distances of the perturbed sentences' pooled embeddings to the original.

    Steps that reveal the same number of tokens (short sentences: ``round(0.04 k q)`` repeats)
    and the last step (= the original) are embedded once.
    """
    from jaxsim.models import pooled_embeddings

    mask_id = model.tokenizer.mask_token_id
    if mask_id is None:
        raise JaxsimError(f"{model.name}'s tokenizer has no [MASK] token to perturb with")
    steps = perturbed_ids(enc, ranking, mask_id)
    unique, inverse = np.unique(np.concatenate([enc.ids[None], steps]), axis=0, return_inverse=True)
    variants = [Encoded(enc.text, r.astype(np.int32), enc.type_ids, enc.tokens, enc.special,
                        enc.word_ids, enc.words, enc.truncated) for r in unique]
    rows = -(-len(variants) // 8) * 8  # few distinct batch shapes -> few compilations
    batch = pad_batch(variants, bucket_length(len(enc), model.tokenizer.max_length), rows,
                      model.tokenizer.pad_token_id)
    phi = np.asarray(pooled_embeddings(
        model.params, model.pool_params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids),
        jnp.asarray(batch.mask), config=model.config, pooling=model.pooling), np.float64)
    phi = phi[np.ravel(inverse)]
    return np.linalg.norm(phi[1:] - phi[0], axis=-1)


def ranking_from_scores(enc: Encoded, scores: np.ndarray) -> np.ndarray:
    """Content positions sorted by score, descending (stable: earlier position first on ties)."""
    content = np.flatnonzero(~enc.special)
    return content[np.argsort(-np.asarray(scores)[content], kind="stable")]


def random_ranking(enc: Encoded, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.flatnonzero(~enc.special))


def pair_token_scores(relevance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum-pooled relevance of each text's tokens: (f64[n_a], f64[n_b])."""
    return relevance.sum(1), relevance.sum(0)


def method_rankings(model: Model, pairs: Sequence[tuple[str, str]], encoded: Sequence[Encoded], method: str,
                    rng: np.random.Generator, batch_size: int = 16, progress: bool = False
                    ) -> list[np.ndarray]:
    """One ranking per sentence (a_0, b_0, a_1, b_1, ...) of content positions, most relevant first.

    ``bilrp | hxp | embedding``: sum-pooled token-pair relevance (dot product of the un-normalised
    pooled embeddings); BTI methods: their per-token saliency; ``random``: a permutation from ``rng``.
    """
    from jaxsim.explain import bti, explain_pairs

    if method == "random":
        return [random_ranking(e, rng) for e in encoded]
    if method in bti.METHODS:
        results = explain_pairs(model, pairs, method=method, batch_size=batch_size)
        scores = [s for r in results for s in (r.token_saliency_a, r.token_saliency_b)]
    else:
        results = explain_pairs(model, pairs, method=method, batch_size=batch_size, progress=progress)
        scores = [s for r in results for s in pair_token_scores(r.relevance)]
    return [ranking_from_scores(e, s) for e, s in zip(encoded, scores, strict=True)]


def aupc_pairs(model: Model, pairs: Sequence[tuple[str, str]], methods: Sequence[str] = DEFAULT_METHODS,
               seed: int = 0, batch_size: int = 16, progress: bool = False,
               timings: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """AUPC of every sentence (2 per pair, order a_0, b_0, a_1, ...) per method: ``{method: f64[2N]}``.

    ``timings``, if given, receives the seconds each method took (explanation + curves).
    """
    import time

    encoded = [model.tokenizer.encode(t) for pair in pairs for t in pair]
    out: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    for method in methods:
        start = time.perf_counter()
        rankings = method_rankings(model, pairs, encoded, method, rng, batch_size, progress)
        out[method] = np.array([aupc(perturbation_curve(model, e, r))
                                for e, r in zip(encoded, rankings, strict=True)])
        if timings is not None:
            timings[method] = time.perf_counter() - start
    return out


def compare_methods(scores: dict[str, np.ndarray], reference: str = "bilrp") -> list[dict]:
    """Per method: mean, std, n, and Wilcoxon signed-rank p-values on the paired per-sentence
    AUPCs (scipy): ``p_reference_lower`` one-sided (reference < method), ``p_two_sided``; None for
    the reference itself. Sorted by mean AUPC, best (lowest) first."""
    from scipy.stats import wilcoxon

    rows = []
    for method, values in scores.items():
        values = np.asarray(values, np.float64)
        p = p2 = None
        if method != reference and reference in scores:
            diff = np.asarray(scores[reference], np.float64) - values
            if np.any(diff != 0):
                p = float(wilcoxon(diff, alternative="less").pvalue)
                p2 = float(wilcoxon(diff).pvalue)
            else:
                p = p2 = 1.0
        rows.append({"method": method, "mean": float(values.mean()), "std": float(values.std()),
                     "n": len(values), "p_reference_lower": p, "p_two_sided": p2})
    return sorted(rows, key=lambda r: r["mean"])
