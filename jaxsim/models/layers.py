"""Building blocks shared by the encoders: dense layers, head split/merge, masked attention.

Params are plain dicts: a dense layer is ``{"kernel": f32[in, out], "bias": f32[out]}`` (bias
optional), a LayerNorm ``{"scale": f32[d], "bias": f32[d]}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.models.ops import Ops
from jaxsim.types import Array, Params


def dense(p: Params, x: Array, ops: Ops) -> Array:
    """``x: f32[..., in] -> f32[..., out]`` through ``ops.dense`` (an LRP Linear rule may swap it)."""
    return ops.dense(x, p["kernel"], p.get("bias"))


def dropout(key: Array | None, x: Array, rate: float) -> Array:
    """Inverted dropout with an explicit key; the identity when ``key`` is None or ``rate`` is 0."""
    if key is None or rate <= 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def layer_norm(ops: Ops, p: Params, x: Array, eps: float) -> Array:
    """LayerNorm through ``ops.layer_norm``; a norm without ``bias`` (ModernBERT) gets beta = 0."""
    beta = p["bias"] if "bias" in p else jnp.zeros_like(p["scale"])
    return ops.layer_norm(x, p["scale"], beta, eps)


def split_heads(x: Array, num_heads: int) -> Array:
    """``f32[B, n, H*k] -> f32[B, H, n, k]``."""
    b, n, d = x.shape
    return x.reshape(b, n, num_heads, d // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x: Array) -> Array:
    """``f32[B, H, n, k] -> f32[B, n, H*k]``."""
    b, h, n, k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, n, h * k)


def same_segment(segments: Array) -> Array:
    """``i32[B, n] -> bool[B, 1, n, n]`` (query, key): both tokens belong to the same text of a
    packed row (``jaxsim.text.packing``)."""
    return (segments[:, :, None] == segments[:, None, :])[:, None]


def key_bias(attention_bias: Array | None) -> Array | None:
    """An encoder's ``attention_bias: f32[B, n]`` (additive, per key) as ``f32[B, 1, 1, n]``."""
    return None if attention_bias is None else attention_bias[:, None, None, :]


def attention(
    ops: Ops, q: Array, k: Array, v: Array, allowed: Array, scale: float, bias: Array | None = None
) -> tuple[Array, Array]:
    """Masked multi-head attention.

    q, k, v: f32[B, H, n, k]; allowed: bool[B, 1|H, n, n] (query, key); bias: an additive score
    bias broadcastable to f32[B, H, n, n] (e.g. GMASK's soft masks), or None.
    Disallowed scores are set to ``finfo.min`` (not added), so a padded key gets a probability of
    exactly 0 and therefore exactly zero relevance. Returns (out f32[B, H, n, k], probs).
    """
    scores = ops.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if bias is not None:
        scores = scores + bias
    scores = jnp.where(allowed, scores, jnp.finfo(scores.dtype).min)
    probs = ops.softmax(scores)
    return ops.einsum("bhqk,bhkd->bhqd", probs, v), probs
