"""Sequence packing: several texts per row, each attending only to itself, equal to unpacked."""

from __future__ import annotations

import numpy as np
import pytest

from jaxsim.model import PACK_ROW_LENGTH
from jaxsim.text.packing import best_fit_rows, pack_rows

ATOL = 1e-5

# Lengths that fill rows of 64 only if packed across sentences, plus ones above 64 (unpacked).
_TEXTS = [
    "A man is playing a guitar.",
    "A person plays an instrument on a small stage in front of a quiet crowd of friends.",
    "Dogs run.",
    "The quick brown fox jumps over the lazy dog while small birds sing in the green trees "
    "near an old river, and the farmer watches from the hill as the sun sets slowly behind "
    "the mountains far away in the west, where the long road ends at a village that few "
    "people ever visit, because the bridge across the river was washed away by the spring "
    "floods many years ago.",
    "Two children are laughing.",
    "Stocks fell sharply on Monday after the central bank raised interest rates again.",
    "Hi",
    "A woman slices an onion in the kitchen.",
    "Nothing.",
    "The cat sleeps on the warm windowsill all afternoon.",
]


def test_best_fit_rows_places_every_text_once_within_row_and_segment_limits():
    lengths = [30, 5, 40, 20, 3, 64, 12, 9, 3, 3, 3]
    rows = best_fit_rows(lengths, 64, max_segments=3)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert sum(lengths[i] for i in row) <= 64 and len(row) <= 3
    # Best-fit decreasing by hand: 64 | 40+20+3 | 30+12+9 | 5+3+3 | 3
    assert [sorted(lengths[i] for i in row) for row in rows] == [
        [64], [3, 20, 40], [9, 12, 30], [3, 3, 5], [3]]
    with pytest.raises(ValueError, match="longer than row_length"):
        best_fit_rows([65], 64, 4)


def test_pack_rows_restarts_positions_and_numbers_segments(minilm):
    encoded = minilm.encode(["a b", "c d e", "f"])
    batch, placements = pack_rows(encoded, [[1, 0], [2]], row_length=12, num_rows=3)
    n0, n1, n2 = (len(e) for e in encoded)
    assert batch.ids.shape == (3, 12)
    np.testing.assert_array_equal(batch.segments[0], [1] * n1 + [2] * n0 + [0] * (12 - n1 - n0))
    np.testing.assert_array_equal(batch.positions[0, :n1 + n0], [*range(n1), *range(n0)])
    np.testing.assert_array_equal(batch.ids[0, n1:n1 + n0], encoded[0].ids)
    assert (batch.segments[2] == 0).all()  # the filler row is all padding
    assert placements == [(1, 0, 1), (0, 0, 2), (2, 1, 1)]


@pytest.mark.parametrize("fixture", ["minilm", "tiny_bert", "tiny_gpt_neo"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "qkv"])
def test_packed_embed_equals_bucket_padded_embed(request, fixture, pooling):
    model = request.getfixturevalue(fixture)
    if fixture == "tiny_gpt_neo" and pooling == "cls":
        pytest.skip("GPT-Neo has no [CLS]; its first token is a word")
    model = model.with_pooling(pooling) if pooling != model.pooling else model
    lengths = [len(e) for e in model.encode(_TEXTS)]
    assert max(lengths) > PACK_ROW_LENGTH > sorted(lengths)[-2]  # one text takes the bucket path
    if fixture == "tiny_gpt_neo":
        assert max(lengths[:3]) > model.config.window_size  # local attention inside packed rows
    packed = model.embed(_TEXTS, batch_size=8, normalize=False)  # 2 rows of 64 per batch
    padded = model.embed(_TEXTS, batch_size=8, normalize=False, packing=False)
    diff = float(np.abs(packed - padded).max())
    print(f"\n{fixture} {pooling}: max |packed - padded| = {diff:.2e}")
    assert diff <= ATOL * max(1.0, float(np.abs(padded).max()))
    assert np.abs(padded).min(axis=1).max() > 0  # no text got an empty (all-zero) embedding
