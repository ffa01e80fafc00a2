"""Length buckets and padded batches: one compilation per (batch size, bucket).

Padding never changes outputs: padded keys are masked out of attention with ``finfo.min``
(probability exactly 0) and out of every pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxsim.text.tokenizer import Encoded

BUCKETS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)


class Batch(NamedTuple):
    """Padded token arrays: ids, type_ids i32[B, L]; mask bool[B, L] (True = real token)."""

    ids: np.ndarray
    type_ids: np.ndarray
    mask: np.ndarray


def bucket_length(n: int, max_length: int | None = None) -> int:
    """Smallest bucket >= n; beyond 512, the next multiple of 512; never above ``max_length``
    unless n itself is longer."""
    for b in BUCKETS:
        if b >= n:
            length = b
            break
    else:
        length = -(-n // 512) * 512
    if max_length is not None and n <= max_length:
        length = min(length, max_length)
    return length


def pad_batch(
    encoded: Sequence[Encoded], length: int, batch_size: int | None = None, pad_id: int = 0
) -> Batch:
    """Stack encodings into ``[batch_size, length]`` arrays (extra rows are all padding)."""
    rows = batch_size or len(encoded)
    ids = np.full((rows, length), pad_id, np.int32)
    type_ids = np.zeros((rows, length), np.int32)
    mask = np.zeros((rows, length), bool)
    for i, enc in enumerate(encoded):
        n = len(enc)
        ids[i, :n] = enc.ids
        type_ids[i, :n] = enc.type_ids
        mask[i, :n] = True
    return Batch(ids, type_ids, mask)


def batches_by_bucket(
    encoded: Sequence[Encoded], batch_size: int, max_length: int | None = None, pad_id: int = 0
):
    """Yield ``(indices, Batch)`` over ``encoded`` sorted by length, each batch padded to its
    bucket and to ``batch_size`` rows, so shapes repeat and nothing recompiles.

    The one partial batch (``len % batch_size`` texts) is the *shortest* one, so its filler rows
    cost the smallest bucket; every full batch then ends at or before where it would otherwise,
    so no batch needs a longer bucket than with the remainder last."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    stops = list(range(len(order), 0, -batch_size))[::-1]  # n=70, B=32: 6, 38, 70
    for start, stop in zip([0, *stops[:-1]], stops, strict=True):
        idx = order[start:stop]
        length = bucket_length(max(len(encoded[i]) for i in idx), max_length)
        yield idx, pad_batch([encoded[i] for i in idx], length, batch_size, pad_id)
