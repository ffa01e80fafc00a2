"""``Ops``: the nonlinearities the encoders call, as a value.

Encoders never know which explainer runs them. Plain ``PLAIN_OPS`` reproduce Hugging Face;
an LRP rule (``jaxsim.explain.rules``) is just another ``Ops`` value whose forward values are
identical but whose derivatives differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsim.types import Array


def plain_dense(x: Array, kernel: Array, bias: Array | None) -> Array:
    """``x: f32[..., in] @ kernel: f32[in, out] (+ bias: f32[out])``."""
    y = x @ kernel
    return y if bias is None else y + bias


class Ops(NamedTuple):
    """The swappable nonlinearities.

    softmax:    attention probabilities, ``(scores: f32[..., q, k]) -> f32[..., q, k]``.
    layer_norm: ``(x: f32[..., d], gamma: f32[d], beta: f32[d], eps: float) -> f32[..., d]``.
    gelu:       ``(x, approximate: bool) -> x``; exact erf (BERT) or tanh (GPT-Neo).
    tanh:       ``x -> x``; the pooler activation of classification heads.
    dense:      ``(x, kernel, bias | None) -> x @ kernel + bias``; an LRP Linear rule
                (``jaxsim.explain.dense_rules``: ε, αβ) swaps its backward pass.
    gated_gelu: ``(input, gate, approximate) -> gelu(input) * gate``, the GeGLU of ModernBERT's
                MLP (HF names the GELU branch ``input`` and the linear branch ``gate``).
    einsum:     ``(spec, a, b) -> jnp.einsum(spec, a, b)``, attention's two activation matmuls
                (scores and mixing); ``jaxsim.models.precision`` rounds its operands.
    """

    softmax: Callable[[Array], Array]
    layer_norm: Callable[[Array, Array, Array, float], Array]
    gelu: Callable[[Array, bool], Array]
    tanh: Callable[[Array], Array]
    dense: Callable[[Array, Array, Array | None], Array]
    gated_gelu: Callable[[Array, Array, bool], Array]
    einsum: Callable[[str, Array, Array], Array] = jnp.einsum


def softmax(scores: Array) -> Array:
    return jax.nn.softmax(scores, axis=-1)


def layer_norm(x: Array, gamma: Array, beta: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta


def gelu(x: Array, approximate: bool) -> Array:
    # jax.nn.gelu defaults to the tanh approximation; BERT needs the exact erf form.
    return jax.nn.gelu(x, approximate=approximate)


def gated_gelu(x: Array, gate: Array, approximate: bool) -> Array:
    """GeGLU: ``gelu(x) * gate`` (both ``f32[..., f]``)."""
    return jax.nn.gelu(x, approximate=approximate) * gate


PLAIN_OPS = Ops(softmax=softmax, layer_norm=layer_norm, gelu=gelu, tanh=jnp.tanh, dense=plain_dense,
                gated_gelu=gated_gelu)
