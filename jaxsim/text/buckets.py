"""Length buckets, padded batches and the one batching loop (``map_batches``).

Padding never changes outputs: padded keys are masked out of attention with ``finfo.min``
(probability exactly 0) and out of every pooling. Every explainer, the embedder and the corpus
runner go through ``map_batches``: sort by length -> cut into batches -> pad each to its bucket
-> compute (asynchronously dispatched) -> scatter each row back to its item. One compilation per
(rows, bucket).
"""

from __future__ import annotations

import bisect
import collections
import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxsim.errors import OptionError
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


def fine_length(n: int, max_length: int | None = None) -> int:
    """A finer length class than ``bucket_length`` for work that grows with n² (BiLRP's forward
    engine: n tangent passes over n positions): multiples of 4 up to 64 tokens, of 8 up to 128,
    of 16 up to 256, then the buckets. A 12-token text pads to 12 (not 16: 1.8x the work), a
    20-token text to 20 (not 32: 2.6x); more shapes compile, once each (the persistent compile
    cache keeps them across runs)."""
    for limit, step in ((64, 4), (128, 8), (256, 16)):
        if n <= limit:
            length = -(-max(n, 1) // step) * step
            break
    else:
        return bucket_length(n, max_length)
    if max_length is not None and n <= max_length:
        length = min(length, max_length)
    return length


#: Length-class policies of ``plan_batches`` / ``map_batches`` (``length_classes=``); a caller
#: may also pass its own ``(n, max_length) -> length`` (``adaptive_lengths``).
LENGTH_CLASSES: dict[str, Callable[[int, int | None], int]] = {"buckets": bucket_length, "fine": fine_length}
LengthClasses = str | Callable[[int, int | None], int]
#: Texts per batch: a number, or ``length class -> number`` (``plan_batches``).
BatchSize = int | Callable[[int], int]


def quadratic_work(length: int) -> float:
    """Work of one text padded to ``length``: n tangent passes over n positions."""
    return float(length * length)


def adaptive_lengths(
    lengths: Sequence[int], *, new_class_cost: float, known: Collection[int] = (),
    work: Callable[[int], float] = quadratic_work,
) -> dict[int, int]:
    """Length classes chosen for this request: ``{n: padded length}`` for every distinct n.

    Minimises ``sum over texts of work(class) + new_class_cost x (classes not in known)``: a new
    class costs one compilation (``new_class_cost`` in the units of ``work``: the compile time
    times the device's work rate), a ``known`` one (compiled by an earlier call) nothing. Dense
    lengths get a class each, the sparse tail shares a few; a fast device (compilation dear
    against the work) gets coarse classes; a known class longer than every text may serve them.
    Exact dynamic programme over the class ends (the distinct lengths and the known classes),
    O(ends²).
    """
    counts = collections.Counter(int(n) for n in lengths)
    if not counts:
        return {}
    ends = sorted(set(counts) | {k for k in known if k >= min(counts)})
    known = set(known)
    # texts[j]: how many texts have a length in (ends[j-1], ends[j]]
    texts = [0] * len(ends)
    for n, c in counts.items():
        texts[bisect.bisect_left(ends, n)] += c
    prefix = [0, *itertools.accumulate(texts)]
    best = [0.0] + [float("inf")] * len(ends)  # best[j]: cost of covering ends[:j]
    cut = [0] * (len(ends) + 1)
    for j in range(1, len(ends) + 1):
        per_text = work(ends[j - 1])
        fixed = 0.0 if ends[j - 1] in known else new_class_cost
        for i in range(j):
            n_texts = prefix[j] - prefix[i]
            cost = best[i] + (n_texts * per_text + fixed if n_texts else 0.0)
            if cost < best[j]:
                best[j], cut[j] = cost, i
    mapping: dict[int, int] = {}
    j = len(ends)
    while j > 0:
        i = cut[j]
        low = ends[i - 1] if i else 0
        mapping.update({n: ends[j - 1] for n in counts if low < n <= ends[j - 1]})
        j = i
    return mapping


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


class BatchPlan(NamedTuple):
    """One batch of a plan: ``indices`` of its items (one per real row, shortest first), the
    padded ``length`` (a bucket) and the number of ``rows`` (real rows + filler rows)."""

    indices: list[int]
    length: int
    rows: int


def plan_batches(
    lengths: Sequence[int], batch_size: BatchSize, max_length: int | None = None, *, fill: bool = True,
    multiple_of: int = 1, length_classes: LengthClasses = "buckets",
) -> list[BatchPlan]:
    """Items sorted by length, cut into batches of ``batch_size``, each padded to its length class
    (``LENGTH_CLASSES``: ``buckets`` 16, 32, 64, ...; ``fine`` multiples of 4/8/16; or a callable
    ``(n, max_length) -> length`` such as an ``adaptive_lengths`` mapping's ``get``).

    ``batch_size``: texts per batch, or a callable ``length class -> texts`` (more short texts
    than long ones in a batch: ``jaxsim.explain.bilrp.memory_batch_size``). Rows per batch:
    that size (``fill=True``: every batch of a class has the same row count, so a repeated call
    never recompiles) or at most the number of items (``fill=False``: a small request gets no
    all-padding rows); rounded up to a multiple of ``multiple_of`` (the device count of a data
    mesh). Batches are cut from the longest items down, so the one partial batch is the
    *shortest* one: its filler rows cost the smallest class, and no batch needs a longer class
    than with the remainder last."""
    if callable(length_classes):
        length_of = length_classes
    elif length_classes in LENGTH_CLASSES:
        length_of = LENGTH_CLASSES[length_classes]
    else:
        raise OptionError(f"unknown length classes {length_classes!r}: choose {', '.join(LENGTH_CLASSES)}")
    size_of = batch_size if callable(batch_size) else (lambda _length: batch_size)
    if not callable(batch_size) and batch_size < 1:
        raise OptionError(f"batch size must be >= 1, got {batch_size}")
    if not lengths:
        return []
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    plans = []
    stop = len(order)
    while stop > 0:  # n=70, B=32: [38, 70), [6, 38), [0, 6)
        length = length_of(lengths[order[stop - 1]], max_length)
        size = max(1, int(size_of(length)))
        rows = size if fill else min(size, len(lengths))
        start = max(0, stop - size)
        plans.append(BatchPlan(order[start:stop], length, -(-rows // multiple_of) * multiple_of))
        stop = start
    return plans[::-1]


def map_batches(
    items: Sequence, lengths: Sequence[int], *, batch_size: BatchSize, max_length: int | None,
    pad: Callable[[BatchPlan], Any], compute: Callable[[Any], Any],
    unpack: Callable[[Any, int, int], Any], fill: bool = True, multiple_of: int = 1,
    length_classes: LengthClasses = "buckets", progress: Callable | None = None, in_flight: int = 2,
) -> list:
    """The batching loop: ``out[i] = unpack(host_result, row, i)`` for every item ``i``.

    pad(plan) -> the batch's (host) arrays for ``plan.indices`` at ``[plan.rows, plan.length]``;
    compute(arrays) -> a pytree of device arrays, dispatched asynchronously; up to ``in_flight``
    batches run ahead of the host, so padding the next batch and reading the last one overlap the
    device's work. unpack(host pytree, row, i) -> item i's result (e.g. its row cut to its length).
    ``progress``: a wrapper such as ``tqdm`` around the plan, or None. ``items`` is only counted.
    """
    plans = plan_batches(lengths, batch_size, max_length, fill=fill, multiple_of=multiple_of,
                         length_classes=length_classes)
    out: list = [None] * len(items)
    pending: collections.deque = collections.deque()

    def collect() -> None:
        plan, result = pending.popleft()
        host = jax.device_get(result)
        for row, i in enumerate(plan.indices):
            out[i] = unpack(host, row, i)

    for plan in progress(plans) if progress else plans:
        pending.append((plan, compute(pad(plan))))
        if len(pending) >= max(1, in_flight):
            collect()
    while pending:
        collect()
    return out


def map_encoded(
    encoded: Sequence[Encoded], *, batch_size: BatchSize, max_length: int | None, pad_id: int,
    compute: Callable[[Batch], Any], unpack: Callable[[Any, int, int], Any], **options,
) -> list:
    """``map_batches`` over encodings padded with ``pad_batch`` (the common case)."""
    return map_batches(
        encoded, [len(e) for e in encoded], batch_size=batch_size, max_length=max_length,
        pad=lambda plan: pad_batch([encoded[i] for i in plan.indices], plan.length, plan.rows, pad_id),
        compute=compute, unpack=unpack, **options,
    )


def batches_by_bucket(
    encoded: Sequence[Encoded], batch_size: int, max_length: int | None = None, pad_id: int = 0
):
    """Yield ``(indices, Batch)`` of ``plan_batches`` (``fill=True``): for callers that need the
    batches themselves (training-style loops, benchmarks); computations use ``map_batches``."""
    for plan in plan_batches([len(e) for e in encoded], batch_size, max_length):
        yield plan.indices, pad_batch([encoded[i] for i in plan.indices], plan.length, plan.rows, pad_id)
