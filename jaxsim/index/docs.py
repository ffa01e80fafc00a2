"""Streaming readers of single documents: ``.txt`` (one per line), ``.jsonl`` (a ``text`` field,
optional ``id``) and ``.parquet`` (a ``text`` column, optional ``id``), read row by row.

Every document gets a stable ``row``: its 0-based line (``.txt``, ``.jsonl``) or row
(``.parquet``); its ``id`` is the file's own ``id`` when there is one (a string or an integer),
else the row. Lines are split on ``\\n`` only (``\\r\\n`` tolerated), as
``jaxsim.text.lines.split_lines`` and the pair readers of ``jaxsim.corpus.io`` do; a row that
cannot be read becomes a ``BadRow`` with a reason (text checks happen at tokenisation).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from jaxsim.corpus.io import (
    BadRow,
    count_lines,
    decode_row,
    jsonl_values,
    open_input,
    parquet_file,
    parquet_values,
    strip_eol,
)
from jaxsim.errors import InputTextError, JaxsimError

FORMATS: dict[str, str] = {".txt": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl",
                           ".parquet": "parquet", ".pq": "parquet"}


class Doc(NamedTuple):
    """One readable document: ``row`` its stable position, ``id`` the name a search shows."""

    row: int
    id: str | int
    text: str


DocRow = Doc | BadRow


def doc_format(path: str | Path) -> str:
    """``txt | jsonl | parquet`` from the file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise JaxsimError(f"cannot tell the format of {path}: name it *.txt (one document per "
                          "line), *.jsonl (a 'text' field) or *.parquet (a 'text' column)")
    return FORMATS[suffix]


def doc_from_values(row: int, text: object, doc_id: object = None) -> DocRow:
    """A ``Doc`` from a record's values, or the ``BadRow`` that says what is wrong with them."""
    if isinstance(text, bytes):
        text = decode_row(text, row)
        if isinstance(text, BadRow):
            return text
    if text is None:
        text = ""  # a null text is an empty text (reported at tokenisation)
    if not isinstance(text, str):
        return BadRow(row, "malformed", f"text must be a string, got {type(text).__name__}")
    if doc_id is None:
        doc_id = row
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
        return BadRow(row, "malformed", f"id must be a string or an integer, got "
                                        f"{type(doc_id).__name__}")
    return Doc(row, doc_id, text)


def _txt_docs(path: Path) -> Iterator[DocRow]:
    with open_input(path) as handle:
        for row, raw in enumerate(handle):
            if row == 0:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            line = decode_row(strip_eol(raw), row)
            yield line if isinstance(line, BadRow) else Doc(row, row, line)


def _jsonl_docs(path: Path) -> Iterator[DocRow]:
    for item in jsonl_values(path):
        if isinstance(item, BadRow):
            yield item
            continue
        row, obj = item
        if not isinstance(obj, dict) or "text" not in obj:
            yield BadRow(row, "malformed", "expected a JSON object with a 'text' field")
            continue
        yield doc_from_values(row, obj["text"], obj.get("id"))


def _parquet_docs(path: Path) -> Iterator[DocRow]:
    """The documents of a Parquet file: its ``text`` column and ``id`` where there is one
    (``parquet_values``: record batches, an unreadable row group gives bad rows)."""
    parquet = parquet_file(path)
    columns = ["text"] + (["id"] if "id" in parquet.schema_arrow.names else [])
    for item in parquet_values(parquet, columns):
        if isinstance(item, BadRow):
            yield item
        else:
            row, values = item
            yield doc_from_values(row, values[0], values[1] if len(values) == 2 else None)


def iter_docs(path: str | Path) -> Iterator[DocRow]:
    """Every document of ``path`` as ``Doc`` or ``BadRow``, in file order, read lazily. The
    format, the file and (Parquet) its ``text`` column are checked now."""
    path = Path(path)
    fmt = doc_format(path)
    if not path.is_file():
        raise InputTextError(f"cannot read {path}: no such file")
    if fmt == "parquet":
        names = parquet_file(path).schema_arrow.names
        if "text" not in names:
            raise JaxsimError(f"{path} has no 'text' column (it has {', '.join(names)}): name the "
                              "documents' column 'text'")
        return _parquet_docs(path)
    return _txt_docs(path) if fmt == "txt" else _jsonl_docs(path)


def docs_from_texts(texts: Iterable[str | dict]) -> list[DocRow]:
    """Documents given in Python: strings (id = position) or ``{"text", "id"}`` dicts."""
    out: list[DocRow] = []
    for row, item in enumerate(texts):
        if isinstance(item, dict):
            out.append(doc_from_values(row, item.get("text"), item.get("id")))
        else:
            out.append(doc_from_values(row, item))
    return out


def count_docs(path: str | Path) -> int:
    """Rows of a documents file: its lines (Parquet: the footer's row count)."""
    path = Path(path)
    if doc_format(path) == "parquet":
        return parquet_file(path).metadata.num_rows
    return count_lines(path)
