"""LRP rules for transformers as ``Ops`` values ([BiLRP] §3.2; METHODS.md §1.1).

LRP-0 through a network equals gradient x input through a *rule graph* whose forward values
equal the model's but whose local derivatives are modified:

- **AH** (attention heads): the softmax output is treated as a constant, so attention is a linear
  map of the values: ``out = [softmax(QK^T)].detach() @ V``.
- **LN** (LayerNorm): the standard deviation is a constant:
  ``(h - mean(h)) / [sqrt(var(h) + eps)].detach() * gamma + beta`` (the mean is not detached).
- **GA** (GELU): relevance proportional to the activation, ``z * [gelu(z) / z].detach()``.
- **tanh** (the classification head's pooler): proportional like GA, ``z * [tanh(z) / z].detach()``.
- **GATE** (ModernBERT's GeGLU ``gelu(a) * g``): the GELU branch is a constant gate,
  ``[gelu(a)].detach() * g``, so all relevance flows through the linear branch ``g`` (the AH
  rule's reasoning for a multiplicative interaction; docs/rules.md).

Rotary embeddings (linear in q and k, which the detached softmax cuts anyway) and MPNet's
relative-position bias (a constant inside the detached softmax) need no rule of their own.

Each rule's math is written once (``_proportional_ratio``, ``_ln_scale``) and wrapped twice:

- ``stop_gradient`` form — works with ``jax.vjp`` *and* ``jax.jvp`` (the forward engine);
- ``jax.custom_vjp`` form — the reverse-mode rule as a modified backward pass (what the LRP
  literature writes); it has no JVP, so the forward engine uses the twin above.

``tests/test_rules.py`` checks that both give the same relevance.

**The registry.** ``COMPOSITES`` names every rule set an explainer may run (zennit's composites:
a name -> the rules mapped onto the layers); ``composite(name, **options)`` builds one as an
``Ops`` value. BiLRP, first-order LRP, GMASK and the gradient baselines all pick their rules
here and nowhere else: ``plain`` (gradients), ``lrp`` (AH + LN + GA + tanh, Linear layers LRP-0),
``lrp_eps`` / ``lrp_ab`` (the same with the ε or αβ Linear rule of ``dense_rules``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp

from jaxsim.errors import OptionError
from jaxsim.explain.dense_rules import alpha_beta_dense, epsilon_dense
from jaxsim.models.ops import PLAIN_OPS, Ops
from jaxsim.types import Array

LNVariant = Literal["paper", "reference"]


# --- rule math (shared by both forms) -------------------------------------------------------

def _proportional_ratio(fn: Callable[[Array], Array], z: Array, at_zero: float) -> Array:
    """``fn(z) / z``, safe at 0 where it takes its limit ``at_zero`` (|z| < 1e-9; the reference
    divides by ``z + 1e-9`` instead)."""
    small = jnp.abs(z) < 1e-9
    safe = jnp.where(small, 1.0, z)
    return jnp.where(small, at_zero, fn(safe) / safe)


def _gelu_ratio(z: Array, approximate: bool) -> Array:
    """``gelu(z) / z`` (limit 0.5 at 0)."""
    return _proportional_ratio(functools.partial(jax.nn.gelu, approximate=approximate), z, 0.5)


def _tanh_ratio(z: Array) -> Array:
    """``tanh(z) / z`` (limit 1 at 0)."""
    return _proportional_ratio(jnp.tanh, z, 1.0)


def _ln_scale(x: Array, eps: float, variant: LNVariant) -> tuple[Array, Array]:
    """Centered input and the scale the LN rule freezes.

    ``paper``: ``sqrt(var + eps)`` — forward values identical to the model.
    ``reference``: ``std + eps`` as alevas/xai_similarity_transformers (differs by O(eps)).
    """
    centered = x - x.mean(-1, keepdims=True)
    var = jnp.square(centered).mean(-1, keepdims=True)
    scale = jnp.sqrt(var + eps) if variant == "paper" else jnp.sqrt(var) + eps
    return centered, scale


# --- stop_gradient form (forward and reverse mode) ------------------------------------------

def ah_softmax(scores: Array) -> Array:
    return jax.lax.stop_gradient(jax.nn.softmax(scores, axis=-1))


def _ln_stop_gradient(variant: LNVariant):
    def ln(x: Array, gamma: Array, beta: Array, eps: float) -> Array:
        centered, scale = _ln_scale(x, eps, variant)
        return centered / jax.lax.stop_gradient(scale) * gamma + beta
    return ln


def ga_gelu(z: Array, approximate: bool) -> Array:
    return z * jax.lax.stop_gradient(_gelu_ratio(z, approximate))


def tanh_proportional(z: Array) -> Array:
    """tanh with relevance passed on unchanged (``z · [tanh(z)/z].detach()``)."""
    return z * jax.lax.stop_gradient(_tanh_ratio(z))


def gate_constant(x: Array, gate: Array, approximate: bool) -> Array:
    """GeGLU with ``gelu(x)`` a constant gate: ``[gelu(x)].detach() * gate``."""
    return jax.lax.stop_gradient(jax.nn.gelu(x, approximate=approximate)) * gate


# --- custom_vjp form (reverse mode only) -----------------------------------------------------

@jax.custom_vjp
def ah_softmax_vjp(scores: Array) -> Array:
    return jax.nn.softmax(scores, axis=-1)


def _ah_fwd(scores):
    return jax.nn.softmax(scores, axis=-1), None


def _ah_bwd(_, g):
    # The attention probabilities are constants: no relevance flows into the scores.
    return (jnp.zeros_like(g),)


ah_softmax_vjp.defvjp(_ah_fwd, _ah_bwd)


def _sum_to(g: Array, shape: tuple[int, ...]) -> Array:
    return g.reshape(-1, *shape).sum(0)


@functools.cache
def _ln_custom_vjp(variant: LNVariant):
    @functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
    def ln(x, gamma, beta, eps):
        centered, scale = _ln_scale(x, eps, variant)
        return centered / scale * gamma + beta

    def fwd(x, gamma, beta, eps):
        centered, scale = _ln_scale(x, eps, variant)
        return centered / scale * gamma + beta, (centered, scale, gamma)

    def bwd(eps, res, g):
        centered, scale, gamma = res
        gx = g * gamma / scale
        dx = gx - gx.mean(-1, keepdims=True)  # only the centering is differentiated
        return dx, _sum_to(g * centered / scale, gamma.shape), _sum_to(g, gamma.shape)

    ln.defvjp(fwd, bwd)
    return ln


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def ga_gelu_vjp(z: Array, approximate: bool) -> Array:
    return jax.nn.gelu(z, approximate=approximate)


def _ga_fwd(z, approximate):
    return jax.nn.gelu(z, approximate=approximate), _gelu_ratio(z, approximate)


def _ga_bwd(approximate, ratio, g):
    return (g * ratio,)


ga_gelu_vjp.defvjp(_ga_fwd, _ga_bwd)


@jax.custom_vjp
def tanh_proportional_vjp(z: Array) -> Array:
    return jnp.tanh(z)


def _tanh_fwd(z):
    return jnp.tanh(z), _tanh_ratio(z)


def _tanh_bwd(ratio, g):
    return (g * ratio,)


tanh_proportional_vjp.defvjp(_tanh_fwd, _tanh_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def gate_constant_vjp(x: Array, gate: Array, approximate: bool) -> Array:
    return jax.nn.gelu(x, approximate=approximate) * gate


def _gate_fwd(x, gate, approximate):
    act = jax.nn.gelu(x, approximate=approximate)
    return act * gate, act


def _gate_bwd(approximate, act, g):
    # The GELU branch is a constant: nothing reaches x, g * gelu(x) reaches the linear branch.
    return jnp.zeros_like(g), g * act


gate_constant_vjp.defvjp(_gate_fwd, _gate_bwd)


# --- composites -------------------------------------------------------------------------------

@functools.cache
def lrp_ops(
    *, attention: bool = True, layer_norm: bool = True, gelu: bool = True, tanh: bool = True,
    gate: bool = True, ln_variant: LNVariant = "paper",
    form: Literal["stop_gradient", "custom_vjp"] = "stop_gradient",
) -> Ops:
    """The LRP composite: AH + LN + GA + proportional tanh + GATE (GeGLU), Linear layers LRP-0
    (each rule can be turned off, e.g. SGPT presets: no GA).

    form: ``stop_gradient`` (both AD modes) or ``custom_vjp`` (reverse mode only). Cached, so
    equal arguments give the identical ``Ops`` object and jit caches stay warm.
    """
    if form == "stop_gradient":
        rules = (ah_softmax, _ln_stop_gradient(ln_variant), ga_gelu, tanh_proportional, gate_constant)
    elif form == "custom_vjp":
        rules = (ah_softmax_vjp, _ln_custom_vjp(ln_variant), ga_gelu_vjp, tanh_proportional_vjp,
                 gate_constant_vjp)
    else:
        raise OptionError(f"unknown rule form {form!r}: choose stop_gradient or custom_vjp")
    rule_softmax, rule_ln, rule_gelu, rule_tanh, rule_gate = rules
    return PLAIN_OPS._replace(
        softmax=rule_softmax if attention else PLAIN_OPS.softmax,
        layer_norm=rule_ln if layer_norm else PLAIN_OPS.layer_norm,
        gelu=rule_gelu if gelu else PLAIN_OPS.gelu,
        tanh=rule_tanh if tanh else PLAIN_OPS.tanh,
        gated_gelu=rule_gate if gate else PLAIN_OPS.gated_gelu,
    )


def _plain() -> Ops:
    return PLAIN_OPS


def _lrp_epsilon(eps: float = 1e-6, **lrp_options) -> Ops:
    return lrp_ops(**lrp_options)._replace(dense=epsilon_dense(float(eps)))


def _lrp_alpha_beta(alpha: float = 2.0, beta: float = 1.0, **lrp_options) -> Ops:
    return lrp_ops(**lrp_options)._replace(dense=alpha_beta_dense(float(alpha), float(beta)))


#: Every named rule set: name -> builder of its ``Ops`` (keyword options as the builder takes).
COMPOSITES: dict[str, Callable[..., Ops]] = {
    "plain": _plain,             # plain gradients: H×P, BTI, GS, GI, GMASK
    "lrp": lrp_ops,              # BiLRP and first-order LRP-0: AH + LN + GA + tanh + GATE
    "lrp_eps": _lrp_epsilon,     # the same, Linear layers by LRP-ε (eps)
    "lrp_ab": _lrp_alpha_beta,   # the same, Linear layers by LRP-αβ (alpha, beta)
}


def composite(name: str, **options) -> Ops:
    """The ``Ops`` of the named composite (``COMPOSITES``); equal arguments give equal ``Ops``, so
    jit caches keyed on them stay warm."""
    if name not in COMPOSITES:
        raise OptionError(f"unknown rule composite {name!r}: choose one of {', '.join(COMPOSITES)}")
    return COMPOSITES[name](**options)


LRP_OPS = lrp_ops()
LRP_OPS_VJP = lrp_ops(form="custom_vjp")
