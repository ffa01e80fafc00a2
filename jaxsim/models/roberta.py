"""Pure-functional RoBERTa / XLM-RoBERTa encoder (roberta-base, xlm-roberta, bge-reranker, e5).

BERT's post-LN block (``bert.layer``) on different embeddings: position ``p`` (0-based inside
its text) reads row ``p + padding_idx + 1`` of the position table, as HF's
``create_position_ids_from_input_ids`` does for every real token of right-padded input; one
token type (``type_vocab_size`` 1), LayerNorm eps 1e-5 from the config.

Params: BERT's layout (``bert.py``), ``embeddings.position`` with ``position_table_size`` rows.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsim.models.bert import embedding_norm, encode_embeddings, encode_embeddings_with_attention
from jaxsim.models.config import RobertaConfig
from jaxsim.models.ops import Ops
from jaxsim.types import Array, Params

__all__ = ["embed", "embedding_norm", "embedding_sum", "encode_embeddings",
           "encode_embeddings_with_attention"]


def embedding_sum(
    params: Params, config: RobertaConfig, ids: Array, token_types: Array, positions: Array | None = None
) -> Array:
    """Word + offset position + token-type embeddings before the LayerNorm:
    ``i32[B, n] -> f32[B, n, d]``; ``positions: i32[B, n]`` (0-based per text) overrides ``0..n-1``."""
    emb = params["embeddings"]
    pos = jnp.arange(ids.shape[-1]) if positions is None else positions
    # One token type (XLM-R, RoBERTa): HF reads row 0 whatever a pair tokenizer says.
    types = jnp.zeros_like(token_types) if config.type_vocab_size == 1 else token_types
    return emb["word"][ids] + emb["position"][pos + config.position_offset] + emb["token_type"][types]


def embed(
    params: Params, config: RobertaConfig, ops: Ops, ids: Array, token_types: Array,
    positions: Array | None = None,
) -> Array:
    """The embedding module's output (after its LayerNorm): the input BiLRP explains."""
    return embedding_norm(params, config, ops, embedding_sum(params, config, ids, token_types, positions))
