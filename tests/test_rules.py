"""The LRP rules: forward values equal the model's, the two forms (custom_vjp and
stop_gradient) give the same backward pass, and each rule's backward is what the paper says."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.explain import bilrp, rules
from jaxsim.models.ops import PLAIN_OPS
from jaxsim.text import pad_batch

KEY = jax.random.PRNGKey(0)


def _vjp(fn, *args):
    out, pullback = jax.vjp(fn, *args)
    cotangent = jax.random.normal(jax.random.PRNGKey(1), out.shape)
    return pullback(cotangent)


def test_rule_forward_values_equal_plain_ops():
    x = jax.random.normal(KEY, (3, 5, 8)) * 3
    gamma, beta = jnp.linspace(0.5, 2, 8), jnp.linspace(-1, 1, 8)
    for form in ("stop_gradient", "custom_vjp"):
        ops = rules.lrp_ops(form=form)
        np.testing.assert_allclose(ops.softmax(x), PLAIN_OPS.softmax(x), rtol=1e-6)
        np.testing.assert_allclose(ops.layer_norm(x, gamma, beta, 1e-12),
                                   PLAIN_OPS.layer_norm(x, gamma, beta, 1e-12), rtol=1e-5, atol=1e-6)
        for approximate in (False, True):
            np.testing.assert_allclose(ops.gelu(x, approximate), PLAIN_OPS.gelu(x, approximate),
                                       rtol=1e-6, atol=1e-7)


def test_custom_vjp_and_stop_gradient_forms_have_the_same_backward():
    x = jax.random.normal(KEY, (2, 4, 6)) * 2
    gamma, beta = jnp.linspace(0.5, 2, 6), jnp.linspace(-1, 1, 6)
    sg, cv = rules.lrp_ops(), rules.lrp_ops(form="custom_vjp")
    np.testing.assert_allclose(_vjp(sg.softmax, x)[0], _vjp(cv.softmax, x)[0])
    for a, b in zip(_vjp(lambda *p: sg.layer_norm(*p, 1e-5), x, gamma, beta),
                    _vjp(lambda *p: cv.layer_norm(*p, 1e-5), x, gamma, beta), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_vjp(lambda z: sg.gelu(z, False), x)[0],
                               _vjp(lambda z: cv.gelu(z, False), x)[0], rtol=1e-6)


def test_ah_rule_passes_no_gradient_into_scores():
    scores = jax.random.normal(KEY, (2, 3, 3))
    grad = jax.grad(lambda s: (rules.LRP_OPS.softmax(s) * jnp.arange(3.0)).sum())(scores)
    assert np.all(np.asarray(grad) == 0)


def test_ln_rule_is_linear_in_its_input_given_the_frozen_scale():
    # With the std detached, LN(x) - beta is gamma * centered(x) / s: gradient x input
    # reproduces the output minus beta exactly (Euler for degree-1 homogeneous maps).
    x = jax.random.normal(KEY, (4, 7)) + 1.0
    gamma, beta = jnp.linspace(0.5, 2, 7), jnp.linspace(-1, 1, 7)
    for k in range(7):
        out_k = lambda v, k=k: rules.LRP_OPS.layer_norm(v, gamma, beta, 1e-5)[..., k]  # noqa: E731
        g = jax.grad(lambda v, f=out_k: f(v).sum())(x)
        np.testing.assert_allclose((g * x).sum(-1), out_k(x) - beta[k], rtol=1e-5, atol=1e-5)


def test_ga_rule_ratio_at_zero_is_the_limit_one_half():
    z = jnp.array([0.0, 1e-12, 2.0])
    grad = jax.grad(lambda v: rules.LRP_OPS.gelu(v, False).sum())(z)
    np.testing.assert_allclose(grad[:2], [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(grad[2], jax.nn.gelu(2.0, approximate=False) / 2.0, rtol=1e-6)


def test_ln_reference_variant_differs_only_by_order_eps():
    x = jax.random.normal(KEY, (4, 16))
    gamma, beta = jnp.ones(16), jnp.zeros(16)
    paper = rules.lrp_ops(ln_variant="paper").layer_norm(x, gamma, beta, 1e-5)
    reference = rules.lrp_ops(ln_variant="reference").layer_norm(x, gamma, beta, 1e-5)
    diff = float(jnp.abs(paper - reference).max())
    assert 0 < diff < 1e-4


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt_neo"])
def test_custom_vjp_rules_give_the_same_relevance_as_the_forward_twin(fixture, request):
    model = request.getfixturevalue(fixture)
    enc = model.encode(["the quick brown fox jumps over the lazy dog again and again today"])[0]
    batch = pad_batch([enc], 32)
    common = dict(config=model.config, pooling="mean", chunk_size=8)
    r_forward, _ = bilrp.token_relevance(model.params, None, *batch, ops=rules.LRP_OPS,
                                         mode="forward", **common)
    r_vjp, _ = bilrp.token_relevance(model.params, None, *batch, ops=rules.LRP_OPS_VJP,
                                     mode="reverse", **common)
    scale = float(jnp.abs(r_forward).max())
    err = float(jnp.abs(r_forward - r_vjp).max()) / scale
    print(f"{fixture}: custom_vjp vs stop_gradient forward, max rel err {err:.2e}")
    assert err < 1e-5
