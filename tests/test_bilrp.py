"""BiLRP, H×P and Embeddings against independent references: a literal loop over output
dimensions, the autodiff Hessian, conservation on bias-free models, a numpy formula."""

from __future__ import annotations

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim.cli import main
from jaxsim.explain import bilrp, explain_pair
from jaxsim.explain.rules import LRP_OPS
from jaxsim.models import embedding_outputs, pooled_embeddings
from jaxsim.models.ops import PLAIN_OPS
from jaxsim.models.pooling import pool
from jaxsim.text import TruncationWarning, pad_batch
from tests import tiny_models

PAIRS = [
    ("A man is playing a guitar.", "A person plays an instrument."),
    ("The cat sat on the mat near the window all afternoon.", "A dog sleeps."),
]
LONG = "the quick brown fox jumps over the lazy dog while the sun sets slowly behind the hills"


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def loop_relevance(model, text: str, ops=LRP_OPS) -> np.ndarray:
    """The reference implementation's algorithm: one gradient per output dimension m,
    ``r_m = (grad_m * x).sum(-1)``, unpadded, a Python loop. -> f64[h, n]."""
    enc = model.encode([text])[0]
    ids, types = jnp.asarray(enc.ids[None]), jnp.zeros((1, len(enc)), jnp.int32)
    mask = jnp.ones((1, len(enc)), bool)
    params, config, encoder = model.params, model.config, model.encoder
    x = encoder.embed(params, config, ops, ids, types)

    def phi_m(x, m):
        hidden = encoder.encode_embeddings(params, config, ops, x, mask)
        return pool(model.pooling, model.pool_params, ops, hidden, mask)[0, m]

    grad_m = jax.jit(jax.grad(phi_m))
    return np.stack([np.asarray((grad_m(x, m) * x)[0].sum(-1), np.float64)
                     for m in range(config.hidden_size)])


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt_neo"])
def test_loop_reverse_and_forward_engines_agree_on_tiny_models(fixture, request):
    model = request.getfixturevalue(fixture)
    a, b = LONG, "a short text"  # LONG is longer than the GPT-Neo local window (8)
    expected = loop_relevance(model, a).T @ loop_relevance(model, b)
    for mode in ("reverse", "forward"):
        result = explain_pair(model, a, b, mode=mode)
        err = _rel_err(result.relevance, expected)
        print(f"{fixture} {mode}: rel err vs loop {err:.2e}")
        assert err <= 1e-5


def test_loop_reverse_and_forward_engines_agree_on_minilm(minilm):
    a, b = PAIRS[0]
    expected = loop_relevance(minilm, a).T @ loop_relevance(minilm, b)
    assert bilrp.resolve_mode("auto", 16, minilm.config.hidden_size) == "forward"
    for mode in ("reverse", "forward"):
        err = _rel_err(explain_pair(minilm, a, b, mode=mode).relevance, expected)
        print(f"MiniLM {mode}: rel err vs loop {err:.2e}")
        assert err <= 1e-5


def _as_float64(model):
    import dataclasses

    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), model.params)
    return dataclasses.replace(model, params=params)


@pytest.mark.parametrize("builder", ["bert", "gpt_neo"])
def test_bilrp_conserves_the_similarity_on_a_bias_free_model(builder, tmp_path):
    path = (tiny_models.build_bert if builder == "bert" else tiny_models.build_gpt_neo)(
        tmp_path / builder, no_bias=True)
    with jax.enable_x64(True):
        model = _as_float64(jaxsim.load_model(path, use_cache=False))
        for a, b in [PAIRS[0], (LONG, "a short text")]:
            result = explain_pair(model, a, b)
            batch = pad_batch(model.encode([a, b]), 32)
            phi = np.asarray(pooled_embeddings(model.params, None, *batch, config=model.config,
                                               pooling="mean"))
            y = float(phi[0] @ phi[1])
            err = abs(result.sum_relevance - y) / abs(y)
            print(f"{builder}: sum R = {result.sum_relevance:.8f}, y = {y:.8f}, rel {err:.1e}")
            assert err <= 1e-4
            # First order too: sum_t r_m[t] = phi_m for every output dimension m.
            r, phi_rule = bilrp.token_relevance(model.params, None, *pad_batch(model.encode([a]), 32),
                                                config=model.config, pooling="mean", chunk_size=32)
            np.testing.assert_allclose(np.asarray(r[0]).sum(-1), phi[0], rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(np.asarray(phi_rule[0]), phi[0], rtol=1e-10)


def test_bilrp_does_not_conserve_with_biases_but_the_bias_terms_close_the_gap(tiny_bert):
    """With biases, phi~ is linear in (x, biases) jointly: sum_t r_m[t] plus the biases'
    gradient x input equals phi_m exactly (METHODS.md §1.5)."""
    model = tiny_bert
    enc = model.encode([PAIRS[0][0]])[0]
    ids, types = jnp.asarray(enc.ids[None]), jnp.zeros((1, len(enc)), jnp.int32)
    mask = jnp.ones((1, len(enc)), bool)
    encoder, config = model.encoder, model.config

    def is_bias(path) -> bool:
        return path[-1].key == "bias"

    def phi(x, params):
        hidden = encoder.encode_embeddings(params, config, LRP_OPS, x, mask)
        return pool("mean", None, LRP_OPS, hidden, mask)[0]

    x = encoder.embed(model.params, config, LRP_OPS, ids, types)
    jac_x, jac_p = jax.jacrev(phi, argnums=(0, 1))(x, model.params)
    token_part = np.asarray((jac_x * x[None]).sum((1, 2, 3)))
    bias_part = sum(
        np.asarray((j * p[None]).reshape(config.hidden_size, -1).sum(-1))
        for (path, j), p in zip(jax.tree_util.tree_leaves_with_path(jac_p),
                                jax.tree.leaves(model.params), strict=True)
        if is_bias(path) and path[0].key == "layers"
    )
    target = np.asarray(phi(x, model.params))
    assert np.abs(token_part - target).max() > 1e-3  # the biases do carry relevance
    np.testing.assert_allclose(token_part + bias_part, target, rtol=1e-4, atol=1e-4)


def test_relevance_is_symmetric_in_the_pair(minilm):
    a, b = PAIRS[1]
    np.testing.assert_allclose(explain_pair(minilm, a, b).relevance,
                               explain_pair(minilm, b, a).relevance.T, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_padded_positions_get_exactly_zero_relevance(tiny_bert, mode):
    enc = tiny_bert.encode(["a short text"])[0]
    r, _ = bilrp.token_relevance(tiny_bert.params, None, *pad_batch([enc], 32),
                                 config=tiny_bert.config, pooling="mean", mode=mode, chunk_size=16)
    r = np.asarray(r[0])
    assert np.all(r[:, len(enc):] == 0.0)
    assert np.abs(r[:, : len(enc)]).min(axis=0).max() > 0


def test_padding_to_a_larger_bucket_does_not_change_relevance(tiny_bert):
    enc = tiny_bert.encode([PAIRS[0][0]])[0]
    common = dict(config=tiny_bert.config, pooling="mean", mode="forward", chunk_size=16)
    r16, _ = bilrp.token_relevance(tiny_bert.params, None, *pad_batch([enc], 16), **common)
    r64, _ = bilrp.token_relevance(tiny_bert.params, None, *pad_batch([enc], 64), **common)
    n = len(enc)
    np.testing.assert_allclose(r16[0, :, :n], r64[0, :, :n], rtol=1e-5, atol=1e-6)


def test_batched_explain_pairs_equals_one_by_one(tiny_bert):
    pairs = [PAIRS[0], PAIRS[1], (LONG, PAIRS[0][1])]
    batched = tiny_bert.explain_pairs(pairs, batch_size=3, progress=False)
    for (a, b), result in zip(pairs, batched, strict=True):
        assert _rel_err(result.relevance, explain_pair(tiny_bert, a, b).relevance) <= 1e-5


def test_word_aggregation_preserves_the_sum_and_drops_only_specials(minilm):
    result = explain_pair(minilm, "Unbelievably, tokenization works.", "It works fine.")
    words_a, words_b, words = result.word_relevance()
    assert words_a == ["Unbelievably", ",", "tokenization", "works", "."]
    special_a, special_b = result.special_a, result.special_b
    content_sum = result.relevance[~special_a][:, ~special_b].sum()
    np.testing.assert_allclose(words.sum(), content_sum, rtol=1e-10)
    labels_a, labels_b, with_specials = result.word_relevance(drop_special=False)
    assert labels_a[0] == "[CLS]" and labels_a[-1] == "[SEP]"
    np.testing.assert_allclose(with_specials.sum(), result.sum_relevance, rtol=1e-10)


def test_hxp_equals_the_cross_hessian_contracted_with_both_inputs(tiny_bert):
    a, b = "a man plays", "someone plays music"
    model = tiny_bert
    ea, eb = model.encode([a, b])

    def embed(enc):
        return model.encoder.embed(model.params, model.config, PLAIN_OPS,
                                   jnp.asarray(enc.ids[None]), jnp.zeros((1, len(enc)), jnp.int32))

    def phi(x):
        mask = jnp.ones(x.shape[:2], bool)
        hidden = model.encoder.encode_embeddings(model.params, model.config, PLAIN_OPS, x, mask)
        return pool("mean", None, PLAIN_OPS, hidden, mask)[0]

    xa, xb = embed(ea), embed(eb)
    cross = jax.jacfwd(jax.grad(lambda u, v: phi(u) @ phi(v)), argnums=1)(xa, xb)
    expected = np.asarray(jnp.einsum("atd,atdbse,bse->ts", xa, cross, xb))
    result = explain_pair(model, a, b, method="hxp")
    err = _rel_err(result.relevance, expected)
    print(f"H×P vs autodiff cross Hessian: rel err {err:.2e}")
    assert err <= 1e-4
    assert _rel_err(explain_pair(model, a, b).relevance, result.relevance) > 1e-2  # differs


def test_embedding_baseline_matches_the_numpy_formula(minilm):
    a, b = PAIRS[0]
    ea, eb = minilm.encode([a, b])
    e = [np.asarray(embedding_outputs(minilm.params, jnp.asarray(x.ids[None]),
                                            jnp.zeros((1, len(x)), jnp.int32),
                                            config=minilm.config))[0] for x in (ea, eb)]
    expected = (e[0].astype(np.float64) @ e[1].astype(np.float64).T) ** 2
    assert _rel_err(explain_pair(minilm, a, b, method="embedding").relevance, expected) <= 1e-5


def test_cosine_similarity_scales_relevance_by_the_norms(minilm):
    a, b = PAIRS[0]
    dot, cos = (explain_pair(minilm, a, b, similarity=s) for s in ("dot", "cosine"))
    factor = dot.similarity / cos.similarity
    np.testing.assert_allclose(cos.relevance * factor, dot.relevance, rtol=1e-6)
    assert abs(cos.similarity - minilm.similarity(a, b)) < 1e-5


def test_negative_control_gradient_x_input_before_the_embedding_layernorm_vanishes(minilm):
    """LayerNorm is scale invariant per token (Euler, degree 0): plain gradient x input w.r.t.
    the pre-LN embedding sum is ~0 for every token, unlike w.r.t. the LN output."""
    before = explain_pair(minilm, *PAIRS[0], method="hxp", explain_input="embedding_sum")
    after = explain_pair(minilm, *PAIRS[0], method="hxp")
    assert np.abs(before.relevance).max() < 1e-6 * np.abs(after.relevance).max()


def test_qkv_pooling_is_explained_and_conserves_on_a_bias_free_model(tmp_path):
    path = tiny_models.build_bert(tmp_path / "nb", no_bias=True)
    with jax.enable_x64(True):
        model = _as_float64(jaxsim.load_model(path, use_cache=False, pooling="qkv"))
        model = model.with_pooling("qkv", jax.tree.map(lambda p: jnp.asarray(p, jnp.float64),
                                                       model.pool_params))
        result = explain_pair(model, *PAIRS[0])
        batch = pad_batch(model.encode(list(PAIRS[0])), 32)
        phi = np.asarray(pooled_embeddings(model.params, model.pool_params, *batch,
                                           config=model.config, pooling="qkv"))
        y = float(phi[0] @ phi[1])
        assert abs(result.sum_relevance - y) / abs(y) <= 1e-4


def test_bad_inputs_give_clear_errors(minilm):
    with pytest.raises(jaxsim.InputTextError, match="text a is empty"):
        explain_pair(minilm, "   ", "fine")
    with pytest.raises(jaxsim.JaxsimError, match="unknown method"):
        explain_pair(minilm, "a", "b", method="lime")
    with pytest.raises(jaxsim.JaxsimError, match="unknown pooling"):
        minilm.with_pooling("max")
    with pytest.raises(jaxsim.JaxsimError, match="unknown mode"):
        explain_pair(minilm, "a", "b", mode="sideways")


def test_a_text_over_the_maximum_is_truncated_with_a_warning(tiny_bert):
    long_text = " ".join(["word"] * 300)  # tiny BERT allows 128 positions
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = explain_pair(tiny_bert, long_text, "word")
    assert any(issubclass(w.category, TruncationWarning) for w in caught)
    assert len(result.tokens_a) == tiny_bert.tokenizer.max_length == 128


def test_cli_json_contract(capsys, weights_dir):
    code = main(["explain", "--format", "json", "--weights-dir", str(weights_dir),
                 "A man is playing a guitar.", "A person plays an instrument."])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["method", "model", "tokens_a", "tokens_b", "relevance", "similarity",
                         "sum_relevance", "words_a", "words_b", "word_relevance"]
    assert out["method"] == "bilrp" and out["model"] == "all-MiniLM-L6-v2"
    assert out["tokens_a"][0] == "[CLS]" and out["tokens_b"][-1] == "[SEP]"
    relevance = np.asarray(out["relevance"])
    assert relevance.shape == (len(out["tokens_a"]), len(out["tokens_b"]))
    assert abs(relevance.sum() - out["sum_relevance"]) < 1e-6 * abs(out["sum_relevance"])
    assert np.asarray(out["word_relevance"]).shape == (len(out["words_a"]), len(out["words_b"]))


def test_cli_text_and_html_outputs(capsys, weights_dir, tmp_path):
    assert main(["explain", "--weights-dir", str(weights_dir), "a cat", "a dog"]) == 0
    assert "top" in capsys.readouterr().out
    html_path, png_path = tmp_path / "pair.html", tmp_path / "pair.png"
    assert main(["explain", "--format", "html", "--out", str(html_path), "--png", str(png_path),
                 "--weights-dir", str(weights_dir), "a cat", "a dog"]) == 0
    page = html_path.read_text()
    assert "<table" in page and "http://" not in page and "https://" not in page
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
