"""Sentence-pair classification data: TSV reading, the label vocabulary, padded batches.

A data file is a UTF-8 TSV with the header ``sentence1<TAB>sentence2<TAB>label`` (the layout of
``shared/data/mrpc`` and ``shared/data/snli``). Labels are strings (``entailment``, ``1``); the
label vocabulary is sorted (numerically when every label is an integer) so it does not depend
on row order, and it is stored with every checkpoint.

Batches are padded to the shared length buckets (``jaxsim.text.buckets``) and to a fixed number
of rows, so the jitted train step compiles once per bucket. An epoch's order is a pure function
of ``(seed, epoch)``: shuffled, then grouped by length within windows of ``group`` batches (less
padding), then the batches shuffled again. That makes a resumed run replay exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxsim.errors import InputTextError
from jaxsim.text import Encoded, bucket_length, pad_batch
from jaxsim.text.lines import split_lines

HEADER = ("sentence1", "sentence2", "label")


@dataclasses.dataclass(frozen=True)
class PairData:
    """Labelled sentence pairs.

    text_a, text_b: the two sentences of each pair; labels: i32[N] indices into ``label_names``.
    """

    text_a: tuple[str, ...]
    text_b: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.text_a)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.text_a, self.text_b, strict=True))

    def subset(self, index: Sequence[int] | np.ndarray) -> PairData:
        index = np.asarray(index, np.int64)
        return dataclasses.replace(
            self, text_a=tuple(self.text_a[i] for i in index),
            text_b=tuple(self.text_b[i] for i in index), labels=self.labels[index],
        )

    def majority_accuracy(self) -> float:
        """Accuracy of always predicting the most frequent label (the baseline to beat)."""
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return float(counts.max() / max(len(self), 1))


def label_vocabulary(raw_labels: Sequence[str]) -> tuple[str, ...]:
    """Sorted distinct labels; numerically if all are integers (``"0" < "1" < "10"``)."""
    distinct = set(raw_labels)
    if all(_is_int(s) for s in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_pair_rows(path: str | Path) -> list[tuple[str, str, str]]:
    """``(sentence1, sentence2, label)`` rows of a TSV with the header ``HEADER``.

    Fields hold no tabs or newlines; quotes are kept as they are (no CSV unquoting).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise InputTextError(f"cannot read {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise InputTextError(f"{path} is not UTF-8; re-save it as UTF-8") from err
    lines = split_lines(text)  # \n only: a sentence may hold U+2028 or a form feed
    if not lines or tuple(f.strip().lower() for f in lines[0].split("\t")) != HEADER:
        raise InputTextError(
            f"{path} must start with the header {'<TAB>'.join(HEADER)} (got {lines[:1]!r})"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise InputTextError(f"{path} line {number}: expected 3 tab-separated fields, got {len(fields)}")
        a, b, label = fields
        if not a.strip() or not b.strip() or not label.strip():
            raise InputTextError(f"{path} line {number}: empty sentence or label")
        rows.append((a, b, label.strip()))
    if not rows:
        raise InputTextError(f"{path} has a header but no rows")
    return rows


def read_pairs(path: str | Path, label_names: Sequence[str] | None = None) -> PairData:
    """Read a pair TSV. ``label_names`` fixes the vocabulary (e.g. the training set's); an
    unknown label is then an error naming the file and the label."""
    rows = read_pair_rows(path)
    raw = [r[2] for r in rows]
    names = tuple(label_names) if label_names is not None else label_vocabulary(raw)
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise InputTextError(f"{path} has labels {unknown} outside the label set {list(names)}")
    return PairData(
        text_a=tuple(r[0] for r in rows), text_b=tuple(r[1] for r in rows),
        labels=np.asarray([index[s] for s in raw], np.int32), label_names=names, source=str(path),
    )


def split(data: PairData, fraction: float, seed: int) -> tuple[PairData, PairData]:
    """A seeded random hold-out: (rest, held-out ``round(fraction * N)`` pairs), order kept."""
    n_out = int(round(fraction * len(data)))
    if not 0 < n_out < len(data):
        raise InputTextError(f"split fraction {fraction} leaves an empty part of {len(data)} pairs")
    held = np.zeros(len(data), bool)
    held[np.random.default_rng(seed).permutation(len(data))[:n_out]] = True
    return data.subset(np.flatnonzero(~held)), data.subset(np.flatnonzero(held))


class LabelledBatch(NamedTuple):
    """ids, type_ids: i32[B, L]; mask: bool[B, L]; labels: i32[B]; weights: f32[B] (0 = filler row)."""

    ids: np.ndarray
    type_ids: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    weights: np.ndarray


def make_batch(
    encoded: Sequence[Encoded], labels: np.ndarray, index: Sequence[int], batch_size: int,
    max_length: int, pad_id: int = 0,
) -> LabelledBatch:
    """Rows ``index`` padded to their bucket and to ``batch_size`` rows (filler rows weigh 0)."""
    rows = [encoded[i] for i in index]
    length = bucket_length(max(len(e) for e in rows), max_length)
    batch = pad_batch(rows, length, batch_size, pad_id)
    out_labels = np.zeros(batch_size, np.int32)
    out_labels[: len(rows)] = labels[np.asarray(index)]
    weights = np.zeros(batch_size, np.float32)
    weights[: len(rows)] = 1.0
    return LabelledBatch(batch.ids, batch.type_ids, batch.mask, out_labels, weights)


def epoch_order(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                group: int = 50) -> list[np.ndarray]:
    """The batches (row indices) of one epoch, a pure function of ``(seed, epoch)``.

    Shuffle; within windows of ``group * batch_size`` rows sort by length (so a batch pads to
    a short bucket); cut into batches; shuffle the batches. The last batch may be partial.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = group * batch_size
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        order[start:start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_batches(encoded: Sequence[Encoded], batch_size: int):
    """``(index, rows)`` over ``encoded`` sorted by length (evaluation: order does not matter)."""
    order = np.argsort([len(e) for e in encoded], kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]
