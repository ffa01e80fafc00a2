"""Recipe: fine-tune the embedded all-MiniLM-L6-v2 as a cross-encoder on MRPC or the SNLI sample.

    python benchmarks/train_recipe.py --task mrpc     # ../shared/data/mrpc/{train,test}.tsv
    python benchmarks/train_recipe.py --task snli     # ../shared/data/snli/test_sample5000.tsv

Splits (seeded, deterministic):
- MRPC: the original train file (4076 pairs) -> 3668 train / 408 dev (the GLUE sizes; our own
  seeded hold-out, not GLUE's id list); the original test file (1725 pairs) is the test set.
- SNLI: only a 5000-pair sample of the SNLI test split is staged -> 3500 train / 500 dev / 1000 test.

Writes the classifier to ``--out`` (``model.safetensors`` = best dev epoch, ``checkpoints/`` for
resuming, ``training.json``) and appends one row to ``benchmarks/results/classifier_recipes.md``
with dev/test accuracy, the majority-class baseline, the settings and the wall time. The run is
resumable: re-running the same command after an interruption continues from the last checkpoint.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "classifier_recipes.md"


def load_task(task: str, data_dir: Path, seed: int):
    from jaxsim.train import read_pairs, split

    if task == "mrpc":
        full = read_pairs(data_dir / "mrpc" / "train.tsv")
        train, dev = split(full, 408 / len(full), seed)
        test = read_pairs(data_dir / "mrpc" / "test.tsv", full.label_names)
    elif task == "snli":
        full = read_pairs(data_dir / "snli" / "test_sample5000.tsv")
        rest, test = split(full, 0.2, seed)
        train, dev = split(rest, 500 / len(rest), seed + 1)
    else:
        raise SystemExit(f"unknown task {task!r}")
    return train, dev, test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["mrpc", "snli"], default="mrpc")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None, help="default: out/<task>-minilm")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from jaxsim.classifier import load_classifier
    from jaxsim.train import TrainConfig, train

    out = args.out or ROOT / "out" / f"{args.task}-minilm"
    train_data, dev_data, test_data = load_task(args.task, args.data, args.seed)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                         dropout=args.dropout, max_length=args.max_length, seed=args.seed,
                         patience=args.patience)
    started = time.perf_counter()
    result = train(None, train_data, dev_data, out, config, resume=not args.no_resume)
    train_seconds = time.perf_counter() - started
    clf = load_classifier(out, max_length=args.max_length)
    started = time.perf_counter()
    test_accuracy = clf.accuracy(test_data, batch_size=64)
    test_seconds = time.perf_counter() - started
    summary = json.loads((out / "training.json").read_text())
    row = {
        "date": datetime.date.today().isoformat(), "task": args.task,
        "sizes": f"{len(train_data)}/{len(dev_data)}/{len(test_data)}",
        "settings": f"{args.epochs} ep, bs {args.batch_size}, len {args.max_length}, lr {args.lr:g}, "
                    f"dropout {args.dropout:g}, seed {args.seed}",
        "best_epoch": result.best_epoch, "dev": result.best_accuracy, "test": test_accuracy,
        "majority_test": test_data.majority_accuracy(), "stopped": result.stopped,
        "steps": result.steps, "train_s": train_seconds, "steps_this_run": summary["steps_this_run"],
        "test_s": test_seconds,
    }
    print(json.dumps(row, indent=2))
    write_row(args.results, row)
    return 0


def write_row(path: Path, row: dict) -> None:
    header = (
        "# Fine-tuning recipes: all-MiniLM-L6-v2 cross-encoder (`benchmarks/train_recipe.py`)\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs: wall "
        "times vary with load), jax CPU. `train s` covers this invocation's steps "
        "(compilation and dev evaluation included); a resumed run reports only its own part.\n\n"
        "| date | task | train/dev/test | settings | best epoch | dev acc | test acc | majority (test) "
        "| stopped | steps | train s (steps) | test s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    line = (
        f"| {row['date']} | {row['task']} | {row['sizes']} | {row['settings']} | {row['best_epoch']} "
        f"| {row['dev']:.4f} | {row['test']:.4f} | {row['majority_test']:.4f} | {row['stopped']} "
        f"| {row['steps']} | {row['train_s']:.0f} ({row['steps_this_run']}) | {row['test_s']:.0f} |\n"
    )
    text = path.read_text() if path.is_file() else header
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + line)


if __name__ == "__main__":
    sys.exit(main())
