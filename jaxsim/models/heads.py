"""Sequence(-pair) classification heads, one per family layout.

- ``classify`` (BERT, RoBERTa/XLM-R, MPNet): ``logits = classifier(dropout(tanh(pooler(h[:, 0]))))``.
  Params: ``{"pooler": dense, "classifier": dense}`` (RoBERTa's ``classifier.dense`` /
  ``classifier.out_proj`` are the same two layers under other names).
- ``classify_relu`` (DistilBERT): ``classifier(dropout(relu(pre_classifier(h[:, 0]))))``.
  Params: ``{"pre_classifier": dense, "classifier": dense}``.
- ``classify_modernbert``: ``classifier(dropout(norm(gelu(dense(pool(h))))))`` with ``pool`` the
  [CLS] state or the masked mean (``classifier_pooling``). Params: ``{"dense", "norm",
  "classifier"}``.

Every nonlinearity goes through ``Ops`` (``ops.tanh``, ``ops.gelu``, ``ops.layer_norm``,
``ops.dense``), so the LRP rules reach the head exactly as they reach the encoder. ReLU needs no
rule: ``z * [relu(z) / z]`` has relu's own derivative, so LRP-0 through it is its gradient.

All share one signature, ``(head, hidden: f32[B, n, d], ops, dropout_key=None,
dropout_rate=0.0, *, mask: bool[B, n] | None = None) -> f32[B, C]`` (ModernBERT's bound to its
config by ``encoder_for``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.models.config import ModernBertConfig
from jaxsim.models.layers import dense, dropout, layer_norm
from jaxsim.models.ops import Ops
from jaxsim.models.pooling import mean_pool
from jaxsim.types import Array


def classify(
    head: dict, hidden: Array, ops: Ops, dropout_key: Array | None = None, dropout_rate: float = 0.0,
    *, mask: Array | None = None,
) -> Array:
    """``hidden: f32[B, n, d] -> logits f32[B, num_labels]``; dropout on the pooled [CLS] vector
    only when a ``dropout_key`` is given (training). ``mask`` is unused ([CLS] pooling)."""
    del mask
    pooled = ops.tanh(dense(head["pooler"], hidden[:, 0], ops))
    return dense(head["classifier"], dropout(dropout_key, pooled, dropout_rate), ops)


def classify_relu(
    head: dict, hidden: Array, ops: Ops, dropout_key: Array | None = None, dropout_rate: float = 0.0,
    *, mask: Array | None = None,
) -> Array:
    """DistilBERT: ``hidden: f32[B, n, d] -> logits f32[B, num_labels]`` from the [CLS] state."""
    del mask
    pooled = jax.nn.relu(dense(head["pre_classifier"], hidden[:, 0], ops))
    return dense(head["classifier"], dropout(dropout_key, pooled, dropout_rate), ops)


def classify_modernbert(
    config: ModernBertConfig, head: dict, hidden: Array, ops: Ops, dropout_key: Array | None = None,
    dropout_rate: float = 0.0, *, mask: Array | None = None,
) -> Array:
    """ModernBERT: ``hidden: f32[B, n, d] -> logits f32[B, num_labels]``; ``classifier_pooling
    = "mean"`` averages the real tokens and needs ``mask: bool[B, n]``."""
    if config.classifier_pooling == "mean":
        if mask is None:
            raise ValueError("this ModernBERT head uses classifier_pooling='mean': pass mask=")
        pooled = mean_pool(hidden, mask)
    else:
        pooled = hidden[:, 0]
    h = ops.gelu(dense(head["dense"], pooled, ops), config.classifier_gelu_approximate)
    h = layer_norm(ops, head["norm"], h, config.layer_norm_eps)
    return dense(head["classifier"], dropout(dropout_key, h, dropout_rate), ops)


def init_head(d: int, num_labels: int, seed: int = 0) -> dict:
    """HF-style init: normal(0.02) kernels, zero biases; deterministic by ``seed``."""
    rng = np.random.default_rng(seed)
    def _dense(n_in: int, n_out: int) -> dict:
        return {
            "kernel": jnp.asarray(0.02 * rng.standard_normal((n_in, n_out)), jnp.float32),
            "bias": jnp.zeros((n_out,), jnp.float32),
        }
    return {"pooler": _dense(d, d), "classifier": _dense(d, num_labels)}
