"""Output of a corpus run: shard files committed by atomic rename, a manifest, resume.

Layout of ``OUT``::

    .lock                         held (``flock``) by the running process: one run at a time
    run.json                      the run's settings and fingerprints; a resume must match them
    shards/part-000042.jsonl      one JSON record per explained pair of input shard 42
    shards/part-000042.done.json  the shard's manifest entry; written last, it commits the shard
    manifest.json                 every committed shard and the totals (rebuilt at the end of a run)
    errors.jsonl                  every bad row with its reason (rebuilt at the end of a run)

Input shard ``k`` is rows ``[k * shard_size, (k + 1) * shard_size)``. Each file is written to a
temporary name in the same folder, flushed with ``fsync`` and renamed with ``os.replace``
(atomic on POSIX), so a reader sees a whole file or none. A shard counts as finished only when
its ``.done.json`` exists; its ``.jsonl`` is renamed first, so a kill between the two renames
leaves an uncommitted part that is ignored and rewritten on resume.

Integrity (docs/integrity.md): ``run.json`` records the model's and the input's fingerprints
(``jaxsim.corpus.integrity``) and each ``.done.json`` the hash of its input rows; a resume
re-checks every committed shard's bytes, sha256 and record count and redoes a shard that fails;
``--out`` must be new, empty or one of our runs; a lock keeps a second run out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jaxsim.corpus.integrity import model_changes
from jaxsim.errors import JaxsimError

RUN_FILE = "run.json"
#: ``run.json``'s ``format``: marks a folder as one of our runs (only those are resumed or reused).
RUN_FORMAT = "jaxsim-corpus-run/2"
LOCK_FILE = ".lock"
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.jsonl"
SHARD_DIR = "shards"
# Settings that change what a shard contains; a resume must match them exactly. The input's
# content (``input_sha256``) and the model's (``model_fingerprint``) are checked separately, so
# the refusal can say what changed.
RUN_KEYS = ("input", "columns", "shard_size", "method", "model", "pooling", "store", "options")
_TMP = re.compile(r"^\.part-(\d+)\..*\.tmp\.\d+$")
_OUR_TMP = re.compile(r"^\.(run\.json|manifest\.json|errors\.jsonl)\.tmp\.\d+$")
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


def shard_problem(out: Path, entry: dict[str, Any], data: bytes | None = None) -> str | None:
    """Why shard ``entry``'s records file does not match its ``.done.json`` (size, sha256,
    record count, rows = pairs + bad rows), or None when it does. ``data``: the file, if read."""
    path = Path(out) / entry["file"]
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as err:
            return f"{entry['file']} cannot be read ({err.strerror})"
    if len(data) != entry["bytes"]:
        return f"{entry['file']} has {len(data)} bytes, its .done.json says {entry['bytes']}"
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return f"{entry['file']} does not match the sha256 in its .done.json"
    records = data.count(b"\n")  # one record per line; records never hold a raw newline
    if records != entry["pairs"] or entry["pairs"] + len(entry["errors"]) != entry["rows"]:
        return (f"{entry['file']} has {records} records, its .done.json says {entry['pairs']} "
                f"pairs + {len(entry['errors'])} bad rows of {entry['rows']} rows")
    return None


def _read_entry_or_problem(out: Path, shard: int) -> tuple[dict[str, Any] | None, str | None]:
    try:
        entry = read_entry(out, shard)
        return entry, shard_problem(out, entry)
    except (OSError, ValueError, KeyError, TypeError) as err:  # a damaged .done.json
        return None, f"{done_path(out, shard).name} is unreadable ({err})"


def verify_committed(out: Path, owns, read_entry=None) -> set[int]:
    """Check every committed shard ``owns(shard)`` says is ours against its ``.done.json``; a
    shard that fails is reported (a warning) and uncommitted, so this run redoes it. Returns the
    shards that passed. ``read_entry(out, shard) -> (entry, problem)`` checks one shard (default:
    a corpus shard's ``.jsonl``; the search index passes its own)."""
    read_entry = read_entry or _read_entry_or_problem
    good = set()
    for shard in sorted(finished_shards(out)):
        if not owns(shard):
            continue
        _, problem = read_entry(out, shard)
        if problem is None:
            good.add(shard)
            continue
        warnings.warn(f"shard {shard} is redone: {problem}", stacklevel=2)
        done_path(out, shard).unlink(missing_ok=True)
    return good


def iter_records(out: str | Path, verify: bool = True) -> Iterator[dict[str, Any]]:
    """Every explained pair of the committed shards, in shard order (ids ascending).

    Uncommitted parts are never read. ``verify`` checks each file's size, sha256 and record
    count against its manifest entry.
    """
    out = Path(out)
    for shard in sorted(finished_shards(out)):
        entry = read_entry(out, shard)
        data = (out / entry["file"]).read_bytes()
        problem = shard_problem(out, entry, data) if verify else None
        if problem:
            raise JaxsimError(f"{problem}: run `jaxsim corpus ... --resume` on {out} to redo "
                              "the shard")
        # Split on "\n" only: a text may hold U+2028 or a form feed, which splitlines() splits on.
        for line in data.decode("utf-8").split("\n")[:-1]:
            yield json.loads(line)


def _listing(folder: Path, limit: int = 5) -> str:
    """What ``folder`` holds, our lock files and killed writes' temporaries aside."""
    names = sorted(p.name for p in folder.iterdir()
                   if not (p.name.startswith(LOCK_FILE) or _OUR_TMP.match(p.name)))
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_run(out: Path) -> dict[str, Any] | None:
    """The ``run.json`` of our run in ``out``; None if ``out`` is missing or empty (locks aside).

    Refuses a folder that holds anything else (never write over what is not ours) and a
    ``run.json`` that is not ours or is from an older jaxsim.
    """
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        raise JaxsimError(f"--out {out} is a file: pass a folder (new or empty)")
    path = out / RUN_FILE
    if not path.is_file():
        if _listing(out):
            raise JaxsimError(f"--out {out} is not empty and holds no jaxsim corpus run (it has "
                              f"{_listing(out)}): choose a new or empty folder")
        return None
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise JaxsimError(f"{path} is not a jaxsim run.json ({err}): choose another --out") from err
    if not isinstance(previous, dict) or previous.get("format") != RUN_FORMAT:
        raise JaxsimError(f"{path} is not from this jaxsim version's corpus runs (no format "
                          f"{RUN_FORMAT!r}): choose another --out")
    return previous


@contextlib.contextmanager
def run_lock(out: Path, process_index: int = 0, what: str = "jaxsim corpus run"
             ) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``OUT/.lock`` (``.lock-K`` for process K of a multi-host
    run) while the run lasts, so a second run into the same folder is refused at once. The
    kernel drops the lock when the process ends, even by SIGKILL: no stale lock to clean up."""
    path = Path(out) / (LOCK_FILE if process_index == 0 else f"{LOCK_FILE}-{process_index}")
    handle = open(path, "a+b")  # noqa: SIM115 (held open for the whole run)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise JaxsimError(f"another {what} is writing to {out} (it holds "
                              f"{path.name}): wait for it to end, or choose another --out") from err
        yield
    finally:
        handle.close()


def check_run(out: Path, settings: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """Refuse to mix runs: an ``OUT`` that holds something else, another run's settings or
    another model, or finished shards and no ``resume``. Returns the earlier ``run.json`` (None
    for a new run); the caller checks the input rows (``input_sha256``)."""
    previous = read_run(out)
    if previous is not None:
        changed = [k for k in RUN_KEYS if previous.get(k) != settings.get(k)]
        if changed:
            diffs = "; ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise JaxsimError(f"{out} holds a run with other settings ({diffs}): use another --out")
        parts = model_changes(previous.get("model_fingerprint"), settings["model_fingerprint"])
        if parts:
            raise JaxsimError(f"{out} holds a run of another model: the {' and the '.join(parts)} "
                              f"changed since it started (same name {settings['model']!r}): "
                              "use another --out")
    done = finished_shards(out)
    if done and not resume:
        raise JaxsimError(f"{out} already has {len(done)} finished shards: pass --resume to "
                          "continue that run, or choose another --out")
    return previous


def write_run(out: Path, settings: dict[str, Any]) -> None:
    (Path(out) / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    record = {"format": RUN_FORMAT, **settings}
    write_atomic(Path(out) / RUN_FILE, json.dumps(record, indent=1).encode("utf-8"))


def write_manifest(out: Path, total_shards: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    """Rebuild ``manifest.json`` and ``errors.jsonl`` from the committed shards' entries.

    ``total_shards``: how many shards the input has (``None`` if the input was not read to the
    end). Every shard file is verified against its entry first; ``complete`` is true only when
    all ``total_shards`` shards are committed and verified (``unverified`` lists the others).
    """
    out = Path(out)
    entries, unverified = [], []
    for shard in sorted(finished_shards(out)):
        entry, problem = _read_entry_or_problem(out, shard)
        if problem is None:
            entries.append(entry)
        else:
            unverified.append({"shard": shard, "problem": problem})
    errors = sorted((e for entry in entries for e in entry["errors"]), key=lambda e: e["id"])
    reasons = Counter(e["reason"] for e in errors)
    manifest = {
        **extra,
        "complete": total_shards is not None and len(entries) == total_shards and not unverified,
        "verified": True,
        "total_shards": total_shards,
        "finished_shards": len(entries),
        "unverified": unverified,
        "pairs": sum(e["pairs"] for e in entries),
        "errors": len(errors),
        "errors_by_reason": dict(sorted(reasons.items())),
        "shards": [{k: v for k, v in e.items() if k != "errors"} | {"errors": len(e["errors"])}
                   for e in entries],
    }
    write_atomic(out / ERRORS_FILE, jsonl_bytes(errors))
    write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest
