"""Sequence(-pair) classification head in the ``BertForSequenceClassification`` layout.

``logits = classifier(tanh(pooler(h[:, 0])))``. Params: ``{"pooler": dense, "classifier": dense}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.models.layers import dense

Array = jax.Array


def classify(head: dict, hidden: Array) -> Array:
    """``hidden: f32[B, n, d] -> logits f32[B, num_labels]``."""
    return dense(head["classifier"], jnp.tanh(dense(head["pooler"], hidden[:, 0])))


def init_head(d: int, num_labels: int, seed: int = 0) -> dict:
    """HF-style init: normal(0.02) kernels, zero biases; deterministic by ``seed``."""
    rng = np.random.default_rng(seed)
    def _dense(n_in: int, n_out: int) -> dict:
        return {
            "kernel": jnp.asarray(0.02 * rng.standard_normal((n_in, n_out)), jnp.float32),
            "bias": jnp.zeros((n_out,), jnp.float32),
        }
    return {"pooler": _dense(d, d), "classifier": _dense(d, num_labels)}
