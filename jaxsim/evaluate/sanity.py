"""Parameter-randomisation sanity test (Adebayo et al. 2018; [BTI] §4.1, METHODS.md B8).

Layers are re-initialised from the top down, cumulatively, with the Hugging Face init
(normal(0, 0.02) kernels and embeddings, LayerNorm scale 1 and bias 0, biases 0). An explainer
that depends on what the model learned changes: the Spearman correlation between the trained
model's word saliencies and the randomised model's drops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import spearmanr

if TYPE_CHECKING:
    from jaxsim.model import Model


def _hf_init(path: tuple, leaf: jax.Array, key: jax.Array) -> jax.Array:
    name = path[-1].key if hasattr(path[-1], "key") else str(path[-1])
    parent = path[-2].key if len(path) > 1 and hasattr(path[-2], "key") else ""
    if name == "bias":
        return jnp.zeros_like(leaf)
    if name == "scale" or (parent in ("ln", "ln_1", "ln_2", "ln_f") and name != "bias"):
        return jnp.ones_like(leaf)
    return 0.02 * jax.random.normal(key, leaf.shape, leaf.dtype)


def randomise(tree, key: jax.Array):
    """Every leaf of ``tree`` re-initialised as Hugging Face does (deterministic in ``key``)."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    keys = jax.random.split(key, len(leaves))
    new = [_hf_init(path, leaf, k) for (path, leaf), k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(jax.tree.structure(tree), new)


def cascade(params: dict, key: jax.Array) -> list[tuple[str, dict]]:
    """``[(label, params)]``: top layer randomised, then the next, ..., then the embeddings."""
    steps = []
    layers = list(params["layers"])
    current = dict(params)
    for i in reversed(range(len(layers))):
        layers[i] = randomise(layers[i], jax.random.fold_in(key, i))
        current = {**current, "layers": tuple(layers)}
        steps.append((f"layer {i}", current))
    rest = {k: randomise(v, jax.random.fold_in(key, 1000 + j))
            for j, (k, v) in enumerate(current.items()) if k != "layers"}
    steps.append(("embeddings (all)", {**current, **rest}))
    return steps


def _word_saliency(results) -> list[np.ndarray]:
    return [np.concatenate([r.word_saliency_a, r.word_saliency_b]) for r in results]


def randomisation(model: Model, pairs: Sequence[tuple[str, str]], method: str = "bti", seed: int = 0,
                  cumulative: bool = True) -> list[dict]:
    """Mean Spearman (over pairs) between trained and randomised word saliencies, per step.

    Returns ``[{"step": label, "spearman": mean rho, "pairs": n}]``; with
    ``cumulative=False`` only the fully randomised model is compared.
    """
    from jaxsim.explain import explain_pairs

    trained = _word_saliency(explain_pairs(model, pairs, method=method))
    steps = cascade(model.params, jax.random.PRNGKey(seed))
    if not cumulative:
        steps = steps[-1:]
    rows = []
    for label, params in steps:
        randomised = dataclasses.replace(model, params=params)
        other = _word_saliency(explain_pairs(randomised, pairs, method=method))
        rhos = [spearmanr(a, b).statistic for a, b in zip(trained, other, strict=True)]
        rows.append({"step": label, "spearman": float(np.nanmean(rhos)), "pairs": len(pairs)})
    return rows
