"""Words of a text and the word-piece -> word map (METHODS.md §0), pair encoding, aggregation."""

from __future__ import annotations

import numpy as np
import pytest
import transformers

from jaxsim.text import aggregate, token_word_ids, word_spans


def _words(text: str) -> list[str]:
    return [text[s:e] for s, e in word_spans(text)]


def _assert_pieces_spell_their_words(encoded) -> None:
    """Independent check of the map: the pieces of word w, '##' removed, spell word w."""
    pieces: dict[int, str] = {}
    for token, w, special in zip(encoded.tokens, encoded.word_ids, encoded.special, strict=True):
        assert (w == -1) == bool(special), (token, w)
        if w >= 0:
            pieces[int(w)] = pieces.get(int(w), "") + token.removeprefix("##")
    assert sorted(pieces) == list(range(len(encoded.words)))  # every word has pieces
    for w, spelled in pieces.items():
        assert spelled == encoded.words[w].lower(), (w, spelled, encoded.words[w])
    assert (np.diff(encoded.word_ids[~encoded.special]) >= 0).all()  # words in reading order


def test_word_pieces_of_two_long_words_map_to_two_words(minilm):
    encoded = minilm.tokenizer.encode("unbelievably tokenization")
    assert encoded.words == ["unbelievably", "tokenization"]
    content = encoded.word_ids[~encoded.special]
    assert len(content) > 2  # both words are split into several pieces
    assert set(content.tolist()) == {0, 1}
    _assert_pieces_spell_their_words(encoded)


@pytest.mark.parametrize("word", ["T-shirts", "touchscreen-compatible"])
def test_internal_hyphen_keeps_one_word(minilm, word):
    encoded = minilm.tokenizer.encode(word)
    assert encoded.words == [word]
    assert len(encoded) > 3  # the tokenizer splits at the hyphen, the word map does not
    assert (encoded.word_ids[~encoded.special] == 0).all()
    _assert_pieces_spell_their_words(encoded)


def test_trailing_punctuation_is_its_own_word(minilm):
    encoded = minilm.tokenizer.encode("fabric.")
    assert encoded.words == ["fabric", "."]
    assert encoded.word_ids.tolist() == [-1, 0, 1, -1]
    _assert_pieces_spell_their_words(encoded)


def test_word_spans_split_leading_and_trailing_punctuation_only():
    assert _words("Soft fabric. T-shirts (touchscreen-compatible)!") == [
        "Soft", "fabric", ".", "T-shirts", "(", "touchscreen-compatible", ")", "!",
    ]
    assert _words("  don't   stop--now ") == ["don't", "stop--now"]
    assert _words("...") == [".", ".", "."]
    assert _words("") == []


def test_word_map_of_a_longer_sentence_spells_every_word(minilm):
    text = "Unbelievably, the T-shirts' touchscreen-compatible fabric (cotton) didn't shrink!"
    _assert_pieces_spell_their_words(minilm.tokenizer.encode(text))


def test_bpe_pieces_that_start_with_the_space_belong_to_the_next_word():
    # GPT-2-style offsets: " world" starts at the space before "world".
    spans = word_spans("hello world")
    ids = token_word_ids([(0, 5), (5, 11)], [False, False], spans)
    assert ids.tolist() == [0, 1]


def test_pair_encoding_has_segments_token_types_and_word_ids_over_both_texts(minilm, minilm_dir):
    a, b = "A cat sits on the mat.", "It is sleeping, unbelievably!"
    encoded, segment = minilm.tokenizer.encode_pair(a, b)
    n_a = len(minilm.tokenizer.encode(a)) - 2
    n_b = len(minilm.tokenizer.encode(b)) - 2
    assert len(encoded) == n_a + n_b + 3
    # [CLS] a [SEP] b [SEP]
    cls, sep = encoded.ids[0], encoded.ids[n_a + 1]
    assert encoded.tokens[0] == "[CLS]" and encoded.tokens[n_a + 1] == encoded.tokens[-1] == "[SEP]"
    assert encoded.ids[-1] == sep != cls
    assert encoded.type_ids.tolist() == [0] * (n_a + 2) + [1] * (n_b + 1)
    assert segment.tolist() == [-1] + [0] * n_a + [-1] + [1] * n_b + [-1]
    hf = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))(a, b)
    assert encoded.ids.tolist() == hf["input_ids"]
    assert encoded.type_ids.tolist() == hf["token_type_ids"]
    # Word ids index words_a + words_b.
    words_a, words_b = _words(a), _words(b)
    assert encoded.words == words_a + words_b
    assert set(encoded.word_ids[segment == 0].tolist()) == set(range(len(words_a)))
    assert set(encoded.word_ids[segment == 1].tolist()) == set(
        range(len(words_a), len(words_a) + len(words_b))
    )
    _assert_pieces_spell_their_words(encoded)


# tokens:      [CLS] un  ##bel  fox  [SEP]   -> words: "unbel", "fox"
_VALUES = np.array([[9.0, 9.0], [1.0, -2.0], [3.0, 4.0], [5.0, 6.0], [9.0, 9.0]])
_WORD_IDS = np.array([-1, 0, 0, 1, -1])


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [
        ("sum", [[4.0, 2.0], [5.0, 6.0]]),
        ("max", [[3.0, 4.0], [5.0, 6.0]]),
        ("mean", [[2.0, 1.0], [5.0, 6.0]]),
    ],
)
def test_aggregate_tokens_to_words_by_hand(reduce, expected):
    np.testing.assert_allclose(aggregate(_VALUES, _WORD_IDS, 2, reduce=reduce), expected)
    # Along another axis (e.g. the b side of a relevance matrix), and a word without pieces -> 0.
    out = aggregate(_VALUES.T, _WORD_IDS, 3, axis=1, reduce=reduce)
    np.testing.assert_allclose(out, np.vstack([expected, [[0.0, 0.0]]]).T)


def test_aggregate_max_keeps_negative_maxima():
    values = np.array([-3.0, -1.0, -2.0])
    np.testing.assert_allclose(aggregate(values, np.array([0, 0, 0]), 1, reduce="max"), [-1.0])


def test_aggregate_sum_conserves_relevance_of_a_pair_matrix():
    rng = np.random.default_rng(0)
    relevance = rng.standard_normal((5, 7))  # [n_a, n_b] tokens
    ids_a = np.array([-1, 0, 0, 1, -1])
    ids_b = np.array([-1, 0, 1, 1, 1, 2, -1])
    words = aggregate(aggregate(relevance, ids_a, 2, axis=0), ids_b, 3, axis=1)
    assert words.shape == (2, 3)
    np.testing.assert_allclose(words.sum(), relevance[1:4, 1:6].sum())
    np.testing.assert_allclose(words[0, 1], relevance[1:3, 2:5].sum())


def test_aggregate_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="sum, max or mean"):
        aggregate(_VALUES, _WORD_IDS, 2, reduce="median")


def test_batch_tokenisation_for_embedding_equals_per_text_encode_and_warns_on_truncation(minilm):
    from jaxsim.text import TruncationWarning

    texts = ["A man is playing a guitar.", "Dogs run!", "word " * 400]
    with pytest.warns(TruncationWarning, match="text 2 has more than"):
        batch = minilm.tokenizer.encode_for_embedding(texts)
    with pytest.warns(TruncationWarning):
        single = minilm.encode(texts)
    for b, s in zip(batch, single, strict=True):
        np.testing.assert_array_equal(b.ids, s.ids)
        np.testing.assert_array_equal(b.type_ids, s.type_ids)
        assert b.tokens == s.tokens and b.truncated == s.truncated
    assert len(batch[2]) == minilm.tokenizer.max_length
