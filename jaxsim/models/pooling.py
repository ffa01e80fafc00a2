"""Pooling of the last hidden state into one vector per text.

- ``cls``:  the hidden state at position 0 (no pooler dense).
- ``mean``: attention-masked mean over all non-pad tokens, [CLS]/[SEP] included
  (sentence-transformers; the BiLRP reference code).
- ``qkv``:  the BiLRP paper's "QKV pooling" (METHODS.md §1.7): ``k_t = W_k h_t + b_k``,
  ``v_t = W_v h_t + b_v``, a learned query ``q`` (0 at init = mean of v over real tokens),
  ``alpha = softmax_t(q.k_t / sqrt(d) + mask)``, ``phi = sum_t alpha_t v_t``. The attention
  weights go through ``ops.softmax`` so the AH rule detaches them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import OptionError
from jaxsim.models.layers import dense
from jaxsim.models.ops import Ops
from jaxsim.types import Array

POOLINGS: tuple[str, ...] = ("cls", "mean", "qkv")


def cls_pool(hidden: Array, mask: Array) -> Array:
    """``hidden: f32[B, n, d] -> f32[B, d]``."""
    del mask
    return hidden[:, 0]


def mean_pool(hidden: Array, mask: Array) -> Array:
    """Masked mean over real tokens: ``f32[B, n, d], bool[B, n] -> f32[B, d]``."""
    weights = mask.astype(hidden.dtype)
    return (hidden * weights[..., None]).sum(1) / jnp.maximum(weights.sum(1, keepdims=True), 1e-9)


def init_qkv_params(d: int, seed: int = 0) -> dict:
    """QKV pooling params: identity-ish key/value projections, zero query (= mean of v)."""
    rng = np.random.default_rng(seed)
    def _dense() -> dict:
        return {
            "kernel": jnp.asarray(np.eye(d) + 0.02 * rng.standard_normal((d, d)), jnp.float32),
            "bias": jnp.zeros((d,), jnp.float32),
        }
    return {"key": _dense(), "value": _dense(), "query": jnp.zeros((d,), jnp.float32)}


def qkv_pool(params: dict, ops: Ops, hidden: Array, mask: Array) -> Array:
    """``f32[B, n, d] -> f32[B, d]`` (METHODS.md §1.7)."""
    keys = dense(params["key"], hidden, ops)
    values = dense(params["value"], hidden, ops)
    scores = jnp.einsum("d,bnd->bn", params["query"], keys) / math.sqrt(hidden.shape[-1])
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    alpha = ops.softmax(scores)
    return jnp.einsum("bn,bnd->bd", alpha, values)


def pool(
    name: str, pool_params: dict | None, ops: Ops, hidden: Array, mask: Array
) -> Array:
    """Dispatch on the pooling name; ``pool_params`` is only used by ``qkv``."""
    if name == "cls":
        return cls_pool(hidden, mask)
    if name == "mean":
        return mean_pool(hidden, mask)
    if name == "qkv":
        if pool_params is None:
            raise OptionError("qkv pooling needs its params: pass pool_params=init_qkv_params(d) "
                              "(jaxsim.models.pooling) or load the model with pooling='qkv'")
        return qkv_pool(pool_params, ops, hidden, mask)
    raise OptionError(f"unknown pooling {name!r}: choose one of {', '.join(POOLINGS)}")


def segment_members(segments: Array, max_segments: int) -> Array:
    """``i32[B, n] -> bool[B, S, n]``: token t of row b belongs to text s+1 of that row."""
    return segments[:, None, :] == jnp.arange(1, max_segments + 1)[None, :, None]


def segment_pool(
    name: str, pool_params: dict | None, ops: Ops, hidden: Array, segments: Array,
    positions: Array, max_segments: int,
) -> Array:
    """Pool every text of packed rows (``jaxsim.text.packing``): ``hidden: f32[B, n, d]``,
    ``segments, positions: i32[B, n]`` -> ``f32[B, S, d]`` (all-zero for empty segments)."""
    members = segment_members(segments, max_segments)  # bool[B, S, n]
    if name == "mean":
        weights = members.astype(hidden.dtype)
        sums = jnp.einsum("bsn,bnd->bsd", weights, hidden)
        return sums / jnp.maximum(weights.sum(-1, keepdims=True), 1e-9)
    if name == "cls":
        first = (members & (positions == 0)[:, None, :]).astype(hidden.dtype)
        return jnp.einsum("bsn,bnd->bsd", first, hidden)
    # Any other pooling: run it once per segment with that segment as the mask.
    return jax.vmap(lambda m: pool(name, pool_params, ops, hidden, m), in_axes=1, out_axes=1)(members)
