"""Streaming readers for pair corpora: TSV, JSONL and Parquet, read row by row, never whole.

Every data row gets a stable id, its 0-based index among the data rows (TSV: line ``id + 2``,
after the header; JSONL: line ``id + 1``; Parquet: row ``id``). A row that cannot be read
(undecodable bytes, a missing field, bad JSON, a corrupt Parquet page: ``unreadable`` for each
row of its row group) becomes a ``BadRow`` with a reason instead of stopping the run; text checks
(empty, no content, too long) happen later, at tokenisation. Lines are split on ``\n`` only
(``\r\n`` tolerated), never on U+2028, NEL or form feed; a BOM before the first line is dropped.
"""

from __future__ import annotations

import codecs
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from jaxsim.errors import InputTextError, JaxsimError

FORMATS: dict[str, str] = {
    ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
    ".pq": "parquet",
}
# Column-name pairs recognised without ``columns=``, first match wins.
KNOWN_COLUMNS: tuple[tuple[str, str], ...] = (("sentence1", "sentence2"), ("text_a", "text_b"))
_BLOCK = 1 << 20


class Pair(NamedTuple):
    """One readable input row: ``row`` is its stable id."""

    row: int
    text_a: str
    text_b: str


class BadRow(NamedTuple):
    """An input row that is skipped: ``reason`` is a short code, ``detail`` says why."""

    row: int
    reason: str
    detail: str


Row = Pair | BadRow


def input_format(path: str | Path) -> str:
    """``tsv | jsonl | parquet`` from the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise JaxsimError(
            f"cannot tell the format of {path}: name it *.tsv, *.jsonl or *.parquet"
        )
    return FORMATS[suffix]


def resolve_columns(names: Iterable[str], columns: tuple[str, str] | None, path: str | Path
                    ) -> tuple[str, str]:
    """The two text columns: ``columns`` if given (must exist), else the first known pair."""
    names = list(names)
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise JaxsimError(f"{path} has no column {', '.join(missing)} (it has {', '.join(names)})")
        return columns
    for pair in KNOWN_COLUMNS:
        if all(c in names for c in pair):
            return pair
    known = " or ".join("/".join(p) for p in KNOWN_COLUMNS)
    raise JaxsimError(f"{path}: no {known} columns (it has {', '.join(names) or 'none'}); "
                      "name the two text columns with --columns A,B")


def open_input(path: Path):
    try:
        return open(path, "rb")
    except OSError as err:
        raise InputTextError(f"cannot read {path}: {err.strerror}") from err


def decode_row(raw: bytes, row: int) -> str | BadRow:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return BadRow(row, "undecodable", f"not UTF-8 (bad byte at offset {err.start})")


def strip_eol(raw: bytes) -> bytes:
    return raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw.rstrip(b"\r")


def _tsv_columns(path: Path, columns: tuple[str, str] | None) -> tuple[int, int, int]:
    """(index of column a, of column b, number of fields) from the header line."""
    with open_input(path) as handle:
        header = handle.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    names = header.split("\t")
    col_a, col_b = resolve_columns(names, columns, path)
    return names.index(col_a), names.index(col_b), len(names)


def _tsv_rows(path: Path, fields: tuple[int, int, int]) -> Iterator[Row]:
    """Tab-separated, one row per line, no quoting (as STSb), after the header line."""
    i_a, i_b, n_fields = fields
    need = max(i_a, i_b) + 1
    with open_input(path) as handle:
        handle.readline()
        for row, raw in enumerate(handle):
            line = decode_row(strip_eol(raw), row)
            if isinstance(line, BadRow):
                yield line
                continue
            fields_ = line.split("\t")
            if len(fields_) < need:
                yield BadRow(row, "malformed", f"expected {n_fields} tab-separated fields, "
                                               f"got {len(fields_)}")
            else:
                yield Pair(row, fields_[i_a], fields_[i_b])


def jsonl_values(path: Path) -> Iterator[tuple[int, Any] | BadRow]:
    """``(row, parsed value)`` per line of a JSONL file, or a ``BadRow`` (undecodable bytes, not
    JSON); a BOM before the first row is dropped (an editor's BOM would make it bad JSON)."""
    with open_input(path) as handle:
        for row, raw in enumerate(handle):
            if row == 0:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            line = decode_row(strip_eol(raw), row)
            if isinstance(line, BadRow):
                yield line
                continue
            try:
                yield row, json.loads(line)
            except json.JSONDecodeError as err:
                yield BadRow(row, "malformed", f"not JSON: {err.msg} at column {err.colno}")


def _jsonl_rows(path: Path, columns: tuple[str, str] | None) -> Iterator[Row]:
    """One JSON object per line with the two text fields (strings)."""
    for item in jsonl_values(path):
        if isinstance(item, BadRow):
            yield item
            continue
        row, obj = item
        if not isinstance(obj, dict):
            yield BadRow(row, "malformed", f"expected a JSON object, got {type(obj).__name__}")
            continue
        try:
            col_a, col_b = resolve_columns(obj, columns, f"line {row + 1}")
        except JaxsimError as err:
            yield BadRow(row, "malformed", str(err))
            continue
        yield _pair_from_values(row, obj[col_a], obj[col_b])


def _pair_from_values(row: int, a: object, b: object) -> Row:
    values = []
    for value in (a, b):
        if isinstance(value, bytes):
            value = decode_row(value, row)
            if isinstance(value, BadRow):
                return value
        if value is None:
            value = ""  # a null text is an empty text (reported at tokenisation)
        if not isinstance(value, str):
            return BadRow(row, "malformed", f"text must be a string, got {type(value).__name__}")
        values.append(value)
    return Pair(row, *values)


def parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid (not OSError) for non-Parquet bytes
        raise InputTextError(f"cannot read {path} as Parquet: {first_line(err)}") from err


def first_line(err: Exception) -> str:
    """pyarrow's message, first line, with unprintable characters escaped."""
    text = str(err).strip()
    line = text.split("\n")[0] if text else type(err).__name__
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)


def parquet_values(parquet, columns: list[str]) -> Iterator[tuple[int, list] | BadRow]:
    """``(row, [value per column])`` for every row of an open ``pyarrow.parquet.ParquetFile``,
    read in record batches of 4096 rows, only ``columns``, one row group at a time: a row group
    whose pages cannot be read (corrupt bytes) makes its rows ``unreadable`` bad rows, and the
    rows after it keep their ids."""
    import pyarrow as pa

    row = 0
    for group in range(parquet.num_row_groups):
        end = row + parquet.metadata.row_group(group).num_rows
        try:
            for batch in parquet.iter_batches(batch_size=4096, row_groups=[group], columns=columns):
                for values in zip(*(batch.column(k).to_pylist() for k in range(len(columns))),
                                  strict=True):
                    yield row, list(values)
                    row += 1
        except (OSError, ValueError, pa.ArrowException) as err:
            detail = f"row group {group} cannot be read: {first_line(err)}"
            for bad in range(row, end):
                yield BadRow(bad, "unreadable", detail)
            row = end


def _parquet_rows(path: Path, columns: tuple[str, str]) -> Iterator[Row]:
    """The pairs of a Parquet file, its two text columns only (``parquet_values``)."""
    for item in parquet_values(parquet_file(path), list(columns)):
        yield item if isinstance(item, BadRow) else _pair_from_values(item[0], *item[1])


def iter_rows(path: str | Path, columns: tuple[str, str] | None = None) -> Iterator[Row]:
    """Every data row of ``path`` as ``Pair`` or ``BadRow``, in file order, read lazily.

    The format, the file and (TSV, Parquet) its columns are checked now; the file is opened when
    the first row is asked for and closed when the iterator is exhausted or closed.
    """
    path = Path(path)
    fmt = input_format(path)
    if not path.is_file():
        raise InputTextError(f"cannot read {path}: no such file")
    if fmt == "tsv":
        return _tsv_rows(path, _tsv_columns(path, columns))
    if fmt == "parquet":
        return _parquet_rows(path, resolve_columns(parquet_file(path).schema_arrow.names,
                                                   columns, path))
    return _jsonl_rows(path, columns)


def iter_chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """Consecutive chunks of ``size`` rows (the last may be shorter); one chunk in memory."""
    if size < 1:
        raise JaxsimError(f"shard size must be >= 1, got {size}")
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def count_lines(path: str | Path) -> int:
    """Lines of a text file (a last line without a newline counts), by counting line ends in
    1 MiB blocks."""
    lines, last = 0, b"\n"
    with open_input(Path(path)) as handle:
        while block := handle.read(_BLOCK):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def count_rows(path: str | Path) -> int:
    """Number of data rows, by counting line ends (Parquet: the footer)."""
    path = Path(path)
    fmt = input_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return max(count_lines(path) - (fmt == "tsv"), 0)
