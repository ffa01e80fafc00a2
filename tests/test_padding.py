"""Padding never changes outputs: batched + padded == one by one, for every length bucket."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim.models import PLAIN_OPS
from jaxsim.models.pooling import mean_pool
from jaxsim.text import BUCKETS, batches_by_bucket, bucket_length, pad_batch
from tests import tiny_models

ATOL = 1e-5

# Words that are one WordPiece each in the uncased BERT vocabulary (checked in _text_of_length).
_WORDS = ("the quick brown fox jumps over a lazy dog while small birds sing in green trees "
          "near an old river").split()


def _text_of_length(tokenizer, n: int, offset: int = 0) -> str:
    """A text of exactly ``n`` tokens, [CLS] and [SEP] included."""
    words = itertools.islice(itertools.cycle(_WORDS), offset, offset + n - 2)
    text = " ".join(words)
    assert len(tokenizer.encode(text)) == n
    return text


@pytest.fixture(scope="module")
def tiny_bert_512(tmp_path_factory, weights_dir):
    # all-MiniLM-L6-v2 truncates at 256 tokens (sentence-transformers' max_seq_length), so the
    # 512 bucket is checked on a tiny random BERT with 512 positions.
    path = tiny_models.build_bert(tmp_path_factory.mktemp("tiny_bert_512"), max_positions=512)
    return jaxsim.load_model(path, weights_dir=weights_dir)


def test_bucket_length_is_the_smallest_bucket_or_multiple_of_512_that_fits():
    for n in range(1, 2100):
        candidates = [b for b in BUCKETS if b >= n] or [512 * -(-n // 512)]
        assert bucket_length(n) == min(candidates), n


def test_bucket_length_caps_at_max_length_only_when_the_text_fits():
    assert bucket_length(200, max_length=256) == 256
    assert bucket_length(130, max_length=200) == 200  # the bucket 256 would exceed the model
    assert bucket_length(200, max_length=200) == 200
    assert bucket_length(10, max_length=128) == 16
    assert bucket_length(300, max_length=256) == 512  # longer than the model: not capped
    assert bucket_length(513) == 1024


def test_batches_by_bucket_yields_every_text_once_with_bucketed_static_shapes(minilm):
    lengths = [3, 40, 17, 5, 120, 16, 4]
    encoded = [minilm.tokenizer.encode(_text_of_length(minilm.tokenizer, n)) for n in lengths]
    seen = []
    for idx, batch in batches_by_bucket(encoded, batch_size=3, max_length=256):
        longest = max(lengths[i] for i in idx)
        assert batch.ids.shape == batch.mask.shape == (3, bucket_length(longest, 256))
        for row, i in enumerate(idx):
            assert batch.mask[row].sum() == lengths[i]
            np.testing.assert_array_equal(batch.ids[row, : lengths[i]], encoded[i].ids)
        assert not batch.mask[len(idx):].any()  # filler rows are all padding
        seen.extend(idx)
    assert sorted(seen) == list(range(len(lengths)))


@pytest.mark.parametrize("bucket", BUCKETS)
def test_embed_of_mixed_length_batch_equals_embedding_each_text_alone(bucket, minilm, request):
    fits = bucket <= minilm.tokenizer.max_length
    model = minilm if fits else request.getfixturevalue("tiny_bert_512")
    assert bucket <= model.tokenizer.max_length
    previous = max([b for b in BUCKETS if b < bucket], default=0)
    # One text fills the bucket exactly, one just needs it, one is short and heavily padded.
    lengths = [(previous + bucket) // 2 + 1, 3, bucket]
    texts = [_text_of_length(model.tokenizer, n, offset=i) for i, n in enumerate(lengths)]
    batched = model.embed(texts, batch_size=3, normalize=False)
    # Alone = no other text in the batch. The same batch size keeps one compiled shape per
    # bucket; the short text alone lands in bucket 16, so its padding changes from 16 to bucket.
    alone = np.stack([model.embed([t], batch_size=3, normalize=False)[0] for t in texts])
    diff = float(np.abs(batched - alone).max())
    print(f"\n{model.name} bucket {bucket} {lengths}: batched vs alone {diff:.2e}")
    assert np.isfinite(batched).all()
    assert diff <= ATOL


def test_embed_with_more_texts_than_batch_size_equals_one_by_one(minilm):
    # Two batches of 3, the second topped up with an all-padding row (shapes as in bucket 16).
    texts = ["a cat", "the dog barks at night", "hello", "birds sing in green trees", "fox"]
    batched = minilm.embed(texts, batch_size=3, normalize=False)
    alone = np.stack([minilm.embed([t], batch_size=1, normalize=False)[0] for t in texts])
    np.testing.assert_allclose(batched, alone, atol=ATOL)


@functools.partial(jax.jit, static_argnames=("config", "encoder"))
def _encode(params, ids, type_ids, mask, *, config, encoder):
    x = encoder.embed(params, config, PLAIN_OPS, ids, type_ids)
    return encoder.encode_embeddings_with_attention(params, config, PLAIN_OPS, x, mask)


def _hidden(model, batch):
    """(last hidden f32[B, n, d], per-layer attention probabilities f32[B, H, n, n])."""
    return _encode(model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids),
                   jnp.asarray(batch.mask), config=model.config, encoder=model.encoder)


@pytest.mark.parametrize(
    ("model_name", "n", "buckets"),
    # MiniLM has 512 positions, so even the largest bucket fits (every bucket is covered by the
    # embed test above; here the smallest and the largest padding). The tiny GPT-Neo has 128
    # positions and its 21 tokens run past its local window of 8.
    [("minilm", 12, (16, 512)), ("tiny_gpt_neo", 21, (32, 128))],
)
def test_padding_to_a_bigger_bucket_keeps_real_token_outputs(model_name, n, buckets, request):
    model = request.getfixturevalue(model_name)
    assert max(buckets) <= model.config.max_position_embeddings
    encoded = [model.tokenizer.encode(_text_of_length(model.tokenizer, n))]
    reference, _ = _hidden(model, pad_batch(encoded, n))  # no padding at all
    ref_pooled = mean_pool(reference, jnp.ones((1, n), bool))
    for length in buckets:
        batch = pad_batch(encoded, length, pad_id=model.tokenizer.pad_token_id)
        hidden, _ = _hidden(model, batch)
        diff = float(jnp.abs(hidden[:, :n] - reference).max())
        pooled_diff = float(jnp.abs(mean_pool(hidden, jnp.asarray(batch.mask)) - ref_pooled).max())
        print(f"\n{model.name} {n} tokens padded to {length}: hidden {diff:.2e}, "
              f"mean-pooled {pooled_diff:.2e}")
        assert diff <= ATOL
        assert pooled_diff <= ATOL


@pytest.mark.parametrize(("model_name", "length"), [("minilm", 16), ("tiny_gpt_neo", 32)])
def test_padded_keys_get_exactly_zero_attention_probability(model_name, length, request):
    model = request.getfixturevalue(model_name)
    encoded = [model.tokenizer.encode(_text_of_length(model.tokenizer, 9))]
    n = len(encoded[0])
    batch = pad_batch(encoded, length, pad_id=model.tokenizer.pad_token_id)
    _, probs_per_layer = _hidden(model, batch)
    assert len(probs_per_layer) == model.config.num_layers
    for probs in probs_per_layer:  # f32[B, H, n_query, n_key]
        real_queries = np.asarray(probs[0, :, :n])
        assert (real_queries[..., n:] == 0.0).all()
        assert (real_queries[..., :n] > 0.0).any(axis=-1).all()
        np.testing.assert_allclose(real_queries.sum(-1), 1.0, atol=1e-5)
