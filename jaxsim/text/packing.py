"""Sequence packing: several short texts share one row, each attending only to itself.

Bucket padding computes every text at its bucket's length (a 17-token text costs 32 slots), about
1.5x the real tokens on sentence corpora. Packing lays texts end to end in rows of ``row_length``
tokens instead (best-fit decreasing), so the slots computed are close to the real tokens. Each
token carries a *segment* number (1, 2, ... within its row; 0 = padding) and its *position inside
its own text*; the encoder lets a token attend only to keys of the same segment and the pooling
averages per segment, so every text's embedding equals the unpacked one (up to float rounding:
the matrix products sum in another order).

Texts longer than ``row_length`` are not packed: the caller embeds them with bucket padding.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from jaxsim.errors import OptionError
from jaxsim.text.tokenizer import Encoded


class PackedBatch(NamedTuple):
    """``rows`` packed rows of ``length`` tokens holding up to ``max_segments`` texts each.

    ids, type_ids, positions: i32[R, L] (positions restart at 0 for every text);
    segments: i32[R, L], 1..S for the texts of a row in order, 0 for padding.
    """

    ids: np.ndarray
    type_ids: np.ndarray
    positions: np.ndarray
    segments: np.ndarray


class Placement(NamedTuple):
    """Where one text went: ``row`` of its batch and its ``segment`` number (1-based)."""

    text: int
    row: int
    segment: int


def best_fit_rows(
    lengths: Sequence[int], row_length: int, max_segments: int
) -> list[list[int]]:
    """Indices of the texts in each row, best-fit decreasing: longest text first, each into the
    open row with the least room that still fits it, else a new row. O(N log R) with ``bisect``.

    Every row holds at most ``row_length`` tokens and ``max_segments`` texts; every length must
    be ``<= row_length``. Deterministic: ties keep input order and the earlier row.
    """
    if any(n > row_length for n in lengths):
        raise OptionError(f"a text is longer than row_length={row_length}: embed it unpacked "
                          "(Model.embed(..., packing=False)) or raise row_length")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    open_rows: list[tuple[int, int]] = []  # (free tokens, row index), sorted; full rows leave it
    for i in order:
        n = int(lengths[i])
        k = bisect.bisect_left(open_rows, (n, -1))
        if k < len(open_rows):
            free, r = open_rows.pop(k)
        else:
            free, r = row_length, len(rows)
            rows.append([])
        rows[r].append(i)
        if len(rows[r]) < max_segments and free - n > 0:
            bisect.insort(open_rows, (free - n, r))
    return rows


def pack_rows(
    encoded: Sequence[Encoded], rows: Sequence[Sequence[int]], row_length: int,
    num_rows: int, pad_id: int = 0,
) -> tuple[PackedBatch, list[Placement]]:
    """Lay out ``rows`` (lists of indices into ``encoded``) as one ``PackedBatch`` of
    ``num_rows`` rows (extra rows are all padding, so the batch shape never changes)."""
    ids = np.full((num_rows, row_length), pad_id, np.int32)
    type_ids = np.zeros((num_rows, row_length), np.int32)
    positions = np.zeros((num_rows, row_length), np.int32)
    segments = np.zeros((num_rows, row_length), np.int32)
    placements = []
    for r, members in enumerate(rows):
        start = 0
        for s, i in enumerate(members, start=1):
            enc = encoded[i]
            stop = start + len(enc)
            ids[r, start:stop] = enc.ids
            type_ids[r, start:stop] = enc.type_ids
            positions[r, start:stop] = np.arange(len(enc))
            segments[r, start:stop] = s
            placements.append(Placement(i, r, s))
            start = stop
    return PackedBatch(ids, type_ids, positions, segments), placements


def packed_batches(
    encoded: Sequence[Encoded], rows_per_batch: int, row_length: int, max_segments: int,
    pad_id: int = 0,
) -> Iterator[tuple[PackedBatch, list[Placement]]]:
    """Pack every text of ``encoded`` (all ``<= row_length`` tokens) into batches of
    ``rows_per_batch`` rows; yields ``(batch, placements)``. One shape for every batch."""
    rows = best_fit_rows([len(e) for e in encoded], row_length, max_segments)
    for start in range(0, len(rows), rows_per_batch):
        yield pack_rows(encoded, rows[start:start + rows_per_batch], row_length, rows_per_batch, pad_id)
