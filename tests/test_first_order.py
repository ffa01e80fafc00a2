"""First-order attributions (Wu & Ong; METHODS.md §4): GS, GI, LRP-0/ε/αβ and LAT on pair classifiers.

Checked against PyTorch autograd (GS, GI), conservation (LRP-0 on a bias-free model), an explicit
layer-by-layer LRP loop (ε, αβ Linear rules), and a hand computation from Hugging Face's own
attention probabilities (LAT).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import jaxsim
from jaxsim.classifier import as_classifier
from jaxsim.explain import first_order
from jaxsim.explain.dense_rules import alpha_beta_dense, epsilon_dense, lrp_relevance_reference
from jaxsim.explain.first_order import attribute, explain_pair, explain_pairs
from jaxsim.models import pair_logits
from jaxsim.models.heads import classify
from jaxsim.models.ops import PLAIN_OPS
from jaxsim.text import pad_batch
from tests import tiny_models

PAIRS = [
    ("A cat sits on the mat.", "It is sleeping!"),
    ("Touchscreen-compatible gloves keep your hands warm in winter.", "Gloves."),
]


@pytest.fixture(scope="module")
def tiny_classifier(tiny_bert_classifier_dir, weights_dir):
    return as_classifier(jaxsim.load_model(tiny_bert_classifier_dir, weights_dir=weights_dir))


@pytest.fixture(scope="module")
def hf_classifier(tiny_bert_classifier_dir):
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert_classifier_dir), attn_implementation="eager").eval()


def _batch(clf, pairs, length=32):
    encoded = [clf.model.tokenizer.encode_pair(a, b)[0] for a, b in pairs]
    return encoded, pad_batch(encoded, length)


def _as_float64(model):
    import dataclasses

    return dataclasses.replace(model, params=jax.tree.map(lambda p: jnp.asarray(p, jnp.float64),
                                                          model.params))


def _torch_gradients(hf_model, batch, target):
    """Logits and d logit[target] / d (embedding output), via a forward hook on the embeddings."""
    saved = {}

    def hook(_module, _inputs, output):
        leaf = output.detach().requires_grad_(True)
        saved["x"] = leaf
        return leaf

    handle = hf_model.bert.embeddings.register_forward_hook(hook)
    try:
        out = hf_model(input_ids=torch.tensor(batch.ids, dtype=torch.long),
                       token_type_ids=torch.tensor(batch.type_ids, dtype=torch.long),
                       attention_mask=torch.tensor(batch.mask, dtype=torch.long))
        out.logits[torch.arange(len(target)), torch.tensor(target)].sum().backward()
    finally:
        handle.remove()
    return out.logits.detach().numpy(), saved["x"].detach().numpy(), saved["x"].grad.numpy()


def test_gs_and_gi_match_torch_autograd_on_a_converted_classifier(tiny_classifier, hf_classifier):
    clf = tiny_classifier
    encoded, batch = _batch(clf, PAIRS)
    target = np.asarray([0, 2], np.int32)
    t_logits, t_x, t_grad = _torch_gradients(hf_classifier, batch, target)
    mask = batch.mask
    for method in ("gs", "gi"):
        result = attribute(clf.params, *(jnp.asarray(a) for a in batch), jnp.asarray(target),
                           config=clf.config, method=method)
        logit_diff = float(np.abs(np.asarray(result.logits) - t_logits).max())
        per_dim = t_grad if method == "gs" else t_x * t_grad
        expected = np.square(per_dim).sum(-1) * mask
        scores = np.asarray(result.scores)
        rel = np.abs(scores - expected).max() / np.abs(expected).max()
        signed_diff = np.abs(np.asarray(result.signed) - (t_x * t_grad).sum(-1) * mask).max()
        print(f"\n{method}: logits {logit_diff:.1e}, scores rel {rel:.1e}, signed {signed_diff:.1e}")
        assert logit_diff <= 1e-5
        assert rel <= 1e-5
        assert signed_diff <= 1e-5
        assert (scores[~mask] == 0).all()


def test_probability_output_differentiates_the_softmax(tiny_classifier):
    clf = tiny_classifier
    _, batch = _batch(clf, PAIRS[:1])
    ids, types, mask = (jnp.asarray(a) for a in batch)
    result = attribute(clf.params, ids, types, mask, jnp.asarray([1]), config=clf.config, method="gi",
                       output="probability")
    enc = clf.model.encoder
    x = enc.embed(clf.params, clf.config, PLAIN_OPS, ids, types)

    def prob(x):
        hidden = enc.encode_embeddings(clf.params, clf.config, PLAIN_OPS, x, mask)
        return jax.nn.softmax(classify(clf.params["head"], hidden, PLAIN_OPS))[0, 1]

    grad = jax.grad(prob)(x)
    np.testing.assert_allclose(result.signed, (x * grad).sum(-1), atol=1e-6)
    assert abs(float(result.explained[0]) - float(prob(x))) <= 1e-6


def test_head_logits_equal_the_model_head(tiny_classifier):
    clf = tiny_classifier
    _, batch = _batch(clf, PAIRS)
    ids, types, mask = (jnp.asarray(a) for a in batch)
    expected = pair_logits(clf.params, ids, types, mask, config=clf.config)
    for method in first_order.METHODS:
        result = attribute(clf.params, ids, types, mask, jnp.asarray([-1, -1]), config=clf.config,
                           method=method)
        np.testing.assert_allclose(result.logits, expected, atol=1e-5, err_msg=method)
        np.testing.assert_array_equal(result.target, np.asarray(expected).argmax(-1))


def test_lrp0_conserves_the_explained_logit_on_a_bias_free_classifier(tmp_path):
    path = tiny_models.build_bert(tmp_path / "nb", classifier=True, no_bias=True)
    with jax.enable_x64(True):
        clf = as_classifier(_as_float64(jaxsim.load_model(path, use_cache=False)))
        for target in ("predicted", 0, 2):
            for a, b in PAIRS:
                result = explain_pair(clf, a, b, method="lrp", target=target)
                logit = result.logits[result.target]
                err = abs(result.signed.sum() - logit) / abs(logit)
                print(f"target {target}: sum R = {result.signed.sum():.8f}, logit {logit:.8f}, rel {err:.1e}")
                assert err <= 1e-4
                assert result.explained_value == pytest.approx(logit)


def test_lrp_epsilon_approaches_lrp0_as_epsilon_shrinks(tiny_classifier):
    clf = tiny_classifier
    _, batch = _batch(clf, PAIRS)
    args = (clf.params, *(jnp.asarray(a) for a in batch), jnp.asarray([-1, -1]))
    lrp0 = np.asarray(attribute(*args, config=clf.config, method="lrp").signed)
    errors = []
    for eps in (1e-1, 1e-3, 1e-5, 1e-7):
        eps_rel = np.asarray(attribute(*args, config=clf.config, method="lrp_eps", eps=eps).signed)
        errors.append(float(np.abs(eps_rel - lrp0).max() / np.abs(lrp0).max()))
    print(f"\nLRP-eps vs LRP-0 (eps 1e-1 .. 1e-7): {[f'{e:.1e}' for e in errors]}")
    assert errors[0] > 1e-3  # ε = 0.1 does change the relevance
    assert all(b <= a for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] <= 1e-4


def _mlp(seed=0, bias=True):
    rng = np.random.default_rng(seed)
    kernels = [jnp.asarray(rng.standard_normal(s)) for s in ((6, 5), (5, 4), (4, 3))]
    biases = [jnp.asarray(0.3 * rng.standard_normal(s[1]) * bias) for s in ((6, 5), (5, 4), (4, 3))]
    assert kernels[0].dtype == jnp.float64, "build inside jax.enable_x64"
    return kernels, biases


@pytest.mark.parametrize("rule", ["epsilon", "alpha_beta"])
def test_dense_rules_equal_explicit_layerwise_lrp_on_a_linear_relu_net(rule):
    dense = epsilon_dense(0.01) if rule == "epsilon" else alpha_beta_dense(2.0, 1.0)

    def net(x, dense_fn):
        xs = []
        for i, (w, b) in enumerate(zip(kernels, biases, strict=True)):
            xs.append(x)
            x = dense_fn(x, w, b)
            if i < len(kernels) - 1:
                x = jax.nn.relu(x)
        return x, xs

    with jax.enable_x64(True):
        kernels, biases = _mlp()
        x = jnp.asarray(np.random.default_rng(1).standard_normal(6))  # signed input
        out, xs = net(x, dense)
        c = int(jnp.argmax(out))
        grad = jax.grad(lambda x: net(x, dense)[0][c])(x)
        relevance = x * grad
        expected = lrp_relevance_reference(xs, kernels, biases, out * (jnp.arange(3) == c), rule,
                                           eps=0.01, alpha=2.0, beta=1.0)
    np.testing.assert_allclose(relevance, expected, rtol=1e-9, atol=1e-12)


def test_alpha_beta_conserves_and_lrp0_is_gradient_times_input_on_bias_free_nets():
    def net(x, dense_fn):
        for i, w in enumerate(kernels):
            x = dense_fn(x, w, None)
            x = jax.nn.relu(x) if i < len(kernels) - 1 else x
        return x

    with jax.enable_x64(True):
        kernels, _ = _mlp(bias=False)
        x = jnp.asarray(np.random.default_rng(2).standard_normal(6))
        out = net(x, PLAIN_OPS.dense)
        c = int(jnp.argmax(out))
        for dense in (alpha_beta_dense(2.0, 1.0), alpha_beta_dense(1.0, 0.0), epsilon_dense(1e-12)):
            relevance = x * jax.grad(lambda x, d=dense: net(x, d)[c])(x)
            assert float(relevance.sum()) == pytest.approx(float(out[c]), rel=1e-9)
        # App. B: with ε -> 0 the rule is LRP-0 = gradient x input of the plain network.
        gi = x * jax.grad(lambda x: net(x, PLAIN_OPS.dense)[c])(x)
        eps = x * jax.grad(lambda x: net(x, epsilon_dense(1e-12))[c])(x)
        np.testing.assert_allclose(eps, gi, rtol=1e-9)


def test_alpha_beta_differs_from_lrp0_and_keeps_padding_at_zero(tiny_classifier):
    clf = tiny_classifier
    _, batch = _batch(clf, PAIRS)
    args = (clf.params, *(jnp.asarray(a) for a in batch), jnp.asarray([-1, -1]))
    ab = attribute(*args, config=clf.config, method="lrp_ab")
    lrp0 = attribute(*args, config=clf.config, method="lrp")
    assert np.isfinite(np.asarray(ab.scores)).all()
    assert not np.allclose(ab.scores, lrp0.scores, rtol=1e-2)
    assert (np.asarray(ab.scores)[~batch.mask] == 0).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_lat_equals_a_hand_computation_from_hugging_face_attentions(tmp_path, weights_dir, layers):
    path = tiny_models.build_bert(tmp_path / f"l{layers}", classifier=True, layers=layers)
    clf = as_classifier(jaxsim.load_model(path, weights_dir=weights_dir))
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(path), attn_implementation="eager").eval()
    _, batch = _batch(clf, PAIRS)
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(batch.ids, dtype=torch.long),
                 token_type_ids=torch.tensor(batch.type_ids, dtype=torch.long),
                 attention_mask=torch.tensor(batch.mask, dtype=torch.long), output_attentions=True)
    attn = [a.numpy().astype(np.float64) for a in out.attentions]  # per layer [B, H, n, n]
    # Reference: per head, the [CLS] row of the last layer pushed down through every layer.
    expected = attn[-1][:, :, 0, :]
    mixed = attn[-1].mean(1)[:, 0, :]
    for a in reversed(attn[:-1]):
        expected = np.einsum("bhq,bhqk->bhk", expected, a)
        mixed = np.einsum("bq,bqk->bk", mixed, a.mean(1))
    expected = expected.sum(1)
    args = (clf.params, *(jnp.asarray(a) for a in batch), jnp.asarray([-1, -1]))
    lat = np.asarray(attribute(*args, config=clf.config, method="lat").scores)
    lat_mix = np.asarray(attribute(*args, config=clf.config, method="lat_mix").scores)
    np.testing.assert_allclose(lat, expected * batch.mask, atol=1e-5)
    np.testing.assert_allclose(lat_mix, mixed * batch.mask, atol=1e-6)
    np.testing.assert_allclose(lat.sum(-1), clf.config.num_heads, rtol=1e-5)  # Σ = H
    np.testing.assert_allclose(lat_mix.sum(-1), 1.0, rtol=1e-5)


def test_batched_explanations_equal_one_at_a_time(tiny_classifier):
    pairs = PAIRS + [("A short one.", "Another, somewhat longer sentence about nothing much.")]
    for method in ("gi", "lrp_eps", "lat"):
        batched = explain_pairs(tiny_classifier, pairs, method=method, batch_size=4, progress=False)
        for (a, b), expl in zip(pairs, batched, strict=True):
            single = explain_pair(tiny_classifier, a, b, method=method)
            assert single.tokens == expl.tokens
            np.testing.assert_allclose(single.scores, expl.scores, rtol=1e-4, atol=1e-7)


def test_token_explanation_formats_and_word_scores(tiny_classifier, tmp_path):
    result = explain_pair(tiny_classifier, *PAIRS[1], method="gi", target="last")
    assert result.target == len(tiny_classifier.labels) - 1
    data = json.loads(result.to_json())
    assert set(data) >= {"method", "model", "labels", "predicted", "target", "tokens", "segment",
                         "scores", "signed", "words", "word_scores", "explained_value"}
    assert len(data["tokens"]) == len(data["scores"]) == len(data["segment"])
    words, values = result.word_scores()
    assert words == data["words"]
    content = result.word_ids >= 0
    assert values.sum() == pytest.approx(result.scores[content].sum(), rel=1e-5)  # GI sums pieces
    assert "gloves" in [w.lower() for w in words]
    assert "predicted" in result.show()
    assert "jaxsim-data" in result.to_html()
    assert result.save_png(tmp_path / "gi.png").stat().st_size > 0
    gs = explain_pair(tiny_classifier, *PAIRS[1], method="gs")
    gs_words, gs_values = gs.word_scores()
    assert gs_values.max() == pytest.approx(gs.scores[content].max())  # GS takes the max


def test_unknown_method_target_or_non_classifier_is_a_clear_error(tiny_classifier, tiny_bert):
    with pytest.raises(jaxsim.JaxsimError, match="unknown method"):
        explain_pair(tiny_classifier, *PAIRS[0], method="shap")
    with pytest.raises(jaxsim.JaxsimError, match="unknown target"):
        explain_pair(tiny_classifier, *PAIRS[0], method="gi", target="maybe")
    with pytest.raises(jaxsim.JaxsimError, match="no sequence-classification head"):
        explain_pair(tiny_bert, *PAIRS[0], method="gi")


@pytest.mark.parametrize("method", ["gs", "gi", "lrp", "lat"])
def test_scores_match_the_independent_pytorch_twin(tiny_classifier, hf_classifier, method):
    from benchmarks.classifier import torch_attribute

    _, batch = _batch(tiny_classifier, PAIRS)
    expected = torch_attribute(hf_classifier, batch, method)
    result = attribute(tiny_classifier.params, *(jnp.asarray(a) for a in batch), jnp.asarray([-1, -1]),
                       config=tiny_classifier.config, method=method)
    rel = float(np.abs(np.asarray(result.scores) - expected).max() / np.abs(expected).max())
    print(f"\n{method}: max relative difference to the PyTorch twin {rel:.1e}")
    assert rel <= 1e-5
