"""``jaxsim.corpus.run``: explain every pair of a corpus file into resumable shards.

The loop reads the input in shards of ``shard_size`` rows (never whole), skips the shards other
processes own or an earlier run finished, explains each remaining shard (``compute``), and
commits its records and bad rows atomically (``shards``). Device work is split over a
``data`` mesh (``sharding``). The run is bound to its model and input (``integrity``): a resume
with other weights, tokenizer, config or input rows is refused, and committed shards are
verified before they are skipped (docs/integrity.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from jaxsim.corpus import compute, integrity, io, shards
from jaxsim.corpus.progress import CompileClock, CorpusSummary, Work, progress_bar
from jaxsim.corpus.sharding import barrier, data_mesh, initialize_multihost, owns_shard, run_batch_size
from jaxsim.corpus.store import Store, pair_record, parse_store
from jaxsim.errors import JaxsimError
from jaxsim.explain import bilrp, bti
from jaxsim.explain.cost import class_cost, gemm_peak_gflops, tangent_params
from jaxsim.models.placement import Placement
from jaxsim.models.precision import check_precision
from jaxsim.text import BatchSize

METHODS = bilrp.METHODS + bti.METHODS


def method_options(method: str, *, similarity: str, mode: str, explain_input: str, top_k: int,
                   ig_steps: int, truncate: bool, length_classes: str = "auto",
                   precision: str = "fp32") -> dict[str, Any]:
    """The explainer options that apply to ``method`` (recorded in ``run.json``; ``precision``
    only when not the default ``fp32``, so runs started before it existed still resume)."""
    check_precision(precision)
    if method in bilrp.METHODS:
        if length_classes not in bilrp.LENGTH_POLICIES:
            raise JaxsimError(f"unknown length classes {length_classes!r}: choose "
                              f"{', '.join(bilrp.LENGTH_POLICIES)}")
        if similarity not in bilrp.SIMILARITIES:
            raise JaxsimError(f"unknown similarity {similarity!r}: choose dot or cosine")
        if mode not in bilrp.MODES:
            raise JaxsimError(f"unknown mode {mode!r}: choose one of {', '.join(bilrp.MODES)}")
        if explain_input not in bilrp.EXPLAIN_INPUTS:
            raise JaxsimError(f"unknown explain_input {explain_input!r}: "
                              f"{', '.join(bilrp.EXPLAIN_INPUTS)}")
        options = dict(similarity=similarity, mode=mode, explain_input=explain_input,
                       length_classes=length_classes)
        if precision != "fp32":
            options["precision"] = precision
    elif method in bti.METHODS:
        if precision != "fp32":
            raise JaxsimError(f"--precision {precision} applies to the token-pair methods "
                              f"({', '.join(bilrp.METHODS)}), not {method}")
        options = dict(top_k=top_k, ig_steps=ig_steps)
    else:
        raise JaxsimError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    return options | {"truncate": truncate}


def shard_rows_owned(total_rows: int, shard_size: int, owns: Callable[[int], bool]) -> int:
    """Input rows in the shards a process owns."""
    return sum(min(shard_size, total_rows - start)
               for k, start in enumerate(range(0, total_rows, shard_size)) if owns(k))


def load_run_model(model, pooling: str | None, weights_dir, use_cache: bool):
    """A ``Model`` (with ``pooling`` unless None) or a name/path loaded with ``load_model``."""
    from jaxsim.model import Model, load_model

    if isinstance(model, Model):
        return model if pooling in (None, model.pooling) else model.with_pooling(pooling)
    return load_model(model, pooling=pooling, weights_dir=weights_dir, use_cache=use_cache)


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything a shard needs, fixed for the run."""

    out: Path
    model: Any
    placed: Placement | None
    method: str
    store: Store
    options: dict[str, Any]
    batch_size: BatchSize
    truncate: bool
    process: int
    cache: bilrp.FactorCache | None = None  # token-pair methods: each distinct text once per run


def input_change(rows, shard_size: int, recorded: dict[int, str]) -> str:
    """Where the input differs from the one a run started with: the first finished shard whose
    rows hash differs from the one recorded in its ``.done.json`` (``recorded``), else the
    rows outside the finished shards."""
    last = max(recorded, default=-1)
    seen = -1
    for k, chunk in enumerate(io.iter_chunks(rows, shard_size)):
        seen = k
        if k in recorded and integrity.rows_hash(chunk) != recorded[k]:
            return f"input rows of shard {k} (rows {chunk[0].row}-{chunk[-1].row})"
        if k >= last:
            break
    if seen < last:
        return f"input rows of shard {last} (the input now ends at shard {seen})"
    return "input rows outside the finished shards"


def check_input(out: Path, previous: dict[str, Any] | None, settings: dict[str, Any],
                input: str | Path, columns, shard_size: int) -> None:
    """Refuse a resume whose input file changed since the run started, naming the shard."""
    if previous is None or previous.get("input_sha256") == settings["input_sha256"]:
        return
    recorded = {}
    for k in shards.finished_shards(out):
        try:
            recorded[k] = shards.read_entry(out, k).get("rows_sha256")
        except (OSError, ValueError):
            continue  # a damaged .done.json: that shard is redone anyway
    where = input_change(io.iter_rows(input, columns), shard_size, recorded)
    raise JaxsimError(f"the input changed since the run in {out} started: {where} differ "
                      "(same path and size perhaps, other content): use another --out")


def start_output(out: Path, settings: dict[str, Any], resume: bool, owns: Callable[[int], bool],
                 check=lambda previous: None) -> set[int]:
    """Check ``out`` against this run (every process; ``check(previous run.json)`` adds the
    input check), write ``run.json`` (process 0), clear this process's stale temporaries and
    verify its committed shards; returns the finished shards (those that passed)."""
    previous = shards.check_run(out, settings, resume)
    check(previous)
    barrier("checked")  # nobody writes before everyone has checked
    if jax.process_index() == 0:
        shards.write_run(out, settings)
    barrier("started")
    (out / shards.SHARD_DIR).mkdir(parents=True, exist_ok=True)
    shards.remove_stale_temporaries(out, owns)
    return shards.verify_committed(out, owns)


def explain_and_commit(job: Job, shard: int, chunk: list[io.Row]) -> dict[str, Any]:
    """Check, explain and store one input shard; returns its committed manifest entry."""
    good, encoded, bad = compute.check_rows(job.model, chunk, job.truncate)
    results = compute.explain_shard(job.model, job.placed, good, encoded, method=job.method,
                                    options=job.options, batch_size=job.batch_size, cache=job.cache)
    records = [pair_record(job.store, p.row, p.text_a, p.text_b, r)
               for p, r in zip(good, results, strict=True)]
    errors = [{"id": b.row, "reason": b.reason, "detail": b.detail} for b in bad]
    entry = {"shard": shard, "first_row": chunk[0].row, "rows": len(chunk),
             "rows_sha256": integrity.rows_hash(chunk), "process": job.process, "errors": errors}
    return shards.commit_shard(job.out, entry, records)


def run(
    input: str | Path, out: str | Path, *, model=None, method: str = "bilrp",
    store: str | Store = "topk:10", batch_size: int | None = None, shard_size: int = 256,
    resume: bool = False, columns: tuple[str, str] | None = None, truncate: bool = False,
    similarity: str = "dot", mode: str = "auto", explain_input: str = "embedding",
    pooling: str | None = "mean", top_k: int = 2, ig_steps: int = 10,
    devices=None, multihost: bool = False, coordinator: str | None = None,
    num_processes: int | None = None, process_id: int | None = None,
    weights_dir: str | Path | None = None, progress: bool = True,
    on_shard: Callable[[dict[str, Any]], None] | None = None, length_classes: str = "auto",
    factor_cache_bytes: int = 2**30, precision: str = "fp32",
) -> CorpusSummary:
    """Explain every pair of ``input`` (TSV/JSONL/Parquet) into shard files under ``out``.

    model: a ``Model``, or a name/path for ``load_model`` (default: the embedded MiniLM).
    method: bilrp | hxp | embedding | bti (and its variants). store: full | words | topk:K.
    batch_size: texts per device step (rounded up to a multiple of the device count; default 8
    per device on the CPU, chosen per length class from the device's memory on a GPU/TPU for the
    token-pair methods: ``bilrp.memory_batch_size``).
    shard_size: input rows per output shard (memory ~ 2 * shard_size texts' r).
    resume: continue a killed run in the same ``out``; finished shards are skipped.
    truncate: cut texts longer than the model maximum (default: report them as bad rows).
    pooling: the pooling to explain (default mean, as ``jaxsim explain``; None = the model's).
    devices: local devices to use (an int takes the first n; default all).
    multihost: call ``jax.distributed.initialize`` first (coordinator / num_processes /
    process_id for processes started by hand); each process explains its own shards.
    on_shard: called with each committed shard's manifest entry.
    length_classes: token-pair methods pad texts to ``adaptive`` classes (chosen per shard against
    the compile cost, from this device's measured GEMM peak), ``fine`` classes (multiples of 4/8/16
    tokens), ``buckets`` (16, 32, 64, ...) or ``auto`` (adaptive from 64 texts a call on).
    factor_cache_bytes: token-pair methods keep computed factors up to this many bytes, so a text
    repeated anywhere in the run is computed once (0: only within a shard).
    precision: token-pair methods' matmuls, ``fp32`` (default), ``tf32`` or ``bf16``
    (``jaxsim.models.precision``: the GPU's fast path; emulated on the CPU, no faster there).
    """
    start = time.perf_counter()
    if multihost:  # before anything touches a device
        initialize_multihost(coordinator, num_processes, process_id)
    options = method_options(method, similarity=similarity, mode=mode, explain_input=explain_input,
                             top_k=top_k, ig_steps=ig_steps, truncate=truncate,
                             length_classes=length_classes, precision=precision)
    store = parse_store(store)
    io.iter_rows(input, columns)  # checks the file and its columns now, before loading the model
    out = Path(out)
    shards.read_run(out)  # refuse a folder that is not ours before writing anything in it
    # multi-host: no orbax cache (its writes would need coordinating across processes)
    model = load_run_model(model, pooling, weights_dir, use_cache=not multihost)
    settings = {"input": str(Path(input).resolve()), "input_bytes": Path(input).stat().st_size,
                "input_sha256": integrity.file_sha256(input),
                "columns": list(columns) if columns else None, "shard_size": shard_size,
                "method": method, "model": model.name, "pooling": model.pooling,
                "model_fingerprint": integrity.model_fingerprint(model),
                "store": str(store), "options": options}
    out.mkdir(parents=True, exist_ok=True)
    with shards.run_lock(out, jax.process_index()):
        return _run_locked(
            out, settings, input=input, columns=columns, model=model, method=method,
            store=store, options=options, batch_size=batch_size, shard_size=shard_size,
            resume=resume, truncate=truncate, devices=devices, progress=progress,
            on_shard=on_shard, start=start, factor_cache_bytes=factor_cache_bytes)


def _run_locked(out: Path, settings: dict[str, Any], *, input, columns, model, method: str,
                store: Store, options: dict[str, Any], batch_size: int | None, shard_size: int,
                resume: bool, truncate: bool, devices, progress: bool,
                on_shard: Callable[[dict[str, Any]], None] | None, start: float,
                factor_cache_bytes: int = 2**30) -> CorpusSummary:
    """``run`` once ``out`` is locked: check, explain the shards, write the manifest."""
    pid, pcount = jax.process_index(), jax.process_count()
    rows = io.iter_rows(input, columns)

    def owns(k: int) -> bool:
        return owns_shard(k, pid, pcount)

    finished = start_output(out, settings, resume, owns, check=lambda previous: check_input(
        out, previous, settings, input, columns, shard_size))
    mesh = data_mesh(devices)
    total = io.count_rows(input)
    done_rows = shard_rows_owned(total, shard_size, lambda k: owns(k) and k in finished)
    owned_rows = shard_rows_owned(total, shard_size, owns)
    token_pairs = method in bilrp.METHODS
    peak = gemm_peak_gflops(model.config) if token_pairs else None  # prices a compiled shape
    shards_left = -(-(owned_rows - done_rows) // shard_size)
    job = Job(out=out, model=model, placed=compute.place(model, mesh) if token_pairs else None,
              method=method, store=store, options={k: v for k, v in options.items() if k != "truncate"},
              batch_size=run_batch_size(batch_size, mesh, model.config if token_pairs else None),
              truncate=truncate, process=pid,
              cache=bilrp.FactorCache(factor_cache_bytes, class_cost=class_cost(model.config, peak),
                                      calls=shards_left) if token_pairs else None)
    counts: Counter = Counter()
    reasons: Counter = Counter()
    n_shards = 0
    with CompileClock() as clock, progress_bar(owned_rows, done_rows, f"corpus {method}",
                                               progress) as bar:
        for k, chunk in enumerate(io.iter_chunks(rows, shard_size)):
            n_shards = k + 1
            if not owns(k) or k in finished:
                counts["skipped"] += owns(k)
                continue
            entry = explain_and_commit(job, k, chunk)
            counts.update(written=1, pairs=entry["pairs"], errors=len(entry["errors"]))
            reasons.update(e["reason"] for e in entry["errors"])
            bar.update(len(chunk))
            bar.set_postfix(errors=counts["errors"], refresh=False)
            if on_shard is not None:
                on_shard(entry)
    barrier("finished")
    manifest = None
    if pid == 0:
        manifest = shards.write_manifest(out, n_shards, {
            "settings": settings, "process_count": pcount, "devices_per_process": mesh.size,
            "batch_size": job.batch_size if isinstance(job.batch_size, int) else "device memory"})
    work = None
    if job.cache is not None and job.cache.computed and method != "embedding":
        work = Work(texts=job.cache.computed, reused=job.cache.hits,
                    flops=2.0 * tangent_params(model.config) * job.cache.computed_tokens_squared,
                    gemm_peak_gflops=peak,
                    padded_flops=2.0 * tangent_params(model.config) * job.cache.padded_work,
                    lengths=len(job.cache.known_lengths))
    return CorpusSummary(
        out=out, pairs=counts["pairs"], errors=counts["errors"], work=work,
        errors_by_reason=dict(sorted(reasons.items())), shards_written=counts["written"],
        shards_skipped=counts["skipped"], seconds=time.perf_counter() - start,
        compile_seconds=clock.seconds, devices=mesh.size, process_index=pid,
        process_count=pcount, manifest=manifest,
    )
