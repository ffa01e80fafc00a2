"""Pure-functional encoders. ``encoder_for(config)`` gives the architecture's functions.

Every explainer talks to a model through this ``Encoder`` record, so BERT and GPT-Neo are
interchangeable everywhere::

    x = enc.embed(params, config, ops, ids, token_types)          # f32[B, n, d]
    hidden = enc.encode_embeddings(params, config, ops, x, mask)  # f32[B, n, d]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from jaxsim.models import bert, gpt_neo
from jaxsim.models.config import BertConfig, GPTNeoConfig, ModelConfig
from jaxsim.models.ops import PLAIN_OPS, Ops


class Encoder(NamedTuple):
    """The functions of one architecture (all pure; see ``bert.py`` for the signatures)."""

    embedding_sum: Callable
    embedding_norm: Callable
    embed: Callable
    encode_embeddings: Callable
    encode_embeddings_with_attention: Callable


def encoder_for(config: ModelConfig) -> Encoder:
    module = {BertConfig: bert, GPTNeoConfig: gpt_neo}[type(config)]
    return Encoder(
        embedding_sum=module.embedding_sum,
        embedding_norm=module.embedding_norm,
        embed=module.embed,
        encode_embeddings=module.encode_embeddings,
        encode_embeddings_with_attention=module.encode_embeddings_with_attention,
    )


__all__ = ["Encoder", "Ops", "PLAIN_OPS", "encoder_for"]
