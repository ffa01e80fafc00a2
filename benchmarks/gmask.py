"""GMASK/IMASK on a fine-tuned pair classifier: faithfulness tables vs the paper, and speed.

On the first ``--n`` MRPC test pairs (all of them, right or wrong, as the paper's §5.1), with the
MRPC fine-tune of ``benchmarks/train_recipe.py`` (all-MiniLM-L6-v2 cross-encoder):

- **metrics** (``jaxsim.evaluate.faithfulness``): AOPC (U = 10), degradation score and post-hoc
  accuracy (v = 1..10) for GMASK, IMASK (its own pre-selection run), GS, GI, LRP-0, LAT and
  random, next to the paper's BERT/MRPC numbers (METHODS.md §6.3);
- **speed**: pairs/s of the jitted, pair-batched GMASK (``--batch-size`` pairs per call; first
  pass incl. compilation, then a timed second pass of one batch), s/pair at batch 1, and the
  PyTorch twin of the reference loop (``benchmarks/gmask_torch.py``) on ``--twin-pairs`` pairs.

    python benchmarks/gmask.py --model out/mrpc-minilm --n 100
    python benchmarks/gmask.py --model out/mrpc-minilm --n 8 --samples 50 --steps 20   # quick, CPU
    python benchmarks/gmask.py --n 4 --batch-size 4 --samples 500 --steps 10 --single-pairs 2 \
        --twin-pairs 2 --speed-only --out benchmarks/results/gmask_speed_cpu.md   # CPU speed only

``--pack DIR`` writes a self-contained bundle (config, tokenizer, the n pairs, the params with only
the word-embedding rows those pairs use: exact for them) that ``--bundle DIR`` runs from, e.g. on
a GPU machine without the model folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "mrpc" / "test.tsv"
OUT = ROOT / "benchmarks" / "results" / "gmask.md"
BASELINES = ("gs", "gi", "lrp", "lat", "random")
#: [GMASK] Table 2 / Table 4, BERT on MRPC: (AOPC, degradation score).
PAPER_MRPC_BERT = {"gmask": (0.200, 0.533), "imask": (0.130, 0.251), "lime": (0.062, 0.018),
                   "l2x": (0.083, -0.003), "iba": (0.114, 0.050)}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


# --- bundle ------------------------------------------------------------------------------------

def _flatten(params: dict) -> dict[str, np.ndarray]:
    import jax

    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        key = "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)
        flat[key] = np.asarray(leaf)
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        parts = key.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def fix(node):
        if isinstance(node, dict):
            if node and all(k.isdigit() for k in node):
                return tuple(fix(node[k]) for k in sorted(node, key=int))
            return {k: fix(v) for k, v in node.items()}
        return node
    return fix(tree)


def pack(clf, model_dir: Path, pairs: list[tuple[str, str]], labels: list[str], out: Path,
         dtype: str = "float32") -> None:
    """``dtype="float16"`` halves the bundle (the device takes 64 MiB); ``load_bundle`` casts back to
    float32, so every framework then runs the same fp16-rounded weights."""
    out.mkdir(parents=True, exist_ok=True)
    flat = {k: v.astype(dtype) if v.dtype == np.float32 else v for k, v in _flatten(clf.params).items()}
    word = flat.pop("embeddings/word")
    used = sorted({int(t) for e in clf.encode(pairs) for t in e.ids} | {0, 100, 101, 102, 103})
    flat["word_rows"] = np.asarray(used, np.int64)
    flat["word_values"] = word[used]
    flat["word_shape"] = np.asarray(word.shape, np.int64)
    np.savez(out / "params.npz", **flat)
    for name in (*TOKENIZER_FILES, "config.json", "training.json"):
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, out / name)
    rows = ["sentence1\tsentence2\tlabel"]
    rows += [f"{a}\t{b}\t{y}" for (a, b), y in zip(pairs, labels, strict=True)]
    (out / "pairs.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (out / "labels.json").write_text(json.dumps(list(clf.labels)), encoding="utf-8")


def load_bundle(path: Path):
    import jax.numpy as jnp

    from jaxsim.classifier import Classifier, trained_max_length
    from jaxsim.model import Model
    from jaxsim.models.config import load_config
    from jaxsim.text import load_tokenizer

    flat = {k: v.astype(np.float32) if v.dtype == np.float16 else v
            for k, v in np.load(path / "params.npz").items()}
    word = np.zeros(tuple(flat.pop("word_shape")), np.float32)
    word[flat.pop("word_rows")] = flat.pop("word_values")
    flat["embeddings/word"] = word
    params = __import__("jax").tree.map(jnp.asarray, _unflatten(flat))
    config = load_config(path)
    max_length = trained_max_length(path) or config.max_position_embeddings
    model = Model(name="mrpc-minilm", config=config, params=params,
                  tokenizer=load_tokenizer(path, max_length), pooling="cls", normalize=False)
    return Classifier(model, tuple(json.loads((path / "labels.json").read_text())))


# --- runs --------------------------------------------------------------------------------------

def run_gmask(clf, encoded, settings, batch_size: int, seed: int):
    from jaxsim.explain.gmask import gmask_encoded

    start = time.perf_counter()
    out = gmask_encoded(clf, encoded, seed=seed, settings=settings, batch_size=batch_size, progress=True)
    first = time.perf_counter() - start
    # steady state: one full batch again (compiled)
    chunk = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))[-batch_size:]
    start = time.perf_counter()
    gmask_encoded(clf, [encoded[i] for i in chunk], seed=seed, settings=settings, batch_size=batch_size)
    steady = time.perf_counter() - start
    return out, first, steady, len(chunk)


def run_single(clf, encoded, settings, seed: int, pairs: int) -> tuple[float, float]:
    """(first call s incl. compile, mean s/pair of up to ``pairs`` more) at batch 1.

    The timed pairs share the first pair's length bucket, so they reuse its compilation (a pair of
    another bucket would time a compile too)."""
    from jaxsim.explain.gmask import gmask_encoded
    from jaxsim.text import bucket_length

    limit = clf.model.tokenizer.max_length
    bucket = bucket_length(len(encoded[0][0]), limit)
    same = [e for e in encoded[1:] if bucket_length(len(e[0]), limit) == bucket][:pairs] or encoded[:1]
    start = time.perf_counter()
    gmask_encoded(clf, encoded[:1], seed=seed, settings=settings, batch_size=1)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for e in same:
        gmask_encoded(clf, [e], seed=seed, settings=settings, batch_size=1)
    return first, (time.perf_counter() - start) / len(same)


def run_twin(clf, encoded, settings, pairs: int, device: str) -> float:
    import torch

    from benchmarks.gmask_torch import explain, torch_weights

    w = torch_weights(__import__("jax").device_get(clf.params), device)
    cfg = clf.config
    times = []
    for enc, seg in encoded[:pairs]:
        start = time.perf_counter()
        explain(w, enc.ids, enc.type_ids, seg, heads=cfg.num_heads, eps=cfg.layer_norm_eps, k=settings.k,
                samples=settings.samples, steps=settings.steps, imask_samples=settings.imask_samples,
                imask_steps=settings.imask_steps, device=device)
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.mean(times))


def machine() -> str:
    import jax

    dev = jax.devices()[0]
    text = (f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} on "
            f"{dev.platform.upper()} ({getattr(dev, 'device_kind', dev)})")
    if dev.platform == "cpu":
        text += " (machine shared with other jobs: absolute times vary with load)"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT.parent / "main" / "out" / "mrpc-minilm"))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--bundle", default=None, help="run from a --pack bundle instead of --model/--data")
    parser.add_argument("--pack", default=None, help="write a bundle for --n pairs and exit")
    parser.add_argument("--pack-dtype", default="float32", choices=("float32", "float16"),
                        help="weights dtype in the bundle (float16: half the size, cast back on load)")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--single-pairs", type=int, default=0, help="also time batch 1 on this many pairs")
    parser.add_argument("--twin-pairs", type=int, default=0, help="time the PyTorch twin on this many pairs")
    parser.add_argument("--twin-device", default="cpu")
    parser.add_argument("--speed-only", action="store_true",
                        help="time GMASK (and --single-pairs / --twin-pairs) only: no baselines, no metrics")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)

    from jaxsim.evaluate.faithfulness import evaluate_rankings, first_order_rankings
    from jaxsim.explain.gmask import GmaskSettings, content_ranking
    from jaxsim.train import read_pairs

    if args.bundle:
        clf = load_bundle(Path(args.bundle))
        data = read_pairs(Path(args.bundle) / "pairs.tsv")
    else:
        from jaxsim.classifier import load_classifier

        clf = load_classifier(args.model)
        data = read_pairs(args.data)
    pairs = data.pairs[: args.n]
    if args.pack:
        pack(clf, Path(args.model), pairs, [data.label_names[y] for y in data.labels[: args.n]],
             Path(args.pack), args.pack_dtype)
        print(f"wrote bundle {args.pack}")
        return 0
    settings = GmaskSettings(samples=args.samples, steps=args.steps)
    encoded = [clf.model.tokenizer.encode_pair(a, b) for a, b in pairs]
    lengths = [len(e) for e, _ in encoded]

    outputs, first, steady, steady_n = run_gmask(clf, encoded, settings, args.batch_size, args.seed)
    rankings = {"gmask": [content_ranking(o, "gmask", s) for o, (_, s) in zip(outputs, encoded, strict=True)],
                "imask": [content_ranking(o, "imask", s) for o, (_, s) in zip(outputs, encoded, strict=True)]}
    result, baseline_s, metrics_s = None, None, None
    if not args.speed_only:
        start = time.perf_counter()
        rankings |= first_order_rankings(clf, [e for e, _ in encoded], [s for _, s in encoded], BASELINES,
                                         batch_size=args.batch_size)
        baseline_s = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_rankings(clf, [e for e, _ in encoded], rankings, batch_size=64, progress=True)
        metrics_s = time.perf_counter() - start
    accuracy = float(np.mean(np.asarray([o["predicted"] for o in outputs]) == data.labels[: args.n]))

    report = functools.partial(write_report, args, clf, settings, pairs, lengths, accuracy, result,
                               (first, steady, steady_n, baseline_s, metrics_s))
    report(None, None)  # written now, rewritten with the slower timings below
    single = run_single(clf, encoded, settings, args.seed, args.single_pairs) if args.single_pairs else None
    report(single, None)
    twin = run_twin(clf, encoded, settings, args.twin_pairs, args.twin_device) if args.twin_pairs else None
    report(single, twin)
    return 0


def write_report(args, clf, settings, pairs, lengths, accuracy, result, times, single, twin) -> None:
    first, steady, steady_n, baseline_s, metrics_s = times
    passes = settings.imask_steps * settings.imask_samples + settings.steps * settings.samples
    lines = [
        "# GMASK / IMASK on the MRPC fine-tune (`benchmarks/gmask.py`)", "",
        f"{datetime.date.today().isoformat()}; machine: {machine()}.", "",
        f"Model `{clf.name}` (all-MiniLM-L6-v2 cross-encoder fine-tuned on MRPC, 6 layers, d = 384); "
        f"the first **n = {len(pairs)}** MRPC test pairs (all, right or wrong; accuracy on them "
        f"{accuracy:.3f}), {np.mean(lengths):.1f} word-pieces per pair on average. GMASK settings: "
        f"{settings.samples} samples x {settings.steps} steps (IMASK {settings.imask_samples} x "
        f"{settings.imask_steps}), k = {settings.k}, seed {args.seed} per pair"
        + (" — the reference's settings." if (settings.samples, settings.steps) == (500, 100)
           else " — **reduced** from the reference's 500 x 100 to fit the machine.") + "",
        "",
    ]
    if result is not None:
        lines += [
            "## Faithfulness (higher is better), next to the paper's BERT / MRPC numbers", "",
            "Removal = word-pieces deleted (positions renumbered, [CLS]/[SEP] kept). The paper's model "
            "is a fine-tuned BERT-base (83.7 % MRPC test accuracy) on all 1725 test pairs; LIME, L2X and "
            "IBA (paper only): AOPC 0.062 / 0.083 / 0.114, degradation 0.018 / -0.003 / 0.050.", "",
            result.to_markdown({k: v for k, v in PAPER_MRPC_BERT.items() if k in ("gmask", "imask")}),
        ]
    lines += [
        "## Speed", "",
        "| what | value |", "|---|---|",
        f"| GMASK, all {len(pairs)} pairs in batches of {args.batch_size}, first pass incl. compilation "
        f"| {first:.1f} s ({len(pairs) / first:.2f} pairs/s) |",
        f"| GMASK, one compiled batch of {steady_n} pairs | {steady:.2f} s "
        f"(**{steady_n / steady:.2f} pairs/s**, {steady / steady_n:.2f} s/pair) |",
        f"| model passes per pair (sequences, forward + backward) | {passes} |",
    ]
    if result is not None:
        lines += [f"| baselines GS/GI/LRP/LAT (+random) on all pairs | {baseline_s:.1f} s |",
                  f"| metrics (all methods, {len(pairs)} pairs) | {metrics_s:.1f} s |"]
    if single:
        lines.append(f"| GMASK at batch 1: first call (compile) / s per pair | {single[0]:.1f} s / "
                     f"**{single[1]:.2f} s** |")
    if twin is not None:
        lines.append(f"| PyTorch twin of the reference loop ({args.twin_device}, batch 1, {args.twin_pairs} "
                     f"pairs) | **{twin:.2f} s/pair** |")
        lines.append(f"| jaxsim batched / twin | {twin / (steady / steady_n):.1f}x |")
        if single:
            lines.append(f"| jaxsim batch 1 / twin | {twin / single[1]:.1f}x |")
    lines += ["| paper, GMASK-BERT on MRPC (GTX 1080, BERT-base) | 42.84 s/example |", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"metrics": result.to_dict() if result is not None else None,
         "settings": dataclasses.asdict(settings), "n": len(pairs),
         "first_pass_s": first, "steady_s": steady, "steady_pairs": steady_n, "single": single,
         "twin_s_per_pair": twin, "accuracy": accuracy, "machine": machine()}, indent=1) + "\n",
        encoding="utf-8")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
