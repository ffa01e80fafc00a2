"""BiLRP over a whole corpus against the machine's GEMM peak: useful FLOPs, achieved rate, waste.

Useful work (``jaxsim.explain.cost.useful_flops``): each *distinct* text of n tokens (specials
included) costs n tangent passes over n positions through the tangent-carrying weights (V, O and
the MLP under the detached softmax), 2 n² x 8.85 MFLOP for all-MiniLM-L6-v2. Everything else —
padding tokens and their tangent passes, texts recomputed because they repeat across shards, the
primal pass, attention mixing, host work, per-batch overhead — is waste against that count.

1. GEMM peak: a jitted float32 matmul of the model's MLP shape (8192 x d @ d x f), the best of 5
   calls, measured at the start and at the end of the run (the larger is the peak).
2. Corpus runs (``jaxsim.corpus.run``, BiLRP, mean pooling, dot, ``--store topk:10``, 1 device,
   default batch), one fresh subprocess per variant, in this order:
   - ``before``: length buckets 16/32/64/..., factors kept per shard only (``factor_cache_bytes=0``);
   - ``fine``: fine length classes (multiples of 4/8/16) and one factor cache for the run;
   - ``after``: ``auto`` length classes (adaptive: chosen per shard against the compile cost at
     the measured GEMM peak) and one factor cache for the run.
   Each gives wall seconds (compile included and also given alone), GFLOP/s of useful work and
   its fraction of the peak, and R agreement with the first variant (max over pairs of
   max|R - R_before| / max|R_before|).
3. Roofline: seconds per text of ``token_relevance`` (forward engine, batch 8, fine lengths) for
   n = 8 ... 128 tokens against the n² model ``2 n² P / peak``: ``--plot``.

    python benchmarks/roofline.py --data $DATA/stsb_en --pairs 1000
    python benchmarks/roofline.py --data $DATA/stsb_en            # all 8,628 STSb pairs
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` and ``jaxsim`` importable
    sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "roofline.md"
VARIANTS = {
    "before": dict(length_classes="buckets", factor_cache_bytes=0),
    "fine": dict(length_classes="fine", factor_cache_bytes=2**30),
    "after": dict(length_classes="auto", factor_cache_bytes=2**30),  # adaptive classes
}


def stsb_pairs(data: Path, n: int | None) -> list[tuple[str, str]]:
    """train, dev and test pairs of the STSb folder (TSV with sentence1/sentence2), in that order."""
    pairs: list[tuple[str, str]] = []
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        with open(data / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                pairs.append((row["sentence1"], row["sentence2"]))
    return pairs[:n] if n else pairs


def gemm_peak(config) -> float:
    from jaxsim.explain.cost import gemm_peak_gflops

    return gemm_peak_gflops(config)


def worker(source: str, out: str, variant: str) -> None:
    """Subprocess body: one corpus run; prints its summary as JSON."""
    from jaxsim.corpus import run

    summary = run(source, out, store="topk:10", pooling="mean", progress=False, **VARIANTS[variant])
    work = summary.work
    print(json.dumps({"seconds": summary.seconds, "compile_seconds": summary.compile_seconds,
                      "pairs": summary.pairs, "errors": summary.errors,
                      "padding": work.padded_flops / work.flops - 1 if work and work.padded_flops else None,
                      "lengths": work.lengths if work else None}))


def run_variant(source: Path, out: Path, variant: str) -> dict:
    env = {**os.environ, "JAXSIM_COMPILE_CACHE": "off"}
    done = subprocess.run([sys.executable, __file__, "--worker", variant, str(source), str(out)],
                          env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"variant {variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def top_relevances(out: Path) -> dict[int, dict]:
    from jaxsim.corpus import iter_records

    return {r["id"]: r for r in iter_records(out)}


def agreement(records: dict[int, dict], reference: dict[int, dict]) -> float:
    """Max over pairs of the largest |difference| of the stored top-k token relevances, relative to
    the pair's largest |relevance| (the same token pairs are selected up to ties)."""
    worst = 0.0
    for key, ref in reference.items():
        got = records[key]
        a = np.asarray([p["relevance"] for p in ref["top_tokens"]], np.float64)
        b = np.asarray([p["relevance"] for p in got["top_tokens"]], np.float64)
        worst = max(worst, float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)))
    return worst


def per_length_seconds(model, lengths: list[int], batch: int = 8, repeats: int = 3) -> list[float]:
    """Seconds per text of the forward engine on ``batch`` texts of exactly n tokens."""
    import jax.numpy as jnp

    from jaxsim.explain import bilrp
    from jaxsim.explain.rules import composite

    h = model.config.hidden_size
    out = []
    rng = np.random.default_rng(0)
    for n in lengths:
        ids = rng.integers(1000, 2000, (batch, n)).astype(np.int32)
        ids[:, 0], ids[:, -1] = 101, 102
        arrays = (jnp.asarray(ids), jnp.zeros((batch, n), jnp.int32), jnp.ones((batch, n), bool))

        def call(arrays=arrays, n=n):
            r, _ = bilrp.token_relevance(model.params, None, *arrays, config=model.config, pooling="mean",
                                         ops=composite("lrp"), mode="forward",
                                         chunk_size=bilrp.default_chunk_size("forward", n, h))
            r.block_until_ready()

        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        out.append(min(times) / batch)
    return out


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[3:5], sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the STSb folder (train/dev/test.tsv)")
    parser.add_argument("--pairs", type=int, default=None, help="the first N pairs (default: all)")
    parser.add_argument("--variants", default="before,after")
    parser.add_argument("--roofline-lengths", default="8,12,16,20,24,32,40,48,64,80,96,128")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--plot", type=Path, default=None,
                        help="PNG of the roofline (default: next to --out)")
    args = parser.parse_args(argv)

    import jax

    import jaxsim
    from jaxsim.explain import cost

    model = jaxsim.load_model()
    pairs = stsb_pairs(args.data, args.pairs)
    texts = sorted({t for pair in pairs for t in pair})
    lengths = [len(e) for e in model.tokenizer.encode_for_embedding(texts)]
    useful = sum(cost.useful_flops(model.config, n) for n in lengths)
    start_load, peaks = os.getloadavg(), [gemm_peak(model.config)]

    results: dict[str, dict] = {}
    records: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pairs.tsv"
        source.write_text("sentence1\tsentence2\n" + "".join(
            f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
        for variant in args.variants.split(","):
            out = Path(tmp) / variant
            results[variant] = run_variant(source, out, variant)
            records[variant] = top_relevances(out)
            print(f"{variant}: {results[variant]}", file=sys.stderr)
    peaks.append(gemm_peak(model.config))
    peak = max(peaks)
    roof_lengths = [int(n) for n in args.roofline_lengths.split(",")]
    seconds = per_length_seconds(model, roof_lengths)
    end_load = os.getloadavg()

    first = next(iter(records))
    lines = [
        "# BiLRP over a corpus against the GEMM peak", "",
        f"Generated by `python benchmarks/roofline.py --data .../stsb_en"
        f"{f' --pairs {args.pairs}' if args.pairs else ''} --variants {args.variants}`, "
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}.", "",
        "## Machine", "", "| | |", "|---|---|",
        f"| cpu | {platform.processor() or platform.machine()} ({os.cpu_count()} cores) |",
        f"| jax | {jax.__version__} ({jax.default_backend()}) |",
        f"| load average 1/5/15 (start; end) | {' / '.join(f'{x:.2f}' for x in start_load)}; "
        f"{' / '.join(f'{x:.2f}' for x in end_load)} |",
        f"| float32 GEMM peak (MLP shape 8192 x {model.config.hidden_size} @ "
        f"{model.config.hidden_size} x {model.config.intermediate_size}, start / end) | "
        f"{peaks[0]:.0f} / {peaks[1]:.0f} GFLOP/s |", "",
        "## The job", "",
        f"{len(pairs)} STSb pairs (train, dev, test in that order), {len(texts)} distinct texts, "
        f"mean {np.mean(lengths):.1f} tokens (specials included); useful work "
        f"{useful / 1e12:.2f} TFLOP = {useful / (peak * 1e9):.0f} s at the peak. all-MiniLM-L6-v2, BiLRP, "
        "mean pooling, dot product, `--store topk:10`, 1 device, default batch, shards of 256.", "",
        "| variant | length classes | factors kept | seconds (compile) | padded lengths | padding work | "
        "pairs/s | useful GFLOP/s | % of peak | max rel diff of top-10 R vs first |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, result in results.items():
        settings = VARIANTS[variant]
        rate = useful / result["seconds"] / 1e9
        diff = agreement(records[variant], records[first]) if variant != first else 0.0
        padding = "-" if result.get("padding") is None else f"+{100 * result['padding']:.1f} %"
        lines.append(
            f"| {variant} | {settings['length_classes']} | "
            f"{'the run' if settings['factor_cache_bytes'] else 'a shard'} | "
            f"{result['seconds']:.1f} ({result['compile_seconds']:.1f}) | {result.get('lengths') or '-'} | "
            f"{padding} | "
            f"{result['pairs'] / result['seconds']:.2f} | {rate:.1f} | {100 * rate / peak:.0f} % | "
            f"{diff:.1e} |")
    model_seconds = [cost.useful_flops(model.config, n) / (peak * 1e9) for n in roof_lengths]
    lines += [
        "", "## Roofline: seconds per text vs tokens", "",
        "Forward engine (`token_relevance`), batch of 8 texts of exactly n tokens, best of 3; the "
        "model is the useful work at the measured peak, 2 n² P / peak.", "",
        "| n | s / text | n² model at peak | fraction of peak |", "|---|---|---|---|",
        *[f"| {n} | {s:.4f} | {m:.4f} | {100 * m / s:.0f} % |"
          for n, s, m in zip(roof_lengths, seconds, model_seconds, strict=True)],
    ]
    plot = args.plot or args.out.with_suffix(".png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(roof_lengths, seconds, "o-", label="measured (forward engine, batch 8)")
        ax.plot(roof_lengths, model_seconds, "--", label=f"n² model at the GEMM peak ({peak:.0f} GFLOP/s)")
        ax.set_xlabel("tokens n (specials included)")
        ax.set_ylabel("seconds per text")
        ax.set_title("BiLRP, all-MiniLM-L6-v2: time per text vs the n² roofline", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        plt.close(fig)
        lines += ["", f"![roofline]({plot.name})"]
    except ImportError:
        pass
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
