"""Pure-functional MPNet encoder (all-mpnet-base-v2, multi-qa-mpnet).

BERT's post-LN block (``bert.layer``) with one extra term in every layer's attention scores: a
relative-position bias ``table[bucket(key - query)]`` per head, computed once from the
checkpoint's ``relative_attention_bias: f32[num_buckets, H]`` and added to all layers (HF's
``MPNetEncoder.compute_position_bias``). Positions are RoBERTa's (offset ``padding_idx + 1`` =
2); no token types.

The bias depends only on offsets inside a row; texts of a packed row are contiguous, so the
offsets inside a text are the row's offsets and packing stays exact.

Params: BERT's layout without ``embeddings.token_type``, plus
``relative_attention_bias: f32[num_buckets, H]``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxsim.models.bert import allowed_keys, embedding_norm, layer_stack
from jaxsim.models.config import MPNetConfig
from jaxsim.models.layers import key_bias
from jaxsim.models.ops import Ops
from jaxsim.types import Array, Params

MAX_DISTANCE = 128  # HF hard-codes it in relative_position_bucket

__all__ = ["embed", "embedding_norm", "embedding_sum", "encode_embeddings",
           "encode_embeddings_with_attention", "position_bias", "relative_position_buckets"]


def embedding_sum(
    params: Params, config: MPNetConfig, ids: Array, token_types: Array, positions: Array | None = None
) -> Array:
    """``word[ids] + position[positions + 2]``: ``i32[B, n] -> f32[B, n, d]``; token_types ignored."""
    del token_types
    emb = params["embeddings"]
    pos = jnp.arange(ids.shape[-1]) if positions is None else positions
    return emb["word"][ids] + emb["position"][pos + config.position_offset]


def embed(
    params: Params, config: MPNetConfig, ops: Ops, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """The embedding module's output (after its LayerNorm): the input BiLRP explains."""
    return embedding_norm(params, config, ops, embedding_sum(params, config, ids, token_types, positions))


def relative_position_buckets(n: int, num_buckets: int, max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """``i32[n, n]`` (query, key): T5's bidirectional log buckets of ``key - query``, computed as
    HF's ``relative_position_bucket`` does (float32 log, truncation), on the host: n is static."""
    offset = np.arange(n)[None, :] - np.arange(n)[:, None]  # key - query
    distance = -offset
    half = num_buckets // 2
    bucket = (distance < 0).astype(np.int64) * half
    distance = np.abs(distance)
    max_exact = half // 2
    safe = np.maximum(distance, 1).astype(np.float32)  # log(0) is never used (is_small)
    scaled = (np.log(safe / np.float32(max_exact)) / np.float32(math.log(max_distance / max_exact))
              * np.float32(half - max_exact))
    large = np.minimum(max_exact + scaled.astype(np.int64), half - 1)
    bucket += np.where(distance < max_exact, distance, large)
    return bucket.astype(np.int32)


def position_bias(params: Params, config: MPNetConfig, n: int) -> Array:
    """``f32[1, H, n, n]``: the relative-position score bias every layer adds."""
    buckets = relative_position_buckets(n, config.relative_attention_num_buckets)
    return params["relative_attention_bias"][buckets].transpose(2, 0, 1)[None]


def encode_embeddings_with_attention(
    params: Params, config: MPNetConfig, ops: Ops, x: Array, mask: Array, segments: Array | None = None,
    attention_bias: Array | None = None,
) -> tuple[Array, tuple[Array, ...]]:
    """``x: f32[B, n, d]``, ``mask: bool[B, n]`` -> (last hidden f32[B, n, d], per-layer probs);
    ``segments`` and ``attention_bias`` as in ``bert.encode_embeddings_with_attention``."""
    bias = position_bias(params, config, x.shape[1]).astype(x.dtype)
    extra = key_bias(attention_bias)
    if extra is not None:
        bias = bias + extra
    return layer_stack(params["layers"], config, ops, x, allowed_keys(mask, segments), bias)


def encode_embeddings(
    params: Params, config: MPNetConfig, ops: Ops, x: Array, mask: Array, segments: Array | None = None,
    attention_bias: Array | None = None,
) -> Array:
    """Last hidden state ``f32[B, n, d]`` from the embedding output ``x``."""
    return encode_embeddings_with_attention(params, config, ops, x, mask, segments, attention_bias)[0]
