"""BTI against independent references: finite differences, a PyTorch autograd twin, hand-built
word maps and MeanShift cases, IG completeness, and the parameter-randomisation sanity test."""

from __future__ import annotations

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import jaxsim
from jaxsim.cli import main
from jaxsim.evaluate.sanity import randomisation
from jaxsim.explain import bti
from jaxsim.text import pad_batch
from tests.conftest import DATA

PAIRS = [
    ("A man is playing a guitar on the stage.", "A person plays an instrument."),
    ("Unbelievably, the tokenization of T-shirts works.", "Shirts are tokenized fine."),
]


def _single(model, text):
    enc = model.tokenizer.encode(text)
    batch = pad_batch([enc], 16 if len(enc) <= 16 else 32)
    content = np.zeros_like(batch.mask)
    content[0, : len(enc)] = ~enc.special
    return enc, batch, content


def test_gradient_equals_central_finite_difference_in_float64(tiny_bert):
    import dataclasses

    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), tiny_bert.params)
        model = dataclasses.replace(tiny_bert, params=params)
        _, batch, content = _single(model, "a man plays the guitar")
        E, _, _ = bti.bti_features(params, batch.ids, batch.mask, content, config=model.config)
        anchor = jax.random.normal(jax.random.PRNGKey(0), (1, model.config.hidden_size),
                                   jnp.float64)
        g, _ = bti.bti_gradients(params, E, batch.mask, content, anchor, config=model.config)

        def score(e):
            segment = params["embeddings"]["token_type"][0]
            F, _ = bti._features_from_sum(params, model.config, e + segment, batch.mask, content)
            return float(bti._cosine(anchor[0], F[0]))

        for seed in range(3):
            v = jax.random.normal(jax.random.PRNGKey(seed + 1), E.shape, jnp.float64)
            eps = 1e-5
            fd = (score(E + eps * v) - score(E - eps * v)) / (2 * eps)
            analytic = float((g * v).sum())
            print(f"directional derivative: autodiff {analytic:.10f}, finite diff {fd:.10f}")
            assert abs(analytic - fd) <= 1e-6 * max(1.0, abs(fd))


def _torch_saliency(model_dir, text_target: str, text_anchor: str) -> np.ndarray:
    """Independent twin: HF BertModel + torch autograd. E = word + position embedding
    (inputs_embeds + position ids, so d/d inputs_embeds = d/d E)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    hf = transformers.AutoModel.from_pretrained(str(model_dir)).eval()

    def content_mean(text, inputs_embeds=None):
        enc = tokenizer(text, return_tensors="pt")
        if inputs_embeds is None:
            hidden = hf(**enc).last_hidden_state[0]
        else:
            hidden = hf(inputs_embeds=inputs_embeds, attention_mask=enc["attention_mask"],
                        token_type_ids=enc["token_type_ids"]).last_hidden_state[0]
        return hidden[1:-1].mean(0), enc["input_ids"]

    with torch.no_grad():
        anchor, _ = content_mean(text_anchor)
    ids = tokenizer(text_target, return_tensors="pt")["input_ids"]
    word = hf.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    F, _ = content_mean(text_target, inputs_embeds=word)
    torch.nn.functional.cosine_similarity(F, anchor, dim=0).backward()
    n = ids.shape[1]
    E = word.detach()[0] + hf.embeddings.position_embeddings.weight[:n].detach()
    raw = torch.relu(E * word.grad[0]).sum(-1)[1:-1].numpy()
    return (raw - raw.min()) / (raw.max() - raw.min())


def test_saliency_matches_a_pytorch_autograd_twin_on_minilm(minilm, minilm_dir):
    for a, b in PAIRS:
        result = bti.explain_pair(minilm, a, b)
        for target, anchor, ours in ((a, b, result.token_saliency_a),
                                     (b, a, result.token_saliency_b)):
            twin = _torch_saliency(minilm_dir, target, anchor)
            err = float(np.abs(ours[1:-1] - twin).max())
            print(f"BTI saliency vs torch twin: max abs diff {err:.2e}")
            assert err <= 1e-5
            assert ours[0] == 0 and ours[-1] == 0  # specials are not scored


def test_words_aggregate_pieces_with_max_saliency_and_mean_latent(minilm):
    enc = minilm.tokenizer.encode("unbelievably tokenization")
    assert enc.words == ["unbelievably", "tokenization"]
    pieces = enc.tokens[1:-1]
    assert len(pieces) > 2  # several pieces per word
    saliency = np.arange(len(enc), dtype=np.float32)
    hidden = np.arange(len(enc) * 2, dtype=np.float32).reshape(-1, 2)
    word_sal, latents = bti.words_from_tokens(enc, saliency, hidden)
    for w in range(2):
        rows = np.flatnonzero(enc.word_ids == w)
        assert word_sal[w] == saliency[rows].max()
        np.testing.assert_allclose(latents[w], hidden[rows].mean(0))
    assert "".join(p.replace("##", "") for p in pieces) == "unbelievablytokenization"


def test_meanshift_keeps_the_top_clusters():
    # Three clusters of five scores (scikit-learn's default bandwidth, quantile 0.3, is 0.0024
    # here: it joins each cluster and separates the clusters, no point on a boundary).
    offsets = np.array([0, 0.0011, 0.0023, 0.0032, 0.0041])
    high, mid, low = (base + offsets for base in (0.9, 0.5, 0.1))
    scores = np.concatenate([high, low, mid])
    expected_1 = np.r_[np.ones(5), np.zeros(10)].astype(bool)
    expected_2 = np.r_[np.ones(5), np.zeros(5), np.ones(5)].astype(bool)
    for backend in ("numpy", "sklearn"):
        np.testing.assert_array_equal(bti.select_top_pairs(scores, 1, backend), expected_1)
        np.testing.assert_array_equal(bti.select_top_pairs(scores, 2, backend), expected_2)


def test_numpy_meanshift_selects_exactly_what_sklearn_meanshift_selects():
    rng = np.random.default_rng(0)
    for case in range(24):
        n = int(rng.integers(3, 30))
        scores = [rng.random(n), rng.random(n) ** 3, np.round(rng.random(n), 2)][case % 3]
        for top_k in (1, 2):
            np.testing.assert_array_equal(bti.select_top_pairs(scores, top_k, "numpy"),
                                          bti.select_top_pairs(scores, top_k, "sklearn"))
    assert bti.select_top_pairs(np.array([0.3, 0.3, 0.3])).all()  # < 2 distinct values


def test_matching_is_a_union_of_both_directions_with_ties_to_the_later_index():
    assert bti.last_argmax(np.array([0.2, 0.9, 0.9, 0.1])) == 2
    latents_a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    latents_b = np.array([[1.0, 0.1], [0.1, 1.0]])
    pairs, cos = bti.match_words(latents_a, latents_b)
    assert pairs == [(0, 0), (1, 1), (2, 0)] or pairs == [(0, 0), (1, 1), (2, 1)]
    assert cos.shape == (3, 2)


def test_pair_score_is_cosine_times_both_saliencies():
    # [BTI] Fig. 3(a): gloves-gloves c = 0.98, s = 0.81, 0.31 -> U = 0.25.
    assert round(0.98 * 0.81 * 0.31, 2) == 0.25
    class Enc:  # a minimal stand-in for two one-word texts
        def __init__(self, word):
            self.words, self.word_ids, self.tokens = [word], np.array([-1, 0, -1]), ["[CLS]", word, "[SEP]"]
    hidden_a = np.array([[0, 0], [1.0, 0.0], [0, 0]])
    hidden_b = np.array([[0, 0], [0.98, np.sqrt(1 - 0.98**2)], [0, 0]])
    result = bti.assemble("bti", "toy", Enc("gloves"), Enc("gloves"), np.array([0, 0.81, 0]),
                          np.array([0, 0.31, 0]), hidden_a, hidden_b, 0.9, top_k=2)
    assert result.word_pairs[0]["score"] == pytest.approx(0.98 * 0.81 * 0.31, rel=1e-9)


def test_minmax_degenerate_inputs():
    np.testing.assert_array_equal(bti.minmax(np.array([0.0, 2.0, 1.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(bti.minmax(np.array([0.3, 0.3])), [1.0, 1.0])
    np.testing.assert_array_equal(bti.minmax(np.array([0.0, 0.0])), [0.0, 0.0])


def test_integrated_gradients_are_complete(minilm):
    # d f(alpha E) / d alpha oscillates strongly for alpha in ~[0.03, 0.2] (the LayerNorm input
    # is then dominated by the segment embedding): 64 steps of any fixed rule miss it by
    # 10-30 % on this pair (README), 512 midpoint steps are within 1 %.
    _, batch, content = _single(minilm, "a man plays the guitar on a stage")
    params, config = minilm.params, minilm.config
    E, _, _ = bti.bti_features(params, batch.ids, batch.mask, content, config=config)
    _, batch_b, content_b = _single(minilm, "someone makes music")
    _, anchor, _ = bti.bti_features(params, batch_b.ids, batch_b.mask, content_b, config=config)
    g, _ = bti.bti_gradients(params, E, batch.mask, content, anchor, config=config, ig_steps=512,
                             ig_rule="midpoint")

    def score(e):
        segment = params["embeddings"]["token_type"][0]
        F, _ = bti._features_from_sum(params, config, e + segment, batch.mask, content)
        return float(bti._cosine(anchor[0], F[0]))

    total, gap = float((g * E).sum()), score(E) - score(jnp.zeros_like(E))
    print(f"IG sum {total:.5f} vs f(x) - f(baseline) {gap:.5f}")
    assert abs(total - gap) <= 0.01 * abs(gap)


def _stsb_pairs(n: int) -> list[tuple[str, str]]:
    path = DATA / "stsb_en" / "test.tsv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [(r["sentence1"], r["sentence2"]) for r in rows]


def test_fully_randomised_minilm_changes_bti_explanations(minilm):
    rows = randomisation(minilm, _stsb_pairs(20), method="bti", cumulative=False)
    print(rows)
    assert rows[-1]["spearman"] < 0.5


def test_every_variant_runs_and_returns_word_pairs(minilm):
    a, b = PAIRS[0]
    for method in bti.METHODS:
        result = bti.explain_pair(minilm, a, b, method=method)
        assert result.word_pairs and len(result.word_saliency_a) == len(result.words_a)
    baseline = bti.tfidf_pairs(minilm, a, b, corpus=[p for pair in PAIRS for p in pair])
    assert baseline.word_pairs


def test_cli_bti_json_has_word_pairs(capsys, weights_dir):
    assert main(["explain", "--method", "bti", "--format", "json", "--weights-dir",
                 str(weights_dir), "A man is playing a guitar.", "A person plays music."]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "bti" and out["word_pairs"]
    assert {"word_a", "word_b", "score"} <= set(out["word_pairs"][0])
    for pair in out["word_pairs"]:  # the word indices name the same words (repeats stay apart)
        assert (out["words_a"][pair["a"]], out["words_b"][pair["b"]]) == (pair["word_a"], pair["word_b"])
    assert out["words_a"][-1] == "." and out["tokens_a"][0] == "[CLS]"


def test_bti_rejects_text_without_content(minilm):
    with pytest.raises(jaxsim.InputTextError):
        bti.explain_pair(minilm, " ", "fine")
