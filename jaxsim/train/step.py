"""The training state and the jitted train step of a sentence-pair classifier.

Loss: mean cross-entropy over the real rows of a batch (filler rows weigh 0). Dropout, when
on, is applied with an explicit key ``fold_in(key, step)`` (so a resumed run draws the same
masks) at the two places that lie outside the pure encoder: the embedding output and the pooled
[CLS] vector (Hugging Face's ``BertForSequenceClassification.dropout``). The encoder's internal
attention/hidden dropout is not implemented: ``jaxsim.models`` stay deterministic, pure functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxsim.models import encoder_for
from jaxsim.models.config import ModelConfig
from jaxsim.models.heads import classify
from jaxsim.models.layers import dropout
from jaxsim.models.ops import PLAIN_OPS
from jaxsim.types import Array


class TrainState(NamedTuple):
    """step: i32[] optimizer steps taken; params: the model pytree (with ``head``); opt_state."""

    step: Array
    params: dict
    opt_state: optax.OptState


def init_state(params: dict, optimizer: optax.GradientTransformation) -> TrainState:
    """Step 0. The params are copied: the train step donates its state, and the caller's
    arrays (e.g. a loaded ``Model``'s) must stay valid."""
    params = jax.tree.map(jnp.array, params)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


def logits_with_dropout(
    params: dict, config: ModelConfig, ids: Array, type_ids: Array, mask: Array, key: Array,
    rate: float,
) -> Array:
    """``f32[B, C]``; with ``rate = 0`` exactly ``jaxsim.models.pair_logits_fn``."""
    enc = encoder_for(config)
    k_emb, k_pool = jax.random.split(key)
    x = dropout(k_emb, enc.embed(params, config, PLAIN_OPS, ids, type_ids), rate)
    hidden = enc.encode_embeddings(params, config, PLAIN_OPS, x, mask)
    return classify(params["head"], hidden, PLAIN_OPS, dropout_key=k_pool, dropout_rate=rate)


def weighted_cross_entropy(logits: Array, labels: Array, weights: Array) -> Array:
    """``logits f32[B, C], labels i32[B], weights f32[B] -> f32[]``: mean over weighted rows."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return (ce * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def apply_gradients(
    state: TrainState, grads: dict, optimizer: optax.GradientTransformation
) -> TrainState:
    """One optimizer update of ``state`` by ``grads`` (the step counter advances by one)."""
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    return TrainState(state.step + 1, optax.apply_updates(state.params, updates), opt_state)


def make_train_step(
    config: ModelConfig, optimizer: optax.GradientTransformation, dropout: float = 0.0,
) -> Callable[[TrainState, tuple, Array], tuple[TrainState, dict]]:
    """A jitted ``(state, batch, key) -> (state, metrics)``; ``batch`` = (ids, type_ids, mask,
    labels, weights). The state is donated; params stay arguments (no closed-over constants)."""

    def loss_fn(params, batch, key):
        ids, type_ids, mask, labels, weights = batch
        logits = logits_with_dropout(params, config, ids, type_ids, mask, key, dropout)
        correct = ((logits.argmax(-1) == labels) * weights).sum()
        return weighted_cross_entropy(logits, labels, weights), correct

    def step(state: TrainState, batch: tuple, key: Array) -> tuple[TrainState, dict]:
        (loss, correct), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, batch, jax.random.fold_in(key, state.step)
        )
        metrics = {"loss": loss, "correct": correct, "rows": batch[4].sum(),
                   "grad_norm": optax.tree.norm(grads)}
        return apply_gradients(state, grads, optimizer), metrics

    return jax.jit(step, donate_argnums=0)
