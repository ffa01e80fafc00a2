"""Every encoder family as a Flax linen module over the same converted params pytree.

transformers 5 dropped its Flax models; these modules give Flax training code a BERT-family
encoder (BERT, RoBERTa/XLM-R, DistilBERT, MPNet, ModernBERT, GPT-Neo) to load Hugging Face
weights into. They wrap the pure functions of ``jaxsim.models`` — no second implementation —
and take the pytree ``jaxsim`` converts, unchanged, as the ``params`` collection::

    model = jaxsim.load_model("path/to/all-mpnet-base-v2")
    encoder = jaxsim.flax.SentenceEncoder(model.config, pooling="mean")
    vectors = encoder.apply({"params": model.params}, ids, mask)        # f32[B, h]

**Why linen, not NNX.** jaxsim's seam is "params are data": a params pytree and pure functions
(DESIGN.md). Linen's ``apply({"params": params}, ...)`` is exactly that — the module holds no
state, the converted pytree goes in as it is and comes out of ``init`` in the same layout, and
``jax.grad`` / ``optax`` act on it directly. NNX modules own their arrays as mutable attributes
(``nnx.Param`` objects), so the converted tree would need an ``nnx.split``/``merge`` round trip
into NNX's own variable tree and back before any of jaxsim's functions could use it.

``init`` builds fresh params in the converted layout (normal(0.02) weights, LayerNorm scale 1,
zero biases): ``jaxsim.convert.keymap.expected_shapes`` gives the shapes, so an initialised
model and a converted checkpoint are interchangeable. ``ops`` selects the nonlinearities
(``PLAIN_OPS``; a rule composite from ``jaxsim.explain.rules`` gives LRP gradients).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsim.convert.keymap import expected_shapes
from jaxsim.models.config import ModelConfig
from jaxsim.models.encoder import encoder_for
from jaxsim.models.ops import PLAIN_OPS, Ops
from jaxsim.models.pooling import pool
from jaxsim.types import Array

__all__ = ["Encoder", "PairClassifier", "SentenceEncoder", "init_params"]


def _is_shape(x) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def init_params(key: Array, shapes, dtype=jnp.float32):
    """Fresh params for a shape tree (``expected_shapes(config)`` or a subtree): LayerNorm
    ``scale`` 1, every ``bias`` 0, everything else normal(0.02)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes, is_leaf=_is_shape)
    keys = jax.random.split(key, len(leaves))
    values = []
    for (path, shape), k in zip(leaves, keys, strict=True):
        name = getattr(path[-1], "key", None) if path else None
        if name == "scale":
            values.append(jnp.ones(shape, dtype))
        elif name == "bias":
            values.append(jnp.zeros(shape, dtype))
        else:
            values.append(0.02 * jax.random.normal(k, shape, dtype))
    return jax.tree_util.tree_unflatten(treedef, values)


def _declared_params(module: nn.Module, config: ModelConfig) -> dict:
    """The params collection, one linen param per top-level key of the converted layout."""
    shapes = expected_shapes(config)
    return {name: module.param(name, functools.partial(init_params, shapes=subtree))
            for name, subtree in shapes.items()}


def _hidden(params: dict, config: ModelConfig, ops: Ops, ids: Array, mask: Array,
            type_ids: Array | None, attention_bias: Array | None) -> Array:
    enc = encoder_for(config)
    type_ids = jnp.zeros_like(ids) if type_ids is None else type_ids
    x = enc.embed(params, config, ops, ids, type_ids)
    return enc.encode_embeddings(params, config, ops, x, mask, attention_bias=attention_bias)


class Encoder(nn.Module):
    """Last hidden state: ``ids: i32[B, n], mask: bool[B, n] -> f32[B, n, d]``."""

    config: ModelConfig
    ops: Ops = PLAIN_OPS

    @nn.compact
    def __call__(self, ids: Array, mask: Array, type_ids: Array | None = None,
                 attention_bias: Array | None = None) -> Array:
        params = _declared_params(self, self.config)
        return _hidden(params, self.config, self.ops, ids, mask, type_ids, attention_bias)


class SentenceEncoder(nn.Module):
    """Pooled sentence embedding (``cls`` or ``mean``, un-normalised): ``-> f32[B, d]``."""

    config: ModelConfig
    pooling: str = "mean"
    ops: Ops = PLAIN_OPS

    @nn.compact
    def __call__(self, ids: Array, mask: Array, type_ids: Array | None = None) -> Array:
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"SentenceEncoder pools with 'cls' or 'mean', not {self.pooling!r}")
        params = _declared_params(self, self.config)
        hidden = _hidden(params, self.config, self.ops, ids, mask, type_ids, None)
        return pool(self.pooling, None, self.ops, hidden, mask)


class PairClassifier(nn.Module):
    """A ``*ForSequenceClassification`` checkpoint (config with ``num_labels``): the family's
    own head on the encoder, ``ids, mask (, type_ids) -> logits f32[B, C]``. Dropout on the
    head's pooled vector when ``dropout_rate > 0`` and a ``dropout`` rng is given."""

    config: ModelConfig
    ops: Ops = PLAIN_OPS
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, ids: Array, mask: Array, type_ids: Array | None = None,
                 deterministic: bool = True) -> Array:
        if getattr(self.config, "num_labels", None) is None:
            raise ValueError("PairClassifier needs a classifier config (num_labels set): "
                             "dataclasses.replace(config, num_labels=...)")
        params = _declared_params(self, self.config)
        hidden = _hidden(params, self.config, self.ops, ids, mask, type_ids, None)
        key = None if deterministic or self.dropout_rate <= 0 else self.make_rng("dropout")
        return encoder_for(self.config).classify(params["head"], hidden, self.ops, key,
                                                 self.dropout_rate, mask=mask)
