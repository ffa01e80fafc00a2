"""Pure-functional GPT-Neo used as an encoder (e.g. SGPT mean pooling).

Differences from BERT that matter: pre-LayerNorm blocks, causal attention that alternates
global and local (sliding window of ``window_size`` previous tokens) per ``attention_layers``,
**no** 1/sqrt(d) scaling of the scores, tanh GELU, learned positions, a final ``ln_f``.

Params::

    {"embeddings": {"word": f32[V, d], "position": f32[P, d]},
     "layers": ({"ln_1": ln, "attention": {"query", "key", "value" (no bias), "output": dense},
                 "ln_2": ln, "mlp": {"fc", "proj": dense}}, ...),
     "ln_f": ln}
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsim.models.config import GPTNeoConfig
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
    params: Params, config: GPTNeoConfig, ids: Array, token_types: Array, positions: Array | None = None
) -> Array:
    """``wte[ids] + wpe[positions]``: ``i32[B, n] -> f32[B, n, d]``. token_types is ignored;
    ``positions: i32[B, n]`` overrides ``0..n-1`` (packed rows)."""
    del token_types
    emb = params["embeddings"]
    pos = jnp.arange(ids.shape[-1]) if positions is None else positions
    return emb["word"][ids] + emb["position"][pos]


def embed(
    params: Params, config: GPTNeoConfig, ops: Ops, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """GPT-Neo has no embedding LayerNorm: the explained input is ``wte + wpe``."""
    return embedding_sum(params, config, ids, token_types, positions)


def embedding_norm(params: Params, config: GPTNeoConfig, ops: Ops, summed: Array) -> Array:
    return summed


def causal_allowed(n: int, window: int | None) -> Array:
    """``bool[n, n]`` (query, key): key <= query, and query - key < window for local layers."""
    offset = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    allowed = offset >= 0
    if window is not None:
        allowed = allowed & (offset < window)
    return allowed


def _layer(
    p: Params, config: GPTNeoConfig, ops: Ops, x: Array, allowed: Array, bias: Array | None
) -> tuple[Array, Array]:
    eps = config.layer_norm_eps
    att = p["attention"]
    h = layer_norm(ops, p["ln_1"], x, eps)
    q, k, v = (split_heads(dense(att[name], h, ops), config.num_heads) for name in ("query", "key", "value"))
    ctx, probs = attention(ops, q, k, v, allowed, 1.0, bias)  # GPT-Neo does not scale by 1/sqrt(d)
    x = x + dense(att["output"], merge_heads(ctx), ops)
    h = layer_norm(ops, p["ln_2"], x, eps)
    x = x + dense(p["mlp"]["proj"], ops.gelu(dense(p["mlp"]["fc"], h, ops), config.gelu_approximate), ops)
    return x, probs


def encode_embeddings_with_attention(
    params: Params, config: GPTNeoConfig, ops: Ops, x: Array, mask: Array, segments: Array | None = None,
    attention_bias: Array | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """``x: f32[B, n, d]``, ``mask: bool[B, n]`` -> (``ln_f`` output f32[B, n, d], per-layer probs).

    ``segments: i32[B, n]`` (packed rows): keys must also be in the query's segment. Texts are
    contiguous in a row, so the causal offset inside a row is the offset inside the text.
    ``attention_bias: f32[B, n]``: added to every layer's scores of each key."""
    n = x.shape[1]
    key_ok = mask[:, None, None, :]
    if segments is not None:
        key_ok = key_ok & same_segment(segments)
    allowed = {
        "global": causal_allowed(n, None)[None, None] & key_ok,
        "local": causal_allowed(n, config.window_size)[None, None] & key_ok,
    }
    bias = key_bias(attention_bias)
    probs_per_layer = []
    for layer, kind in zip(params["layers"], config.attention_layers, strict=True):
        x, probs = _layer(layer, config, ops, x, allowed[kind], bias)
        probs_per_layer.append(probs)
    return layer_norm(ops, params["ln_f"], x, config.layer_norm_eps), tuple(probs_per_layer)


def encode_embeddings(
    params: Params, config: GPTNeoConfig, ops: Ops, x: Array, mask: Array, segments: Array | None = None,
    attention_bias: Array | None = None,
) -> Array:
    return encode_embeddings_with_attention(params, config, ops, x, mask, segments, attention_bias)[0]
