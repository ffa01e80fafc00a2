"""Pure-functional BERT-family encoder (BERT, MiniLM, mBERT, sentence-transformers BERT).

Reads top to bottom: embeddings -> L x (self-attention, add & norm, GELU MLP, add & norm).
Every function takes the params pytree and the ``Ops`` explicitly; nothing is closed over.

Params::

    {"embeddings": {"word": f32[V, d], "position": f32[P, d], "token_type": f32[T, d],
                    "ln": {"scale", "bias"}},
     "layers": ({"attention": {"query", "key", "value", "output": dense, "ln": ln},
                 "mlp": {"intermediate", "output": dense, "ln": ln}}, ...)}
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxsim.models.config import BertConfig
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
    params: Params, config: BertConfig, ids: Array, token_types: Array, positions: Array | None = None
) -> Array:
    """Word + position + token-type embeddings before the LayerNorm: ``i32[B, n] -> f32[B, n, d]``.

    ``positions: i32[B, n]`` overrides ``0..n-1`` (packed rows restart them for every text)."""
    emb = params["embeddings"]
    pos = jnp.arange(ids.shape[-1]) if positions is None else positions
    return emb["word"][ids] + emb["position"][pos] + emb["token_type"][token_types]


def embed(
    params: Params, config: BertConfig, ops: Ops, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """The embedding module's output (after its LayerNorm): the input BiLRP explains."""
    return embedding_norm(params, config, ops, embedding_sum(params, config, ids, token_types, positions))


def embedding_norm(params: Params, config: BertConfig, ops: Ops, summed: Array) -> Array:
    return layer_norm(ops, params["embeddings"]["ln"], summed, config.layer_norm_eps)


def layer(
    p: Params, config: BertConfig, ops: Ops, x: Array, allowed: Array, bias: Array | None
) -> tuple[Array, Array]:
    """One post-LN block (attention, add & norm, GELU MLP, add & norm): ``x: f32[B, n, d]``,
    ``allowed: bool[B, 1, n, n]``, ``bias``: additive scores broadcastable to ``f32[B, H, n, n]``.

    Shared by the families with BERT's block (RoBERTa, DistilBERT, MPNet); ``config`` needs only
    ``num_heads``, ``head_dim``, ``layer_norm_eps`` and ``gelu_approximate``."""
    att = p["attention"]
    q, k, v = (split_heads(dense(att[name], x, ops), config.num_heads) for name in ("query", "key", "value"))
    ctx, probs = attention(ops, q, k, v, allowed, 1.0 / math.sqrt(config.head_dim), bias)
    x = layer_norm(ops, att["ln"], dense(att["output"], merge_heads(ctx), ops) + x, config.layer_norm_eps)
    mlp = p["mlp"]
    hidden = ops.gelu(dense(mlp["intermediate"], x, ops), config.gelu_approximate)
    x = layer_norm(ops, mlp["ln"], dense(mlp["output"], hidden, ops) + x, config.layer_norm_eps)
    return x, probs


def encode_embeddings_with_attention(
    params: Params, config: BertConfig, ops: Ops, x: Array, mask: Array, segments: Array | None = None,
    attention_bias: Array | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """``x: f32[B, n, d]``, ``mask: bool[B, n]`` -> (last hidden f32[B, n, d], per-layer probs).

    ``segments: i32[B, n]`` (packed rows, ``jaxsim.text.packing``): a query attends only to the
    real keys of its own segment. ``attention_bias: f32[B, n]`` is added to every layer's scores
    of each key (GMASK's soft masks); padded keys stay excluded by ``mask``."""
    return layer_stack(params["layers"], config, ops, x, allowed_keys(mask, segments),
                       key_bias(attention_bias))


def allowed_keys(mask: Array, segments: Array | None) -> Array:
    """``bool[B, 1, 1|n, n]`` (query, key): every query may attend to every real key of its
    segment (all of the row without ``segments``)."""
    allowed = mask[:, None, None, :]
    return allowed if segments is None else allowed & same_segment(segments)


def layer_stack(
    layers: tuple[Params, ...], config, ops: Ops, x: Array, allowed: Array, bias: Array | None
) -> tuple[Array, tuple[Array, ...]]:
    """``x: f32[B, n, d]`` through every post-LN ``layer`` -> (last hidden, per-layer probs)."""
    probs_per_layer = []
    for p in layers:
        x, probs = layer(p, config, ops, x, allowed, bias)
        probs_per_layer.append(probs)
    return x, tuple(probs_per_layer)


def encode_embeddings(
    params: Params, config: BertConfig, ops: Ops, x: Array, mask: Array, segments: Array | None = None,
    attention_bias: Array | None = None,
) -> Array:
    """Last hidden state ``f32[B, n, d]`` from the embedding output ``x``."""
    return encode_embeddings_with_attention(params, config, ops, x, mask, segments, attention_bias)[0]
