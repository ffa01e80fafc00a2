"""``encoder_for(config)``: one architecture's functions as a record, and the jitted model calls
built from them (pooled embeddings, packed pooled embeddings, embedding outputs, pair logits).

Every explainer talks to a model through this ``Encoder`` record, so the families are
interchangeable everywhere::

    x = enc.embed(params, config, ops, ids, token_types)          # f32[B, n, d]
    hidden = enc.encode_embeddings(params, config, ops, x, mask)  # f32[B, n, d]

Params are jit *arguments* (never closed-over constants); config and pooling are static.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax

from jaxsim.models import bert, distilbert, gpt_neo, modernbert, mpnet, roberta
from jaxsim.models.config import (
    BertConfig,
    DistilBertConfig,
    GPTNeoConfig,
    ModelConfig,
    ModernBertConfig,
    MPNetConfig,
    RobertaConfig,
)
from jaxsim.models.heads import classify, classify_modernbert, classify_relu
from jaxsim.models.ops import PLAIN_OPS, Ops
from jaxsim.models.pooling import pool, segment_pool
from jaxsim.types import Array


class Encoder(NamedTuple):
    """The functions of one architecture (all pure; see ``bert.py`` for the signatures)."""

    embedding_sum: Callable
    embedding_norm: Callable
    embed: Callable
    encode_embeddings: Callable
    encode_embeddings_with_attention: Callable
    classify: Callable  # the family's pair-classifier head (``jaxsim.models.heads``)


_MODULES = {BertConfig: bert, GPTNeoConfig: gpt_neo, RobertaConfig: roberta,
            DistilBertConfig: distilbert, MPNetConfig: mpnet, ModernBertConfig: modernbert}
_HEADS = {BertConfig: classify, GPTNeoConfig: classify, RobertaConfig: classify,
          DistilBertConfig: classify_relu, MPNetConfig: classify}


@functools.cache
def encoder_for(config: ModelConfig) -> Encoder:
    """The architecture's functions; cached, so equal configs give the identical record (it is a
    static jit argument in places)."""
    module = _MODULES[type(config)]
    head = (functools.partial(classify_modernbert, config) if isinstance(config, ModernBertConfig)
            else _HEADS[type(config)])
    return Encoder(
        embedding_sum=module.embedding_sum,
        embedding_norm=module.embedding_norm,
        embed=module.embed,
        encode_embeddings=module.encode_embeddings,
        encode_embeddings_with_attention=module.encode_embeddings_with_attention,
        classify=head,
    )


@functools.partial(jax.jit, static_argnames=("config", "pooling"))
def pooled_embeddings(
    params: dict, pool_params: dict | None, ids: Array, type_ids: Array, mask: Array,
    *, config: ModelConfig, pooling: str,
) -> Array:
    """``ids, type_ids: i32[B, n], mask: bool[B, n] -> f32[B, h]`` (un-normalised)."""
    enc = encoder_for(config)
    x = enc.embed(params, config, PLAIN_OPS, ids, type_ids)
    hidden = enc.encode_embeddings(params, config, PLAIN_OPS, x, mask)
    return pool(pooling, pool_params, PLAIN_OPS, hidden, mask)


@functools.partial(jax.jit, static_argnames=("config", "pooling", "max_segments"))
def packed_pooled_embeddings(
    params: dict, pool_params: dict | None, ids: Array, type_ids: Array, positions: Array,
    segments: Array, *, config: ModelConfig, pooling: str, max_segments: int,
) -> Array:
    """Packed rows (``jaxsim.text.packing``): ``i32[R, L]`` each -> ``f32[R, S, h]``, one
    embedding per text slot (un-normalised; empty slots are zero)."""
    enc = encoder_for(config)
    x = enc.embed(params, config, PLAIN_OPS, ids, type_ids, positions)
    hidden = enc.encode_embeddings(params, config, PLAIN_OPS, x, segments > 0, segments)
    return segment_pool(pooling, pool_params, PLAIN_OPS, hidden, segments, positions, max_segments)


@functools.partial(jax.jit, static_argnames=("config",))
def embedding_outputs(params: dict, ids: Array, type_ids: Array, *, config: ModelConfig) -> Array:
    """The embedding module's output ``f32[B, n, d]`` (after its LayerNorm)."""
    return encoder_for(config).embed(params, config, PLAIN_OPS, ids, type_ids)


def pair_logits_fn(
    params: dict, config: ModelConfig, ids: Array, type_ids: Array, mask: Array, ops: Ops = PLAIN_OPS,
) -> Array:
    """Sentence-pair classifier: ``ids, type_ids: i32[B, n], mask: bool[B, n] -> logits f32[B, C]``
    (encoder + the family's head ``enc.classify`` on ``params["head"]``; pure, not jitted)."""
    enc = encoder_for(config)
    x = enc.embed(params, config, ops, ids, type_ids)
    return enc.classify(params["head"], enc.encode_embeddings(params, config, ops, x, mask), ops, mask=mask)


@functools.partial(jax.jit, static_argnames=("config",))
def pair_logits(params: dict, ids: Array, type_ids: Array, mask: Array, *, config: ModelConfig) -> Array:
    """Jitted ``pair_logits_fn`` with the plain ops (one compilation per config and batch shape)."""
    return pair_logits_fn(params, config, ids, type_ids, mask)
