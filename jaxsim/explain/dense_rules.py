"""Relevance-carrying LRP rules for Linear layers ([W&O] Eq. 3-8; METHODS.md §4), zennit style.

A dense layer ``z = x W + b`` (``x: f32[..., i]``, ``W: f32[i, j]``) gets a ``jax.custom_vjp``
whose backward pass redistributes relevance instead of differentiating. Everything else stays
in the *gradient convention* of ``jaxsim.explain.rules``: the quantity flowing backward is a
modified gradient ``g`` with relevance ``R = value * g`` at every tensor. So the rule reads the
relevance arriving at its output as ``R_j = z_j g_j``, applies the LRP formula, and returns
``g_i = R_i / x_i`` (in closed form, no division), which composes with the AH/LN/GA rules, the
residual sums (LRP-0: proportional split) and fan-out (relevances add).

- **ε** ``R_i = Σ_j x_i w_ij / (z_j + ε sign z_j) · R_j`` (bias in ``z_j``; ε → 0 gives LRP-0,
  i.e. the plain gradient).
- **αβ** ``R_i = Σ_j (α z⁺_ij / Σ_i z⁺_ij − β z⁻_ij / Σ_i z⁻_ij) R_j`` with ``z_ij = x_i w_ij``
  split by sign for signed inputs (``z⁺ = x⁺W⁺ + x⁻W⁻``, ``z⁻ = x⁺W⁻ + x⁻W⁺``), biases out of
  the denominators, so each layer passes on ``(α − β) R = R`` (α = 2, β = 1 as in the paper's
  family; ``α = 1, β = 0`` is the z⁺ rule). The published code's "alpha-beta" (α = β = 0.5, both
  shares *added*, then |·| and rescaled) is not this; see METHODS.md §5.

A ``custom_vjp`` has no JVP: these rules work in reverse mode only (``jax.grad``/``jax.vjp``).
Each is an ``Ops.dense`` value (``ops.dense(x, kernel, bias)``), so encoders stay untouched.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsim.errors import OptionError
from jaxsim.types import Array

#: Added to |denominators| of the αβ shares: an empty share (all contributions 0) gives 0.
_TINY = 1e-12


def _signed_eps(z: Array, eps: float) -> Array:
    """``z + ε sign(z)`` with sign(0) = +1 (never 0 for ε > 0)."""
    return z + eps * jnp.where(z >= 0, 1.0, -1.0).astype(z.dtype)


def _forward(x: Array, kernel: Array, bias: Array) -> Array:
    return x @ kernel + bias


@functools.cache
def epsilon_dense(eps: float = 1e-6):
    """``dense(x, kernel, bias | None) -> z`` whose backward is the LRP-ε rule."""

    @jax.custom_vjp
    def rule(x, kernel, bias):
        return _forward(x, kernel, bias)

    def fwd(x, kernel, bias):
        z = _forward(x, kernel, bias)
        return z, (z, kernel, bias)

    def bwd(res, g):
        z, kernel, bias = res
        relevance_out = g * z
        grad_x = (relevance_out / _signed_eps(z, eps)) @ kernel.T
        return grad_x, jnp.zeros_like(kernel), jnp.zeros_like(bias)

    rule.defvjp(fwd, bwd)
    return _with_optional_bias(rule)


@functools.cache
def alpha_beta_dense(alpha: float = 2.0, beta: float = 1.0):
    """``dense(x, kernel, bias | None) -> z`` whose backward is the LRP-αβ rule (signed inputs)."""
    if abs(alpha - beta - 1.0) > 1e-12:
        raise OptionError(f"LRP-alpha-beta needs alpha - beta = 1 to conserve (got alpha={alpha}, "
                          f"beta={beta}): e.g. alpha=2, beta=1 or alpha=1, beta=0")

    @jax.custom_vjp
    def rule(x, kernel, bias):
        return _forward(x, kernel, bias)

    def fwd(x, kernel, bias):
        z = _forward(x, kernel, bias)
        return z, (x, z, kernel, bias)

    def bwd(res, g):
        x, z, kernel, bias = res
        relevance_out = g * z
        x_pos, x_neg = jnp.maximum(x, 0.0), jnp.minimum(x, 0.0)
        w_pos, w_neg = jnp.maximum(kernel, 0.0), jnp.minimum(kernel, 0.0)
        z_pos = x_pos @ w_pos + x_neg @ w_neg  # Σ_i z⁺_ij >= 0
        z_neg = x_pos @ w_neg + x_neg @ w_pos  # Σ_i z⁻_ij <= 0
        share_pos = alpha * relevance_out / (z_pos + _TINY)
        share_neg = beta * relevance_out / (z_neg - _TINY)
        # R_i / x_i: for x_i > 0 the positive contributions use W⁺, for x_i < 0 they use W⁻.
        grad_if_pos = share_pos @ w_pos.T - share_neg @ w_neg.T
        grad_if_neg = share_pos @ w_neg.T - share_neg @ w_pos.T
        grad_x = jnp.where(x > 0, grad_if_pos, jnp.where(x < 0, grad_if_neg, 0.0))
        return grad_x, jnp.zeros_like(kernel), jnp.zeros_like(bias)

    rule.defvjp(fwd, bwd)
    return _with_optional_bias(rule)


def _with_optional_bias(rule):
    def dense(x: Array, kernel: Array, bias: Array | None) -> Array:
        if bias is None:
            bias = jnp.zeros(kernel.shape[-1], kernel.dtype)
        return rule(x, kernel, bias)
    return dense


def lrp_relevance_reference(
    xs: list[Array], kernels: list[Array], biases: list[Array], relevance_out: Array, rule: str,
    eps: float = 1e-6, alpha: float = 2.0, beta: float = 1.0,
) -> Array:
    """Explicit layer-by-layer LRP through a stack of dense layers (for tests): ``xs[l]`` is the
    input of layer l (``f32[i_l]``), ``relevance_out`` the relevance at the last output."""
    relevance = relevance_out
    for x, w, b in reversed(list(zip(xs, kernels, biases, strict=True))):
        contributions = x[:, None] * w  # z_ij: f32[i, j]
        if rule == "epsilon":
            z = contributions.sum(0) + b
            relevance = (contributions / _signed_eps(z, eps)[None, :] * relevance[None, :]).sum(1)
        elif rule == "alpha_beta":
            pos, neg = jnp.maximum(contributions, 0.0), jnp.minimum(contributions, 0.0)
            ratio = alpha * pos / (pos.sum(0) + _TINY) - beta * neg / (neg.sum(0) - _TINY)
            relevance = (ratio * relevance[None, :]).sum(1)
        else:
            raise OptionError(f"unknown rule {rule!r}: choose epsilon or alpha_beta")
    return relevance
