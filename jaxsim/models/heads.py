"""Sequence(-pair) classification head in the ``BertForSequenceClassification`` layout.

``logits = classifier(dropout(tanh(pooler(h[:, 0]))))``. Params: ``{"pooler": dense,
"classifier": dense}``. Every nonlinearity goes through ``Ops`` (``ops.tanh``, ``ops.dense``), so
the LRP rules reach the head exactly as they reach the encoder.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxsim.models.layers import dense, dropout
from jaxsim.models.ops import Ops
from jaxsim.types import Array


def classify(
    head: dict, hidden: Array, ops: Ops, dropout_key: Array | None = None, dropout_rate: float = 0.0,
) -> Array:
    """``hidden: f32[B, n, d] -> logits f32[B, num_labels]``; dropout on the pooled [CLS] vector
    only when a ``dropout_key`` is given (training)."""
    pooled = ops.tanh(dense(head["pooler"], hidden[:, 0], ops))
    return dense(head["classifier"], dropout(dropout_key, pooled, dropout_rate), ops)


def init_head(d: int, num_labels: int, seed: int = 0) -> dict:
    """HF-style init: normal(0.02) kernels, zero biases; deterministic by ``seed``."""
    rng = np.random.default_rng(seed)
    def _dense(n_in: int, n_out: int) -> dict:
        return {
            "kernel": jnp.asarray(0.02 * rng.standard_normal((n_in, n_out)), jnp.float32),
            "bias": jnp.zeros((n_out,), jnp.float32),
        }
    return {"pooler": _dense(d, d), "classifier": _dense(d, num_labels)}
