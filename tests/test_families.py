"""Issue #16's encoder families against Hugging Face PyTorch: RoBERTa, XLM-RoBERTa, DistilBERT,
MPNet and ModernBERT (as shipped: no biases; and with every bias switched on).

Each tiny random model is built with ``transformers``, saved as safetensors, loaded by jaxsim
from its folder and compared over real tokens at atol 1e-5 (the measured maximum absolute
difference is printed with ``pytest -s``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import jaxsim
from jaxsim.errors import UnsupportedModelError
from jaxsim.models import PLAIN_OPS
from jaxsim.models.config import config_from_hf
from jaxsim.models.mpnet import relative_position_buckets
from jaxsim.text import pad_batch
from tests import tiny_models

ATOL = 1e-5
SENTENCES = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog near the riverbank, unbelievably fast.",
    "Hi!",
]
# Longer than the tiny ModernBERT's local window (|i - j| <= 4) many times over.
LONG_SENTENCES = [
    "the old lighthouse keeper climbed the winding stairs every night to light the lamp "
    "that guided fishing boats safely past the rocks",
    "rain fell softly on the quiet village while children played cards by the warm fire "
    "and told long stories",
]
PAIRS = [
    ("A cat sits on the mat.", "It is sleeping!"),
    ("Touchscreen-compatible gloves keep your hands warm in winter.", "Gloves."),
    ("Hi!", "A dog sleeps."),
]

BUILDERS = {
    "roberta": functools.partial(tiny_models.build_roberta),
    "xlm-roberta": functools.partial(tiny_models.build_roberta, xlm=True),
    "distilbert": tiny_models.build_distilbert,
    "mpnet": tiny_models.build_mpnet,
    "modernbert": tiny_models.build_modernbert,
    "modernbert-biases": functools.partial(tiny_models.build_modernbert, biases=True),
}
FAMILIES = list(BUILDERS)
CLASSIFIER_FAMILIES = ["roberta", "xlm-roberta", "distilbert", "mpnet", "modernbert"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    """Built lazily, once per module: ``family_dirs(name, classifier=False)`` -> folder."""
    built: dict = {}

    def get(name: str, classifier: bool = False, **options):
        key = (name, classifier, tuple(sorted(options.items())))
        if key not in built:
            folder = tmp_path_factory.mktemp(f"tiny_{name}{'_cls' if classifier else ''}")
            built[key] = BUILDERS[name](folder, classifier=classifier, **options)
        return built[key]
    return get


@pytest.fixture(scope="module")
def family_models(family_dirs, weights_dir):
    loaded: dict = {}

    def get(name: str, classifier: bool = False, **options):
        key = (name, classifier, tuple(sorted(options.items())))
        if key not in loaded:
            path = family_dirs(name, classifier, **options)
            hf_cls = transformers.AutoModelForSequenceClassification if classifier else transformers.AutoModel
            # Eager attention: the softmax the BiLRP twin detaches (SDPA has none to patch).
            hf = hf_cls.from_pretrained(str(path), attn_implementation="eager").eval()
            loaded[key] = (jaxsim.load_model(path, weights_dir=weights_dir), hf)
        return loaded[key]
    return get


@functools.partial(jax.jit, static_argnames=("config",))
def _embed_and_encode(params, ids, type_ids, mask, *, config):
    enc = jaxsim.models.encoder_for(config)
    x = enc.embed(params, config, PLAIN_OPS, ids, type_ids)
    return x, enc.encode_embeddings(params, config, PLAIN_OPS, x, mask)


def _jax_forward(model, batch):
    x, hidden = _embed_and_encode(model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids),
                                  jnp.asarray(batch.mask), config=model.config)
    return np.asarray(x), np.asarray(hidden)


def _torch_forward(hf_model, batch):
    inputs = {"input_ids": torch.from_numpy(batch.ids).long(),
              "attention_mask": torch.from_numpy(batch.mask).long()}
    with torch.inference_mode():
        return hf_model(**inputs, output_hidden_states=True)


def _max_diff(ours, theirs, mask) -> float:
    return float(np.abs(np.asarray(ours) - np.asarray(theirs))[mask].max())


def _padded(model, encoded):
    batch = pad_batch(encoded, max(len(e) for e in encoded), pad_id=model.tokenizer.pad_token_id)
    assert batch.mask.all(1).any() and not batch.mask.all(), "need padded and unpadded rows"
    return batch


@pytest.mark.parametrize("name", FAMILIES)
def test_family_hidden_states_match_transformers_on_padded_batch(name, family_models):
    model, hf = family_models(name)
    assert model.config.arch == name.split("-biases")[0].replace("xlm-roberta", "roberta")
    encoded = model.encode(SENTENCES + LONG_SENTENCES)
    batch = _padded(model, encoded)
    x, hidden = _jax_forward(model, batch)
    out = _torch_forward(hf, batch)
    emb_diff = _max_diff(x, out.hidden_states[0], batch.mask)
    diff = _max_diff(hidden, out.last_hidden_state, batch.mask)
    print(f"\n{name} ({batch.mask.sum(1).tolist()} tokens): embedding output {emb_diff:.2e}, "
          f"last hidden {diff:.2e}")
    assert emb_diff <= ATOL
    assert diff <= ATOL


@pytest.mark.parametrize("name", FAMILIES)
def test_family_padded_batch_equals_one_by_one(name, family_models):
    model, _ = family_models(name)
    encoded = model.encode(SENTENCES + LONG_SENTENCES)
    batch = _padded(model, encoded)
    _, hidden = _jax_forward(model, batch)
    for i, enc in enumerate(encoded):
        _, alone = _jax_forward(model, pad_batch([enc], len(enc), pad_id=model.tokenizer.pad_token_id))
        np.testing.assert_allclose(hidden[i, : len(enc)], alone[0], atol=2e-6)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_pooled_embeddings_match_torch_mean_pooling_packed_and_padded(name, family_models):
    model, hf = family_models(name)
    texts = SENTENCES + LONG_SENTENCES
    encoded = model.encode(texts)
    batch = _padded(model, encoded)
    hidden = _torch_forward(hf, batch).last_hidden_state.numpy()
    weights = batch.mask[..., None].astype(np.float32)
    expected = (hidden * weights).sum(1) / weights.sum(1)
    assert model.pooling == "mean"
    for packing in (True, False):
        ours = model.embed(texts, batch_size=4, normalize=False, packing=packing)
        diff = float(np.abs(ours - expected).max())
        print(f"\n{name} pooled embeddings (packing={packing}): {diff:.2e}")
        assert diff <= ATOL


@pytest.mark.parametrize("name", CLASSIFIER_FAMILIES)
def test_family_classifier_logits_match_transformers_on_sentence_pairs(name, family_models):
    model, hf = family_models(name, classifier=True)
    assert model.config.num_labels == 3
    encoded = [model.tokenizer.encode_pair(a, b)[0] for a, b in PAIRS]
    batch = _padded(model, encoded)
    logits = np.asarray(jaxsim.models.pair_logits(
        model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids), jnp.asarray(batch.mask),
        config=model.config,
    ))
    expected = _torch_forward(hf, batch).logits.numpy()
    diff = float(np.abs(logits - expected).max())
    print(f"\n{name} classifier logits: {diff:.2e}")
    assert logits.shape == (len(PAIRS), 3)
    assert diff <= ATOL


def test_modernbert_mean_pooling_classifier_matches_transformers(family_models):
    model, hf = family_models("modernbert", classifier=True, classifier_pooling="mean")
    assert model.config.classifier_pooling == "mean"
    encoded = [model.tokenizer.encode_pair(a, b)[0] for a, b in PAIRS]
    batch = _padded(model, encoded)
    logits = np.asarray(jaxsim.models.pair_logits(
        model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids), jnp.asarray(batch.mask),
        config=model.config,
    ))
    diff = float(np.abs(logits - _torch_forward(hf, batch).logits.numpy()).max())
    print(f"\nmodernbert mean-pooling classifier logits: {diff:.2e}")
    assert diff <= ATOL


def test_modernbert_local_window_changes_outputs_only_beyond_the_window(family_models):
    # Guards the parity tests: they prove the window right only if the window matters.
    import dataclasses

    model, _ = family_models("modernbert")
    assert model.config.attention_layers == ("global", "local", "local", "global")
    batch = _padded(model, model.encode(LONG_SENTENCES))
    assert batch.mask.sum(1).min() > 4 * model.config.half_window
    wide = dataclasses.replace(model, config=dataclasses.replace(model.config, local_attention=1024))
    _, local = _jax_forward(model, batch)
    _, glob = _jax_forward(wide, batch)
    assert _max_diff(local, glob, batch.mask) > 1e-2


def test_mpnet_relative_position_buckets_equal_transformers():
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    n = 600
    offsets = torch.arange(n)[None, :] - torch.arange(n)[:, None]
    expected = MPNetEncoder.relative_position_bucket(offsets, num_buckets=32).numpy()
    np.testing.assert_array_equal(relative_position_buckets(n, 32), expected)


def test_roberta_positions_start_after_padding_idx(family_models):
    model, _ = family_models("roberta")
    assert model.config.position_offset == 2
    assert model.config.max_position_embeddings == 128  # 130 rows minus padding_idx + 1
    assert model.tokenizer.max_length == 128


# --- guardrails -----------------------------------------------------------------------------

def test_unsupported_model_type_names_the_field_and_every_family():
    with pytest.raises(UnsupportedModelError) as err:
        config_from_hf({"model_type": "llama", "hidden_size": 64})
    message = str(err.value)
    assert "model_type='llama'" in message
    for family in ("bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "modernbert", "gpt_neo"):
        assert repr(family) in message


@pytest.mark.parametrize(("name", "field", "value"), [
    ("roberta", "position_embedding_type", "relative_key"),
    ("xlm-roberta", "hidden_act", "relu"),
    ("distilbert", "activation", "relu"),
    ("mpnet", "is_decoder", True),
    ("modernbert", "classifier_pooling", "max"),
    ("modernbert", "layer_types", ["full_attention", "chunked_attention"]),
    ("modernbert", "rope_parameters", {"full_attention": {"rope_type": "yarn", "rope_theta": 1.0}}),
])
def test_unsupported_variant_names_the_field(name, field, value, family_dirs):
    import json

    hf = json.loads((family_dirs(name) / "config.json").read_text())
    hf[field] = value
    with pytest.raises(UnsupportedModelError, match=field.split("_")[0]):
        config_from_hf(hf)


def test_missing_and_unexpected_keys_are_listed_once_for_a_new_family(family_dirs):
    from jaxsim.convert.checkpoint import read_tensors
    from jaxsim.convert.keymap import convert_state_dict
    from jaxsim.convert.source import weight_files
    from jaxsim.errors import WeightsError
    from jaxsim.models.config import load_config

    folder = family_dirs("mpnet")
    state = read_tensors(weight_files(folder))
    del state["encoder.relative_attention_bias.weight"]
    state["encoder.layer.0.attention.attn.extra.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(WeightsError) as err:
        convert_state_dict(state, load_config(folder), "tiny mpnet")
    assert "relative_attention_bias" in str(err.value)
    assert "encoder.layer.0.attention.attn.extra.weight" in str(err.value)


# --- BiLRP on every family ------------------------------------------------------------------

BILRP_PAIR = ("A man is playing a guitar.", "A person plays an instrument.")
BILRP_LONG = (LONG_SENTENCES[0], "It is sleeping!")  # past ModernBERT's local window


def _rel_frobenius(actual, expected) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


@pytest.mark.parametrize("name", FAMILIES)
def test_family_bilrp_matches_torch_twin_of_the_rules(name, family_models):
    from jaxsim.explain import explain_pair
    from tests import torch_rules_twin

    model, hf = family_models(name)
    for a, b in (BILRP_PAIR, BILRP_LONG):
        r_a, phi_a = torch_rules_twin.relevance(hf, model.encode([a])[0].ids.tolist())
        r_b, phi_b = torch_rules_twin.relevance(hf, model.encode([b])[0].ids.tolist())
        twin = r_a.T @ r_b
        for mode in ("forward", "reverse"):
            ours = explain_pair(model, a, b, method="bilrp", mode=mode)
            err = _rel_frobenius(ours.relevance, twin)
            print(f"\n{name} BiLRP {mode} vs torch twin {twin.shape}: rel. Frobenius {err:.2e}")
            assert ours.relevance.shape == twin.shape
            assert err <= 1e-4
        assert ours.similarity == pytest.approx(float(phi_a @ phi_b), rel=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_bilrp_rules_matter(name, family_models):
    """Guards the twin test: BiLRP (rules) and H×P (plain gradients) must differ."""
    from jaxsim.explain import explain_pair

    model, _ = family_models(name)
    bilrp = explain_pair(model, *BILRP_PAIR, method="bilrp").relevance
    hxp = explain_pair(model, *BILRP_PAIR, method="hxp").relevance
    assert _rel_frobenius(hxp, bilrp) > 1e-2


def _conservation_error(model, a: str, b: str) -> float:
    from jaxsim.explain import explain_pair
    from jaxsim.models import pooled_embeddings

    result = explain_pair(model, a, b)
    batch = pad_batch(model.encode([a, b]), 64, pad_id=model.tokenizer.pad_token_id)
    phi = np.asarray(pooled_embeddings(model.params, None, *batch, config=model.config, pooling="mean"))
    y = float(phi[0] @ phi[1])
    err = abs(result.sum_relevance - y) / abs(y)
    print(f"\n{model.config.arch}: sum R = {result.sum_relevance:.10f}, y = {y:.10f}, rel {err:.1e}")
    return err


@pytest.mark.parametrize("name", ["roberta", "xlm-roberta", "distilbert", "mpnet"])
def test_family_bilrp_conserves_the_similarity_with_biases_zeroed(name, tmp_path):
    import dataclasses

    path = BUILDERS[name](tmp_path / name, no_bias=True)
    with jax.enable_x64(True):
        model = jaxsim.load_model(path, use_cache=False)
        model = dataclasses.replace(model, params=jax.tree.map(lambda p: jnp.asarray(p, jnp.float64),
                                                               model.params))
        for a, b in (BILRP_PAIR, BILRP_LONG):
            assert _conservation_error(model, a, b) <= 1e-9


def test_modernbert_bilrp_conserves_the_similarity_as_shipped(family_models):
    """No biases by default: conservation holds on the model as shipped, in float32."""
    model, _ = family_models("modernbert")
    assert not any(model.config.__getattribute__(f) for f in ("attention_bias", "mlp_bias", "norm_bias"))
    for a, b in (BILRP_PAIR, BILRP_LONG):
        assert _conservation_error(model, a, b) <= 1e-5


def test_modernbert_conservation_needs_the_gate_rule(family_models):
    """Without GATE, relevance also enters gelu's branch of the GeGLU and sum R drifts off y."""
    from jaxsim.explain import explain_pair
    from jaxsim.explain.rules import lrp_ops

    model, _ = family_models("modernbert")
    with_gate = explain_pair(model, *BILRP_PAIR)
    without = explain_pair(model, *BILRP_PAIR, ops=lrp_ops(gate=False))
    assert abs(without.sum_relevance - with_gate.similarity) / abs(with_gate.similarity) > 1e-3
    assert _rel_frobenius(without.relevance, with_gate.relevance) > 1e-3


def test_gate_rule_values_and_both_forms_backward():
    from jaxsim.explain import rules

    key_x, key_g, key_c = jax.random.split(jax.random.PRNGKey(0), 3)
    x, gate = jax.random.normal(key_x, (2, 5, 6)) * 2, jax.random.normal(key_g, (2, 5, 6))
    cotangent = jax.random.normal(key_c, x.shape)
    sg, cv = rules.lrp_ops(), rules.lrp_ops(form="custom_vjp")
    plain = PLAIN_OPS.gated_gelu(x, gate, False)
    np.testing.assert_allclose(jax.nn.gelu(x, approximate=False) * gate, plain, rtol=1e-6)
    for ops in (sg, cv):
        out, pullback = jax.vjp(lambda a, g, ops=ops: ops.gated_gelu(a, g, False), x, gate)
        np.testing.assert_allclose(out, plain, rtol=1e-6)
        d_x, d_gate = pullback(cotangent)
        np.testing.assert_array_equal(d_x, 0.0)  # the GELU branch is a constant gate
        np.testing.assert_allclose(d_gate, cotangent * jax.nn.gelu(x, approximate=False), rtol=1e-6)
    # Relevance through the linear branch conserves: sum(gate * d out / d gate) = sum(out).
    _, pullback = jax.vjp(lambda g: sg.gated_gelu(x, g, False), gate)
    np.testing.assert_allclose((pullback(jnp.ones_like(x))[0] * gate).sum(), plain.sum(), rtol=1e-5)


@pytest.mark.parametrize("name", CLASSIFIER_FAMILIES)
def test_first_order_attributions_run_on_every_family_classifier_head(name, family_models):
    """``explain.first_order`` reaches each family's own head through ``Encoder.classify``: its
    logits are the transformers logits, and LRP's token scores sum to the explained logit up
    to the biases' share (finite, not all zero)."""
    from jaxsim.explain.first_order import attribute

    model, hf = family_models(name, classifier=True)
    encoded = [model.tokenizer.encode_pair(a, b)[0] for a, b in PAIRS]
    batch = _padded(model, encoded)
    expected = _torch_forward(hf, batch).logits.numpy()
    for method in ("gi", "lrp"):
        out = attribute(model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids),
                        jnp.asarray(batch.mask), jnp.full((len(PAIRS),), -1, jnp.int32),
                        config=model.config, method=method)
        np.testing.assert_allclose(np.asarray(out.logits), expected, atol=ATOL)
        signed = np.asarray(out.signed)
        assert np.isfinite(signed).all() and np.abs(signed[batch.mask]).max() > 0
        np.testing.assert_array_equal(signed[~batch.mask], 0.0)


# --- words from SentencePiece (▁) and byte-level BPE (Ġ) pieces ------------------------------

@pytest.mark.parametrize("name", ["roberta", "xlm-roberta", "mpnet", "modernbert"])
def test_word_map_groups_pieces_into_words_for_every_tokenizer_kind(name, family_models):
    model, _ = family_models(name)
    text = "Touchscreen-compatible gloves keep your hands warm in winter."
    enc = model.encode([text])[0]
    assert enc.words == ["Touchscreen-compatible", "gloves", "keep", "your", "hands", "warm", "in",
                         "winter", "."]
    assert (enc.word_ids[enc.special] == -1).all()
    assert (enc.word_ids[~enc.special] >= 0).all()
    # Every word's pieces, joined without their space markers, spell the word (case-folded:
    # the WordPiece tokenizer lower-cases).
    for w, word in enumerate(enc.words):
        pieces = [enc.tokens[t] for t in np.flatnonzero(enc.word_ids == w)]
        joined = "".join(pieces).replace("Ġ", "").replace("▁", "").replace("##", "")
        assert joined.lower() == word.lower(), (name, word, pieces)
    assert np.all(np.diff(enc.word_ids[~enc.special]) >= 0)  # words in reading order


@pytest.mark.parametrize("name", ["roberta", "xlm-roberta", "modernbert"])
def test_pair_word_map_spans_both_texts(name, family_models):
    model, _ = family_models(name)
    enc, segment = model.tokenizer.encode_pair("A cat sits on the mat.", "It is sleeping!")
    assert enc.words == ["A", "cat", "sits", "on", "the", "mat", ".", "It", "is", "sleeping", "!"]
    assert set(enc.word_ids[segment == 0]) == set(range(7))
    assert set(enc.word_ids[segment == 1]) == set(range(7, 11))
    assert (enc.word_ids[segment < 0] == -1).all()


# --- sentence-transformers prompts ----------------------------------------------------------

@pytest.mark.parametrize("name", ["roberta", "xlm-roberta", "mpnet", "modernbert"])
def test_prompt_pieces_are_marked_and_belong_to_no_word(name, family_models):
    model, _ = family_models(name)
    text, prompt = "A man is playing a guitar.", "query: "
    plain = model.tokenizer.encode(text)
    ours = model.tokenizer.encode(text, prompt=prompt)
    assert ours.ids.tolist() == model.tokenizer.tokenizer.encode(prompt + text).ids
    assert ours.prompt == prompt and plain.prompt_tokens is None
    assert ours.words == plain.words
    marked = [ours.tokens[t] for t in np.flatnonzero(ours.prompt_tokens)]
    joined = "".join(marked).replace("Ġ", "").replace("▁", "").replace("##", "").lower()
    assert joined in ("query:", "query<unk>")  # the tiny WordPiece vocabulary has no ":"
    assert (ours.word_ids[ours.prompt_tokens] == -1).all()
    # The text's pieces (tokenised after the prompt, so not always as without it: ``ĠA`` vs ``A``)
    # map to the text's words, in order, each word spelt by its pieces.
    text_pieces = ~ours.prompt_tokens & ~ours.special
    assert set(ours.word_ids[text_pieces].tolist()) == set(range(len(ours.words)))
    assert np.all(np.diff(ours.word_ids[text_pieces]) >= 0)
    for w, word in enumerate(ours.words):
        pieces = [ours.tokens[t] for t in np.flatnonzero(ours.word_ids == w)]
        assert "".join(pieces).replace("Ġ", "").replace("▁", "").lower() == word.lower()
    batch = model.tokenizer.encode_for_embedding([text], prompt=prompt)[0]
    assert batch.ids.tolist() == ours.ids.tolist()
    assert batch.prompt_tokens.tolist() == ours.prompt_tokens.tolist()


def test_prompts_are_read_from_the_sentence_transformers_config(family_dirs, tmp_path):
    import json
    import shutil

    from jaxsim.convert.source import resolve
    from jaxsim.errors import OptionError

    folder = shutil.copytree(family_dirs("xlm-roberta"), tmp_path / "e5-like")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None}))
    source = resolve(folder)
    assert source.prompt("query") == "query: " and source.prompt("passage") == "passage: "
    assert source.prompt(None) == ""
    with pytest.raises(OptionError, match=r"\['passage', 'query'\]"):
        source.prompt("document")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "Represent this sentence for searching relevant passages: "},
         "default_prompt_name": "query"}))
    assert resolve(folder).prompt(None).startswith("Represent this sentence")
