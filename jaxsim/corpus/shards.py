"""Output of a corpus run: shard files committed by atomic rename, a manifest, resume.

Layout of ``OUT``::

    run.json                      the run's settings; a resume must match them
    shards/part-000042.jsonl      one JSON record per explained pair of input shard 42
    shards/part-000042.done.json  the shard's manifest entry; written last, it commits the shard
    manifest.json                 every committed shard and the totals (rebuilt at the end of a run)
    errors.jsonl                  every bad row with its reason (rebuilt at the end of a run)

Input shard ``k`` is rows ``[k * shard_size, (k + 1) * shard_size)``. Each file is written to a
temporary name in the same folder, flushed with ``fsync`` and renamed with ``os.replace``
(atomic on POSIX), so a reader sees a whole file or none. A shard counts as finished only when
its ``.done.json`` exists; its ``.jsonl`` is renamed first, so a kill between the two renames
leaves an uncommitted part that is ignored and rewritten on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jaxsim.errors import JaxsimError

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.jsonl"
SHARD_DIR = "shards"
# Settings that change what a shard contains; a resume must match them exactly.
RUN_KEYS = ("input", "input_bytes", "columns", "shard_size", "method", "model", "pooling", "store",
            "options")
_TMP = re.compile(r"^\.part-(\d+)\..*\.tmp\.\d+$")
_DONE = re.compile(r"^part-(\d+)\.done\.json$")


def part_path(out: Path, shard: int) -> Path:
    return Path(out) / SHARD_DIR / f"part-{shard:06d}.jsonl"


def done_path(out: Path, shard: int) -> Path:
    return Path(out) / SHARD_DIR / f"part-{shard:06d}.done.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace`` (all or nothing)."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    """One compact JSON object per line (floats round-trip exactly)."""
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n"
                   for r in records).encode("utf-8")


def commit_shard(out: Path, entry: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write shard ``entry["shard"]``: its records, then its ``.done.json`` entry (the commit).

    The entry gains ``file``, ``pairs``, ``bytes`` and ``sha256`` of the records file.
    """
    shard = entry["shard"]
    data = jsonl_bytes(records)
    entry = {**entry, "file": f"{SHARD_DIR}/{part_path(out, shard).name}", "pairs": len(records),
             "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_atomic(part_path(out, shard), data)
    write_atomic(done_path(out, shard), json.dumps(entry, ensure_ascii=False).encode("utf-8"))
    return entry


def finished_shards(out: Path) -> set[int]:
    """Indices of the committed shards (those with a ``.done.json``)."""
    folder = Path(out) / SHARD_DIR
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for p in folder.iterdir() if (m := _DONE.match(p.name))}


def read_entry(out: Path, shard: int) -> dict[str, Any]:
    return json.loads(done_path(out, shard).read_text(encoding="utf-8"))


def remove_stale_temporaries(out: Path, owns) -> int:
    """Delete temporary files left by a killed run, for the shards ``owns(shard)`` says are ours
    (other processes of a multi-host run may be writing theirs). Returns how many."""
    folder = Path(out) / SHARD_DIR
    removed = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        m = _TMP.match(path.name)
        if m and owns(int(m.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def iter_records(out: str | Path, verify: bool = True) -> Iterator[dict[str, Any]]:
    """Every explained pair of the committed shards, in shard order (ids ascending).

    Uncommitted parts are never read. ``verify`` checks each file's size and sha256 against
    its manifest entry.
    """
    out = Path(out)
    for shard in sorted(finished_shards(out)):
        entry = read_entry(out, shard)
        data = (out / entry["file"]).read_bytes()
        if verify and (len(data) != entry["bytes"] or
                       hashlib.sha256(data).hexdigest() != entry["sha256"]):
            raise JaxsimError(f"{out / entry['file']} does not match its manifest entry: "
                              "delete its .done.json and resume to redo the shard")
        for line in data.decode("utf-8").splitlines():
            yield json.loads(line)


def check_run(out: Path, settings: dict[str, Any], resume: bool) -> None:
    """Refuse to mix runs: an ``OUT`` with another run's settings, or with finished shards
    and no ``resume``."""
    path = Path(out) / RUN_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in RUN_KEYS if previous.get(k) != settings.get(k)]
        if changed:
            diffs = "; ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise JaxsimError(f"{out} holds a run with other settings ({diffs}): use another --out")
    done = finished_shards(out)
    if done and not resume:
        raise JaxsimError(f"{out} already has {len(done)} finished shards: pass --resume to "
                          "continue that run, or choose another --out")


def write_run(out: Path, settings: dict[str, Any]) -> None:
    (Path(out) / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    write_atomic(Path(out) / RUN_FILE, json.dumps(settings, indent=1).encode("utf-8"))


def write_manifest(out: Path, total_shards: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    """Rebuild ``manifest.json`` and ``errors.jsonl`` from the committed shards' entries.

    ``total_shards``: how many shards the input has (``None`` if the input was not read to the
    end); ``complete`` says whether all of them are committed.
    """
    out = Path(out)
    entries = [read_entry(out, k) for k in sorted(finished_shards(out))]
    errors = sorted((e for entry in entries for e in entry["errors"]), key=lambda e: e["id"])
    reasons = Counter(e["reason"] for e in errors)
    manifest = {
        **extra,
        "complete": total_shards is not None and len(entries) == total_shards,
        "total_shards": total_shards,
        "finished_shards": len(entries),
        "pairs": sum(e["pairs"] for e in entries),
        "errors": len(errors),
        "errors_by_reason": dict(sorted(reasons.items())),
        "shards": [{k: v for k, v in e.items() if k != "errors"} | {"errors": len(e["errors"])}
                   for e in entries],
    }
    write_atomic(out / ERRORS_FILE, jsonl_bytes(errors))
    write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest
