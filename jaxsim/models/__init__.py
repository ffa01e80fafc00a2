"""Pure-functional encoders (one module per family), pooling, heads and the ``Ops`` seam.

``encoder_for(config)`` gives the architecture's functions (``jaxsim.models.encoder``); the
jitted model calls (``pooled_embeddings``, ``pair_logits``, ...) are built on it.
"""

from __future__ import annotations

from jaxsim.models.encoder import (
    Encoder,
    embedding_outputs,
    encoder_for,
    packed_pooled_embeddings,
    pair_logits,
    pair_logits_fn,
    pooled_embeddings,
)
from jaxsim.models.ops import PLAIN_OPS, Ops

__all__ = ["Encoder", "Ops", "PLAIN_OPS", "embedding_outputs", "encoder_for", "packed_pooled_embeddings",
           "pair_logits", "pair_logits_fn", "pooled_embeddings"]
