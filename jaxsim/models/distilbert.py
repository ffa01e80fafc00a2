"""Pure-functional DistilBERT encoder (distilbert-base, msmarco-distilbert, multi-qa-distilbert).

BERT's post-LN block (``bert.layer``); embeddings are word + position (no token types), then
a LayerNorm with eps 1e-12. HF's key names (``q_lin``, ``sa_layer_norm``, ``ffn.lin1``, ...) map
onto BERT's params layout (``jaxsim.convert.tables``), so the layers are BERT's own code.

Params: BERT's layout without ``embeddings.token_type``.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsim.models.bert import embedding_norm, encode_embeddings, encode_embeddings_with_attention
from jaxsim.models.config import DistilBertConfig
from jaxsim.models.ops import Ops
from jaxsim.types import Array, Params

__all__ = ["embed", "embedding_norm", "embedding_sum", "encode_embeddings",
           "encode_embeddings_with_attention"]


def embedding_sum(
    params: Params, config: DistilBertConfig, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """``word[ids] + position[positions]``: ``i32[B, n] -> f32[B, n, d]``; token_types ignored."""
    del token_types
    emb = params["embeddings"]
    pos = jnp.arange(ids.shape[-1]) if positions is None else positions
    return emb["word"][ids] + emb["position"][pos]


def embed(
    params: Params, config: DistilBertConfig, ops: Ops, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """The embedding module's output (after its LayerNorm): the input BiLRP explains."""
    return embedding_norm(params, config, ops, embedding_sum(params, config, ids, token_types, positions))
