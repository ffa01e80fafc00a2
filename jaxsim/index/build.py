"""``jaxsim.index.build``: stream documents into a search index of embeddings and BiLRP factors.

BiLRP's token-pair relevance factorises, ``R(q, d) = r(q)ᵀ r(d)`` with ``r(x): f32[h, n]`` of one
text only (``jaxsim.explain.bilrp``), so an index computes each document's ``r(d)`` and ``φ(d)``
once and a search explains its hits from them. The build is the corpus runner's machinery on
single documents: input read in shards of ``shard_size`` rows, never whole; each shard's texts
checked (``jaxsim.corpus.compute.encode_checked``), their factors computed in length-classed
batches split over a ``data`` mesh (``bilrp.text_relevances`` with a ``Placement``), then committed
atomically (``jaxsim.index.store``); a killed build resumes with ``resume=True``; bad rows are
reported; the index records the model's fingerprint, pooling and similarity.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.corpus import integrity, shards
from jaxsim.corpus.compute import encode_checked
from jaxsim.corpus.io import BadRow, iter_chunks
from jaxsim.corpus.progress import CompileClock, progress_bar
from jaxsim.corpus.runner import load_run_model, shard_rows_owned
from jaxsim.corpus.sharding import (
    barrier,
    data_mesh,
    initialize_multihost,
    owns_shard,
    run_batch_size,
    shard_rows,
)
from jaxsim.errors import JaxsimError, OptionError
from jaxsim.explain import bilrp
from jaxsim.explain.cost import class_cost, gemm_peak_gflops
from jaxsim.index import store
from jaxsim.index.docs import Doc, DocRow, count_docs, docs_from_texts, iter_docs
from jaxsim.models import pooled_embeddings
from jaxsim.models.placement import Placement, place_params
from jaxsim.text import BatchSize, Encoded, map_encoded

if TYPE_CHECKING:
    from jaxsim.model import Model

SIMILARITIES = ("auto", "dot", "cosine")
FP16_MAX = float(np.finfo(np.float16).max)


def resolve_similarity(model: Model, similarity: str = "auto") -> str:
    """``auto`` -> ``cosine`` when the model normalises its embeddings, else ``dot``."""
    if similarity not in SIMILARITIES:
        raise OptionError(f"unknown similarity {similarity!r}: choose auto, dot or cosine")
    if similarity == "auto":
        return "cosine" if model.normalize else "dot"
    return similarity


def factor_dtype(factors: str):
    if factors not in store.FACTOR_DTYPES:
        raise OptionError(f"unknown factors {factors!r}: choose fp16, fp32 or none")
    return store.FACTOR_DTYPES[factors]


def doc_record(doc: Doc, encoded: Encoded, with_tokens: bool) -> dict[str, Any]:
    """A document's line of ``docs.jsonl``: what a search shows, and (``with_tokens``) what
    ``Encoded`` needs to explain it (``jaxsim.index.search.stored_encoding``)."""
    record: dict[str, Any] = {"row": doc.row, "id": doc.id, "text": doc.text}
    if with_tokens:
        record.update(ids=encoded.ids.tolist(), tokens=list(encoded.tokens), words=list(encoded.words),
                      word_ids=encoded.word_ids.tolist(),
                      special=np.flatnonzero(encoded.special).tolist(),
                      truncated=encoded.truncated)
    return record


def embed_encoded(model: Model, encoded: Sequence[Encoded], batch_size: int,
                  placement: Placement | None = None) -> list[np.ndarray]:
    """Pooled embeddings ``φ f32[h]`` per text, in length-classed batches with no all-padding
    rows (a single query is one row), batch rows split over ``placement``'s mesh if given."""
    params, pool_params = (placement.params, placement.pool_params) if placement else (
        model.params, model.pool_params)

    def compute(batch):
        ids, types, mask = (shard_rows(batch, placement.mesh) if placement
                            else [jnp.asarray(a) for a in batch])
        return pooled_embeddings(params, pool_params, ids, types, mask, config=model.config,
                                 pooling=model.pooling)

    return map_encoded(
        encoded, batch_size=batch_size, max_length=model.tokenizer.max_length,
        pad_id=model.tokenizer.pad_token_id, compute=compute, unpack=lambda host, row, i: host[row],
        fill=False, multiple_of=placement.mesh.size if placement else 1,
        length_classes=bilrp.resolve_length_classes("auto", len(encoded)),
    )


def shard_arrays(phis: Sequence[np.ndarray], factors: Sequence[np.ndarray] | None, dtype,
                 h: int) -> dict[str, np.ndarray]:
    """``emb f32[m, h]``, ``offsets i64[m + 1]`` and (with factors) ``factors dtype[T, h]``: each
    ``r(d) f32[h, n]`` stored token-major, document j at rows ``offsets[j]:offsets[j + 1]``."""
    emb = np.asarray(phis, np.float32).reshape(len(phis), h)
    if factors is None:
        return {"emb": emb, "offsets": np.zeros(len(phis) + 1, np.int64)}
    lengths = [r.shape[1] for r in factors]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    stacked = (np.concatenate([np.asarray(r).T for r in factors]) if factors
               else np.zeros((0, h), np.float32))
    if dtype == np.float16 and stacked.size and float(np.abs(stacked).max()) > FP16_MAX:
        raise JaxsimError(f"BiLRP factors reach {float(np.abs(stacked).max()):.3g}, beyond float16 "
                          "(65504): build the index with --factors fp32")
    return {"emb": emb, "factors": stacked.astype(dtype), "offsets": offsets}


@dataclasses.dataclass(frozen=True)
class BuildJob:
    """What every shard needs, fixed for the build."""

    out: Path
    model: Any
    placed: Placement
    dtype: Any
    mode: str
    batch_size: BatchSize
    truncate: bool
    process: int
    cache: bilrp.FactorCache | None


def index_shard(job: BuildJob, shard: int, chunk: list[DocRow]) -> dict[str, Any]:
    """Check, embed, factor and commit one input shard; returns its committed entry."""
    good: list[tuple[Doc, Encoded]] = []
    bad: list[BadRow] = []
    for row in chunk:
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        encoded = encode_checked(job.model, row.text, job.truncate)
        if isinstance(encoded, tuple):
            bad.append(BadRow(row.row, *encoded))
        else:
            good.append((row, encoded))
    encs = [e for _, e in good]
    h = job.model.config.hidden_size
    if job.dtype is None:
        phis = embed_encoded(job.model, encs, job.batch_size, job.placed) if encs else []
        arrays = shard_arrays(phis, None, None, h)
    else:
        pairs = bilrp.text_relevances(
            job.model, encs, method="bilrp", mode=job.mode, batch_size=job.batch_size,
            placement=job.placed, cache=job.cache) if encs else []
        arrays = shard_arrays([phi for _, phi in pairs], [r for r, _ in pairs], job.dtype, h)
    records = [doc_record(d, e, job.dtype is not None) for d, e in good]
    entry = {"shard": shard, "first_row": chunk[0].row, "rows": len(chunk), "docs": len(good),
             "tokens": int(sum(len(e) for e in encs)), "rows_sha256": integrity.rows_hash(chunk),
             "process": job.process,
             "errors": [{"row": b.row, "reason": b.reason, "detail": b.detail} for b in bad]}
    return store.commit_shard(job.out, entry, arrays, records)


@dataclasses.dataclass(frozen=True)
class BuildSummary:
    """What one process did in one build; ``record`` (process 0) is the final ``index.json``."""

    out: Path
    docs: int
    errors: int
    errors_by_reason: dict[str, int]
    shards_written: int
    shards_skipped: int
    seconds: float
    compile_seconds: float
    devices: int
    process_index: int = 0
    process_count: int = 1
    record: dict[str, Any] | None = None

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in self.errors_by_reason.items())
        lines = [f"{self.docs} documents indexed, {self.errors} bad rows"
                 + (f" ({reasons})" if reasons else "")
                 + f"; {self.shards_written} shards written, {self.shards_skipped} already committed",
                 f"time {self.seconds:.1f} s (compile {self.compile_seconds:.1f} s), "
                 f"{self.docs_per_second:.1f} docs/s on {self.devices} device"
                 + ("s" if self.devices > 1 else "")]
        if self.record is not None:
            r = self.record
            state = "complete" if r["complete"] else "INCOMPLETE (run again with --resume)"
            per_doc = r["bytes"] / r["docs"] if r["docs"] else 0.0
            lines.append(f"index {state}: {r['docs']} documents in {r['finished_shards']} shards, "
                         f"{r['bytes'] / 2**20:.1f} MiB ({per_doc:.0f} bytes per document, factors "
                         f"{r['factors']}), {r['errors']} bad rows in {self.out / store.ERRORS_FILE}")
        return "\n".join(lines)


def model_path(model: Model) -> str | None:
    """Where ``load_model`` finds the model again (None: not from a folder)."""
    return str(model.source.root) if model.source is not None else None


def build(
    docs: str | Path | Iterable[str | dict], out: str | Path, *, model=None,
    factors: str = "fp16", shard_size: int = 1024, resume: bool = False,
    batch_size: int | None = None, devices=None, multihost: bool = False,
    coordinator: str | None = None, num_processes: int | None = None,
    process_id: int | None = None, truncate: bool = False, similarity: str = "auto",
    mode: str = "auto", pooling: str | None = None, weights_dir: str | Path | None = None,
    progress: bool = True, on_shard: Callable[[dict[str, Any]], None] | None = None,
    factor_cache_bytes: int = 2**28,
) -> BuildSummary:
    """Index ``docs`` (a ``.txt``/``.jsonl``/``.parquet`` file, or texts / ``{"text", "id"}``
    dicts) into the folder ``out``.

    model: a ``Model`` or a name/path for ``load_model`` (default: the embedded MiniLM), with its
    own pooling unless ``pooling``. factors: ``fp16`` | ``fp32`` | ``none`` (embeddings only; a
    search then computes r(d) of its hits). similarity: ``auto`` (cosine when the model
    normalises), ``dot`` or ``cosine``. shard_size: documents per shard, the unit of resume.
    batch_size: texts per device step (default 8 per device; with factors on a GPU/TPU, per
    length class from the device's memory: ``bilrp.memory_batch_size``). truncate: cut documents longer than
    the model maximum (default: report them as bad rows). devices / multihost / coordinator /
    num_processes / process_id: as ``jaxsim.corpus.run``. on_shard: called per committed shard.
    """
    start = time.perf_counter()
    if multihost:
        initialize_multihost(coordinator, num_processes, process_id)
    dtype = factor_dtype(factors)
    if mode not in bilrp.MODES:
        raise OptionError(f"unknown mode {mode!r}: choose one of {', '.join(bilrp.MODES)}")
    if shard_size < 1:
        raise OptionError(f"shard size must be >= 1, got {shard_size}")
    from_file = isinstance(docs, str | Path)
    if from_file:
        iter_docs(docs)  # checks the format and the file before the model loads
        rows: Callable[[], Iterator[DocRow]] = lambda: iter_docs(docs)  # noqa: E731
    else:
        listed = docs_from_texts(docs)
        rows = lambda: iter(listed)  # noqa: E731
    out = Path(out)
    store.read_index(out)  # refuse a folder that is not ours before writing anything in it
    model = load_run_model(model, pooling, weights_dir, use_cache=not multihost)
    settings = {
        "input": str(Path(docs).resolve()) if from_file else "<python sequence>",
        "input_sha256": integrity.file_sha256(docs) if from_file else integrity.rows_hash(listed),
        "shard_size": shard_size, "model": model.name, "model_path": model_path(model),
        "pooling": model.pooling, "normalize": model.normalize,
        "similarity": resolve_similarity(model, similarity), "factors": factors,
        "hidden_size": model.config.hidden_size,
        "model_fingerprint": integrity.model_fingerprint(model),
        "options": {"method": "bilrp", "mode": mode, "truncate": truncate,
                    "explain_input": "embedding"},
    }
    out.mkdir(parents=True, exist_ok=True)
    total = count_docs(docs) if from_file else len(listed)
    with shards.run_lock(out, jax.process_index(), what="jaxsim index build"):
        return _build_locked(out, settings, rows(), total, model=model, dtype=dtype, mode=mode,
                             batch_size=batch_size, devices=devices, truncate=truncate,
                             resume=resume, progress=progress, on_shard=on_shard, start=start,
                             factor_cache_bytes=factor_cache_bytes)


def _build_locked(out: Path, settings: dict[str, Any], rows: Iterator[DocRow], total: int, *,
                  model, dtype, mode: str, batch_size: int | None, devices, truncate: bool,
                  resume: bool, progress: bool, on_shard, start: float,
                  factor_cache_bytes: int) -> BuildSummary:
    pid, pcount = jax.process_index(), jax.process_count()
    shard_size = settings["shard_size"]

    def owns(k: int) -> bool:
        return owns_shard(k, pid, pcount)

    store.check_build(out, settings, resume)
    barrier("index-checked")
    if pid == 0:
        store.write_index(out, {**settings, "complete": False})
    barrier("index-started")
    (out / shards.SHARD_DIR).mkdir(parents=True, exist_ok=True)
    shards.remove_stale_temporaries(out, owns)
    finished = store.verify_committed(out, owns)
    mesh = data_mesh(devices)
    owned = shard_rows_owned(total, shard_size, owns)
    done_rows = shard_rows_owned(total, shard_size, lambda k: owns(k) and k in finished)
    shards_left = -(-(owned - done_rows) // shard_size)
    job = BuildJob(out=out, model=model, placed=place_params(model.params, model.pool_params, mesh),
                   dtype=dtype, mode=mode,
                   batch_size=run_batch_size(batch_size, mesh, model.config if dtype is not None else None),
                   truncate=truncate, process=pid,
                   cache=bilrp.FactorCache(factor_cache_bytes, class_cost=class_cost(
                       model.config, gemm_peak_gflops(model.config)), calls=shards_left)
                   if dtype is not None else None)
    counts: Counter = Counter()
    reasons: Counter = Counter()
    n_shards = 0
    with CompileClock() as clock, progress_bar(owned, done_rows, "index", progress, "doc") as bar:
        for k, chunk in enumerate(iter_chunks(rows, shard_size)):
            n_shards = k + 1
            if not owns(k) or k in finished:
                counts["skipped"] += owns(k)
                continue
            entry = index_shard(job, k, chunk)
            counts.update(written=1, docs=entry["docs"], errors=len(entry["errors"]))
            reasons.update(e["reason"] for e in entry["errors"])
            bar.update(len(chunk))
            if on_shard is not None:
                on_shard(entry)
    barrier("index-finished")
    record = None
    if pid == 0:
        record = store.finish(out, settings, n_shards, {"process_count": pcount,
                                                         "devices_per_process": mesh.size})
    return BuildSummary(
        out=out, docs=counts["docs"], errors=counts["errors"],
        errors_by_reason=dict(sorted(reasons.items())), shards_written=counts["written"],
        shards_skipped=counts["skipped"], seconds=time.perf_counter() - start,
        compile_seconds=clock.seconds, devices=mesh.size, process_index=pid,
        process_count=pcount, record=record,
    )
