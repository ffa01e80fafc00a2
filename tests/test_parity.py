"""Parity with Hugging Face PyTorch: the JAX encoders must compute what ``transformers`` computes.

Every comparison is over real (non-pad) tokens, in float32, at atol 1e-5; the measured maximum
absolute difference is printed (``pytest -s``) and asserted.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import jaxsim
from jaxsim.models import PLAIN_OPS
from jaxsim.models.heads import classify
from jaxsim.text import TruncationWarning, pad_batch

ATOL = 1e-5

SENTENCES = [
    "A man is playing a guitar.",
    "The quick brown fox jumps over the lazy dog near the riverbank, unbelievably fast.",
    "Hi!",
]
PAIRS = [
    ("A cat sits on the mat.", "It is sleeping!"),
    ("Touchscreen-compatible gloves keep your hands warm in winter.", "Gloves."),
]
# GPT-Neo's local layers look back 8 tokens in the tiny model: these run well past the window.
LONG_SENTENCES = [
    "the old lighthouse keeper climbed the winding stairs every night to light the lamp "
    "that guided fishing boats safely past the rocks",
    "rain fell softly on the quiet village while children played cards by the warm fire "
    "and told long stories",
]


@pytest.fixture(scope="module")
def hf_minilm(minilm_dir):
    return _hf(minilm_dir)


@pytest.fixture(scope="module")
def tiny_bert_classifier(tiny_bert_classifier_dir, weights_dir):
    return jaxsim.load_model(tiny_bert_classifier_dir, weights_dir=weights_dir)


def _hf(path, cls=transformers.AutoModel, **kwargs):
    return cls.from_pretrained(str(path), **kwargs).eval()


@functools.partial(jax.jit, static_argnames=("config", "encoder"))
def _embed_and_encode(params, ids, type_ids, mask, *, config, encoder):
    x = encoder.embed(params, config, PLAIN_OPS, ids, type_ids)
    return x, encoder.encode_embeddings(params, config, PLAIN_OPS, x, mask)


def _jax_forward(model, batch):
    """(embedding output, last hidden state) as numpy, through ``model.encoder``'s public
    functions (jitted: op-by-op dispatch is several times slower on CPU)."""
    x, hidden = _embed_and_encode(
        model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids),
        jnp.asarray(batch.mask), config=model.config, encoder=model.encoder,
    )
    return np.asarray(x), np.asarray(hidden)


def _torch_forward(hf_model, batch, token_types: bool = True):
    inputs = {
        "input_ids": torch.from_numpy(batch.ids).long(),
        "attention_mask": torch.from_numpy(batch.mask).long(),
    }
    if token_types:
        inputs["token_type_ids"] = torch.from_numpy(batch.type_ids).long()
    with torch.inference_mode():
        return hf_model(**inputs, output_hidden_states=True)


def _max_diff(ours, theirs, mask) -> float:
    return float(np.abs(np.asarray(ours) - np.asarray(theirs))[mask].max())


def _padded(model, encoded):
    """Pad to the longest text: one row without padding, the others padded (one compile)."""
    batch = pad_batch(encoded, max(len(e) for e in encoded), pad_id=model.tokenizer.pad_token_id)
    assert batch.mask.all(1).any() and not batch.mask.all(), "need padded and unpadded rows"
    return batch


def test_minilm_tokenizer_ids_match_transformers_tokenizer(minilm, minilm_dir):
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    for text in SENTENCES:
        ours = minilm.tokenizer.encode(text)
        theirs = hf_tok(text)
        assert ours.ids.tolist() == theirs["input_ids"]
        assert ours.type_ids.tolist() == theirs["token_type_ids"]
    for a, b in PAIRS:
        ours, _ = minilm.tokenizer.encode_pair(a, b)
        theirs = hf_tok(a, b)
        assert ours.ids.tolist() == theirs["input_ids"]
        assert ours.type_ids.tolist() == theirs["token_type_ids"]


def test_minilm_last_hidden_state_matches_transformers_on_padded_batch(minilm, hf_minilm):
    batch = _padded(minilm, minilm.encode(SENTENCES))
    x, hidden = _jax_forward(minilm, batch)
    out = _torch_forward(hf_minilm, batch)
    emb_diff = _max_diff(x, out.hidden_states[0], batch.mask)
    diff = _max_diff(hidden, out.last_hidden_state, batch.mask)
    print(f"\nMiniLM padded batch: embedding output {emb_diff:.2e}, last hidden {diff:.2e}")
    assert emb_diff <= ATOL
    assert diff <= ATOL


def test_minilm_embed_matches_sentence_transformers_mean_pooling_and_l2_norm(
    minilm, minilm_dir, hf_minilm
):
    # Reference: the sentence-transformers pipeline of all-MiniLM-L6-v2 written out in torch
    # (tokenise with truncation at max_seq_length=256, masked mean over tokens, L2 normalise).
    long_text = " ".join(["word"] * 300)
    texts = SENTENCES[:2] + [long_text]
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    inputs = hf_tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = hf_minilm(**inputs).last_hidden_state
    weights = inputs["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    expected = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()

    with pytest.warns(TruncationWarning):
        ours = minilm.embed(texts, batch_size=len(texts))
    diff = float(np.abs(ours - expected).max())
    print(f"\nMiniLM sentence embedding (incl. a truncated text): {diff:.2e}")
    assert ours.shape == (len(texts), 384)
    assert diff <= ATOL
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_tiny_bert_matches_transformers_on_padded_batch_of_sentences_and_pairs(
    tiny_bert, tiny_bert_dir
):
    hf_model = _hf(tiny_bert_dir)
    pairs = [tiny_bert.tokenizer.encode_pair(a, b)[0] for a, b in PAIRS]
    encoded = tiny_bert.encode(SENTENCES) + pairs
    batch = _padded(tiny_bert, encoded)
    assert (batch.type_ids == 1).any(), "the pairs must exercise the token-type embedding"
    x, hidden = _jax_forward(tiny_bert, batch)
    out = _torch_forward(hf_model, batch)
    emb_diff = _max_diff(x, out.hidden_states[0], batch.mask)
    diff = _max_diff(hidden, out.last_hidden_state, batch.mask)
    print(f"\ntiny BERT sentences + pairs: embedding output {emb_diff:.2e}, last hidden {diff:.2e}")
    assert emb_diff <= ATOL
    assert diff <= ATOL


def test_tiny_bert_classifier_logits_match_transformers_on_sentence_pairs(
    tiny_bert_classifier, tiny_bert_classifier_dir
):
    model = tiny_bert_classifier
    assert model.config.num_labels == 3
    hf_model = _hf(tiny_bert_classifier_dir, transformers.AutoModelForSequenceClassification)
    encoded = [model.tokenizer.encode_pair(a, b)[0] for a, b in PAIRS]
    batch = _padded(model, encoded)
    _, hidden = _jax_forward(model, batch)
    logits = np.asarray(classify(model.params["head"], jnp.asarray(hidden), PLAIN_OPS))
    out = _torch_forward(hf_model, batch)
    hidden_diff = _max_diff(hidden, out.hidden_states[-1], batch.mask)
    logit_diff = float(np.abs(logits - out.logits.numpy()).max())
    print(f"\ntiny BERT classifier: last hidden {hidden_diff:.2e}, logits {logit_diff:.2e}")
    assert logits.shape == (len(PAIRS), 3)
    assert hidden_diff <= ATOL
    assert logit_diff <= ATOL


def test_tiny_gpt_neo_matches_transformers_across_local_window(tiny_gpt_neo, tiny_gpt_neo_dir):
    model = tiny_gpt_neo
    assert "local" in model.config.attention_layers and "global" in model.config.attention_layers
    assert model.config.window_size == 8
    # HF GPT-Neo has no SDPA kernel; eager is its only attention implementation.
    hf_model = _hf(tiny_gpt_neo_dir, attn_implementation="eager")
    encoded = model.encode(LONG_SENTENCES)
    assert min(len(e) for e in encoded) >= 20
    batch = _padded(model, encoded)
    x, hidden = _jax_forward(model, batch)
    out = _torch_forward(hf_model, batch, token_types=False)
    emb_diff = _max_diff(x, out.hidden_states[0], batch.mask)
    diff = _max_diff(hidden, out.last_hidden_state, batch.mask)
    print(f"\ntiny GPT-Neo ({batch.mask.sum(1).tolist()} tokens, window 8): "
          f"embedding output {emb_diff:.2e}, last hidden {diff:.2e}")
    assert emb_diff <= ATOL
    assert diff <= ATOL


def test_tiny_gpt_neo_local_window_changes_outputs_only_beyond_the_window(tiny_gpt_neo):
    # Guards the parity test above: it only proves the window is right if the window matters.
    model = tiny_gpt_neo
    batch = _padded(model, model.encode(LONG_SENTENCES))
    all_global = dataclasses.replace(
        model, config=dataclasses.replace(
            model.config, attention_layers=("global",) * model.config.num_layers
        ),
    )
    _, local = _jax_forward(model, batch)
    _, glob = _jax_forward(all_global, batch)
    window = model.config.window_size
    np.testing.assert_allclose(local[:, :window], glob[:, :window], atol=1e-6)
    assert _max_diff(local[:, window:], glob[:, window:], batch.mask[:, window:]) > 1e-2
