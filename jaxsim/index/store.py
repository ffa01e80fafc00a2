"""The index on disk: committed shards of embeddings, BiLRP factors and documents.

Layout of ``IDX``::

    .lock                            held (``flock``) by the building process
    index.json                       settings and the model's fingerprint; ``complete`` and the
                                     totals once every shard is committed (rewritten at the end)
    shards/part-000042.emb.npy       f32[m, h] pooled embeddings φ(d), not normalised
    shards/part-000042.factors.npy   f16 | f32[T, h] every document's r(d), token-major: document
                                     j is rows offsets[j]:offsets[j + 1] (absent: --factors none)
    shards/part-000042.offsets.npy   i64[m + 1]
    shards/part-000042.docs.jsonl    per document: row, id, text (+ ids, tokens, words,
                                     word_ids, special: what ``Encoded`` needs)
    shards/part-000042.done.json     commits the shard: rows, docs, tokens, bad rows, each file's
                                     bytes and sha256 (written last)
    errors.jsonl                     every bad row, sorted by row (rewritten at the end)

Input shard ``k`` is rows ``[k * shard_size, (k + 1) * shard_size)``. Files are written as the
corpus runner writes them (``jaxsim.corpus.shards.write_atomic``: temporary sibling, fsync,
``os.replace``) and a shard counts only once its ``.done.json`` exists, so ``kill -9`` at any
point leaves whole committed shards; ``--resume`` re-checks them and redoes the rest.

Why ``.npy``: one shard is written once and read many times; ``np.load(mmap_mode="r")`` maps
its factors without reading them, and a hit's r(d) is one contiguous slice of rows. Ragged
documents need only an offsets array (token-major keeps each document's rows together). The
files need no new dependency, hash and rename like every other shard file, and any numpy reads
them; zarr / tensorstore (chunked, for arrays written in place and concurrently) and
safetensors (a header per file, no append) add machinery this write-once format does not use.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from jaxsim.corpus import shards
from jaxsim.corpus.integrity import model_changes
from jaxsim.errors import JaxsimError

INDEX_FILE = "index.json"
#: ``index.json``'s ``format``: marks a folder as one of our indexes.
INDEX_FORMAT = "jaxsim-index/1"
ERRORS_FILE = "errors.jsonl"
#: Storage dtype of the factors per ``--factors`` (``none``: embeddings only).
FACTOR_DTYPES: dict[str, type | None] = {"fp16": np.float16, "fp32": np.float32, "none": None}
#: Each part of a shard and its file suffix.
PARTS = {"emb": "emb.npy", "factors": "factors.npy", "offsets": "offsets.npy", "docs": "docs.jsonl"}
# Settings that change what a shard holds; a resume must match them (the input's content and the
# model's fingerprint are checked apart, so the refusal can say which changed).
INDEX_KEYS = ("input", "shard_size", "model", "pooling", "similarity", "factors", "options")


def part_path(out: str | Path, shard: int, part: str) -> Path:
    return Path(out) / shards.SHARD_DIR / f"part-{shard:06d}.{PARTS[part]}"


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in the ``.npy`` format (what ``np.save`` writes)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def commit_shard(out: Path, entry: dict[str, Any], arrays: dict[str, np.ndarray],
                 docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Write shard ``entry["shard"]``: its arrays (``emb``, ``offsets``, optional ``factors``)
    and document records, then its ``.done.json`` (the commit). The entry gains ``files``:
    ``{part: {"file", "bytes", "sha256"}}``."""
    shard = entry["shard"]
    blobs = {part: npy_bytes(a) for part, a in arrays.items()}
    blobs["docs"] = shards.jsonl_bytes(docs)
    files = {}
    for part, data in blobs.items():
        path = part_path(out, shard, part)
        shards.write_atomic(path, data)
        files[part] = {"file": f"{shards.SHARD_DIR}/{path.name}", "bytes": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()}
    entry = {**entry, "files": files}
    shards.write_atomic(shards.done_path(out, shard), json.dumps(entry, ensure_ascii=False).encode())
    return entry


def shard_problem(out: Path, entry: dict[str, Any], hashes: bool = True) -> str | None:
    """Why a committed shard's files do not match its entry (missing, size, sha256 when
    ``hashes``), or None when they do."""
    for info in entry["files"].values():
        path = Path(out) / info["file"]
        try:
            size = path.stat().st_size
        except OSError as err:
            return f"{info['file']} cannot be read ({err.strerror})"
        if size != info["bytes"]:
            return f"{info['file']} has {size} bytes, its .done.json says {info['bytes']}"
        if hashes and hashlib.sha256(path.read_bytes()).hexdigest() != info["sha256"]:
            return f"{info['file']} does not match the sha256 in its .done.json"
    return None


def read_entry(out: Path, shard: int) -> tuple[dict[str, Any] | None, str | None]:
    """A committed shard's entry and its problem (None when its files match it)."""
    try:
        entry = json.loads(shards.done_path(out, shard).read_text(encoding="utf-8"))
        return entry, shard_problem(out, entry)
    except (OSError, ValueError, KeyError, TypeError) as err:  # a damaged .done.json
        return None, f"{shards.done_path(out, shard).name} is unreadable ({err})"


def verify_committed(out: Path, owns) -> set[int]:
    """``jaxsim.corpus.shards.verify_committed`` with this index's shard check (``read_entry``)."""
    return shards.verify_committed(out, owns, read_entry)


def read_index(out: str | Path) -> dict[str, Any] | None:
    """The ``index.json`` of our index in ``out``; None if ``out`` is missing or empty (locks
    aside). Refuses a folder that holds anything else and an ``index.json`` that is not ours."""
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        raise JaxsimError(f"{out} is a file: pass an index folder")
    path = out / INDEX_FILE
    if not path.is_file():
        held = sorted(p.name for p in out.iterdir() if not p.name.startswith((".lock", ".index")))
        if held:
            raise JaxsimError(f"{out} is not empty and holds no jaxsim index (it has "
                              f"{', '.join(held[:5])}): choose a new or empty folder")
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise JaxsimError(f"{path} is not a jaxsim index.json ({err}): rebuild the index") from err
    if not isinstance(record, dict) or record.get("format") != INDEX_FORMAT:
        raise JaxsimError(f"{path} is not from this jaxsim version's indexes (no format "
                          f"{INDEX_FORMAT!r}): rebuild it with `jaxsim index`")
    return record


def check_build(out: Path, settings: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """Refuse to mix builds: another index's settings, model or input, or committed shards and
    no ``resume``. Returns the earlier ``index.json`` (None for a new index)."""
    previous = read_index(out)
    if previous is not None:
        changed = [k for k in INDEX_KEYS if previous.get(k) != settings.get(k)]
        if changed:
            diffs = "; ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise JaxsimError(f"{out} holds an index with other settings ({diffs}): use another --out")
        parts = model_changes(previous.get("model_fingerprint"), settings["model_fingerprint"])
        if parts:
            raise JaxsimError(f"{out} holds an index of another model: the {' and the '.join(parts)} "
                              f"changed since it was started (same name {settings['model']!r}): "
                              "use another --out")
        if previous.get("input_sha256") != settings["input_sha256"]:
            raise JaxsimError(f"the documents changed since the index in {out} was started (same "
                              "path, other content): use another --out")
    done = shards.finished_shards(out)
    if done and not resume:
        raise JaxsimError(f"{out} already has {len(done)} committed shards: pass --resume to "
                          "finish that index, or choose another --out")
    return previous


def write_index(out: Path, record: dict[str, Any]) -> None:
    (Path(out) / shards.SHARD_DIR).mkdir(parents=True, exist_ok=True)
    data = json.dumps({"format": INDEX_FORMAT, **record}, indent=1, ensure_ascii=False)
    shards.write_atomic(Path(out) / INDEX_FILE, data.encode("utf-8"))


def finish(out: Path, settings: dict[str, Any], total_shards: int | None,
           extra: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``index.json`` from the committed shards (each verified first) and
    ``errors.jsonl``; ``complete`` only when all ``total_shards`` shards are committed and pass."""
    out = Path(out)
    entries, unverified = [], []
    for shard in sorted(shards.finished_shards(out)):
        entry, problem = read_entry(out, shard)
        if problem is None:
            entries.append(entry)
        else:
            unverified.append({"shard": shard, "problem": problem})
    errors = sorted((e for entry in entries for e in entry["errors"]), key=lambda e: e["row"])
    record = {
        **settings, **extra,
        "complete": total_shards is not None and len(entries) == total_shards and not unverified,
        "total_shards": total_shards, "finished_shards": len(entries), "unverified": unverified,
        "docs": sum(e["docs"] for e in entries), "tokens": sum(e["tokens"] for e in entries),
        "errors": len(errors), "errors_by_reason": dict(sorted(Counter(e["reason"] for e in errors).items())),
        "bytes": sum(f["bytes"] for e in entries for f in e["files"].values()),
        "shards": [{k: v for k, v in e.items() if k != "errors"} | {"errors": len(e["errors"])}
                   for e in entries],
    }
    shards.write_atomic(out / ERRORS_FILE, shards.jsonl_bytes(errors))
    write_index(out, record)
    return record
