"""Pure-functional ModernBERT encoder (ModernBERT-base/large, gte-modernbert, modernbert-embed).

Differences from BERT that matter:

- no position table: rotary embeddings rotate q and k in every layer, with θ = the global θ
  (160 000) in global layers and the local θ (10 000) in local ones;
- pre-LN blocks: ``x + attn(norm(x))``, ``x + mlp(norm(x))``; layer 0 has no attention norm
  (the embedding norm precedes it), a final norm follows the last layer;
- GeGLU MLP: ``Wo(gelu(a) * g)`` with ``[a, g] = Wi(h)`` (through ``ops.gated_gelu``);
- layer ``i`` is global (all keys) or local: ``|query - key| <= local_attention // 2``;
- no biases by default (``attention_bias``, ``mlp_bias``, ``norm_bias`` in the config).

Rotary scores depend only on ``query - key``, and local windows only on offsets too: rotating
with the row's positions ``0..n-1`` gives each text of a packed row (contiguous, attending only
to itself) exactly its unpacked scores, so ``positions`` need not reach the layers.

Params::

    {"embeddings": {"word": f32[V, d], "ln": {"scale"(, "bias")}},
     "layers": ({("attn_norm": ln,) "attention": {"qkv": dense d->3d, "output": dense},
                 "mlp_norm": ln, "mlp": {"wi": dense d->2f, "wo": dense f->d}}, ...),
     "final_norm": ln}
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxsim.models.config import ModernBertConfig
from jaxsim.models.layers import (
    attention,
    dense,
    key_bias,
    layer_norm,
    merge_heads,
    same_segment,
    split_heads,
)
from jaxsim.models.ops import Ops
from jaxsim.types import Array, Params


def embedding_sum(
    params: Params, config: ModernBertConfig, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """``word[ids]``: ``i32[B, n] -> f32[B, n, d]`` (no token types, no position table: rotary
    positions enter the attention)."""
    del token_types, positions
    return params["embeddings"]["word"][ids]


def embedding_norm(params: Params, config: ModernBertConfig, ops: Ops, summed: Array) -> Array:
    return layer_norm(ops, params["embeddings"]["ln"], summed, config.layer_norm_eps)


def embed(
    params: Params, config: ModernBertConfig, ops: Ops, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """The embedding module's output (after its norm): the input BiLRP explains."""
    return embedding_norm(params, config, ops, embedding_sum(params, config, ids, token_types, positions))


def rotary_angles(n: int, head_dim: int, theta: float, dtype) -> tuple[Array, Array]:
    """``(cos, sin)``, each ``f32[n, head_dim]``: frequencies ``theta^(-2i/head_dim)``, the two
    halves of the head repeating them (HF's ``rotate_half`` layout)."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    freqs = jnp.arange(n, dtype=jnp.float32)[:, None] * jnp.asarray(inv_freq, jnp.float32)[None]
    angles = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)


def rotate(x: Array, cos: Array, sin: Array) -> Array:
    """RoPE on ``x: f32[B, H, n, k]``: ``x cos + rotate_half(x) sin``, linear in ``x``."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def local_allowed(n: int, half_window: int) -> Array:
    """``bool[n, n]`` (query, key): ``|query - key| <= half_window``."""
    offset = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    return jnp.abs(offset) <= half_window


def _layer(
    p: Params, config: ModernBertConfig, ops: Ops, x: Array, allowed: Array, bias: Array | None,
    rotary: tuple[Array, Array],
) -> tuple[Array, Array]:
    eps = config.layer_norm_eps
    att = p["attention"]
    h = layer_norm(ops, p["attn_norm"], x, eps) if "attn_norm" in p else x  # layer 0: identity
    q, k, v = (split_heads(t, config.num_heads) for t in jnp.split(dense(att["qkv"], h, ops), 3, axis=-1))
    q, k = rotate(q, *rotary), rotate(k, *rotary)
    ctx, probs = attention(ops, q, k, v, allowed, 1.0 / math.sqrt(config.head_dim), bias)
    x = x + dense(att["output"], merge_heads(ctx), ops)
    h = layer_norm(ops, p["mlp_norm"], x, eps)
    a, gate = jnp.split(dense(p["mlp"]["wi"], h, ops), 2, axis=-1)
    x = x + dense(p["mlp"]["wo"], ops.gated_gelu(a, gate, config.gelu_approximate), ops)
    return x, probs


def encode_embeddings_with_attention(
    params: Params, config: ModernBertConfig, ops: Ops, x: Array, mask: Array,
    segments: Array | None = None, attention_bias: Array | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """``x: f32[B, n, d]``, ``mask: bool[B, n]`` -> (final-norm output f32[B, n, d], per-layer
    probs). ``segments: i32[B, n]`` (packed rows): keys must also be in the query's segment.
    ``attention_bias: f32[B, n]``: added to every layer's scores of each key."""
    n = x.shape[1]
    key_ok = mask[:, None, None, :]
    if segments is not None:
        key_ok = key_ok & same_segment(segments)
    allowed = {"global": key_ok, "local": key_ok & local_allowed(n, config.half_window)[None, None]}
    rotary = {
        "global": rotary_angles(n, config.head_dim, config.global_rope_theta, x.dtype),
        "local": rotary_angles(n, config.head_dim, config.local_rope_theta, x.dtype),
    }
    bias = key_bias(attention_bias)
    probs_per_layer = []
    for p, kind in zip(params["layers"], config.attention_layers, strict=True):
        x, probs = _layer(p, config, ops, x, allowed[kind], bias, rotary[kind])
        probs_per_layer.append(probs)
    return layer_norm(ops, params["final_norm"], x, config.layer_norm_eps), tuple(probs_per_layer)


def encode_embeddings(
    params: Params, config: ModernBertConfig, ops: Ops, x: Array, mask: Array,
    segments: Array | None = None, attention_bias: Array | None = None,
) -> Array:
    """Last hidden state ``f32[B, n, d]`` (after the final norm) from the embedding output ``x``."""
    return encode_embeddings_with_attention(params, config, ops, x, mask, segments, attention_bias)[0]
