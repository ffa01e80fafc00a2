"""``jaxsim corpus``: explain every pair of a file into resumable shards (``jaxsim.corpus.run``)."""

from __future__ import annotations

import argparse


def _columns(value: str) -> tuple[str, str]:
    parts = value.split(",")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError("give two column names separated by a comma, e.g. q,d")
    return parts[0], parts[1]


def cmd_corpus(args: argparse.Namespace) -> int:
    from jaxsim.corpus import run
    from jaxsim.corpus.shards import read_run
    from jaxsim.model import load_model

    read_run(args.out)  # a folder that is not ours is refused before the model loads
    if args.multihost:  # before load_model touches a device
        from jaxsim.corpus.sharding import initialize_multihost

        initialize_multihost(args.coordinator, args.num_processes, args.process_id)
    # multi-host: no orbax cache (its writes would need coordinating across processes)
    model = load_model(args.model, pooling=args.pooling, allow_pickle=args.allow_pickle,
                       weights_dir=args.weights_dir, use_cache=not args.multihost)
    summary = run(
        args.input, args.out, model=model, method=args.method, store=args.store,
        batch_size=args.batch_size, shard_size=args.shard_size, resume=args.resume,
        columns=args.columns, truncate=args.truncate, similarity=args.similarity, mode=args.mode,
        top_k=args.top_k, ig_steps=args.ig_steps, devices=args.devices,
        length_classes=args.length_classes, factor_cache_bytes=args.factor_cache_mb * 2**20,
        precision=args.precision, multihost=args.multihost, progress=not args.no_progress,
    )
    print(summary.format())
    return 0


def add_corpus_parser(sub: argparse._SubParsersAction) -> None:
    from jaxsim.cli.args import add_model_args, non_negative_int, positive_int
    from jaxsim.corpus import METHODS
    from jaxsim.explain.bilrp import MODES, SIMILARITIES
    from jaxsim.models.precision import PRECISIONS

    p = sub.add_parser(
        "corpus", help="explain every pair of a TSV/JSONL/Parquet file into resumable shards",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  jaxsim corpus --input pairs.tsv --out runs/stsb --store topk:8\n"
               "  jaxsim corpus --input pairs.tsv --out runs/stsb --store topk:8 --resume\n"
               "  XLA_FLAGS=--xla_force_host_platform_device_count=8 "
               "jaxsim corpus --input pairs.jsonl --out runs/x\n"
               "output: OUT/shards/part-*.jsonl, OUT/manifest.json, OUT/errors.jsonl "
               "(docs/guide.md: Explain a corpus)",
    )
    add_model_args(p)
    p.add_argument("--input", required=True,
                   help="pairs file: *.tsv (header row), *.jsonl or *.parquet with columns "
                        "sentence1/sentence2 or text_a/text_b (or --columns)")
    p.add_argument("--out", required=True, help="output folder (shards, manifest, errors)")
    p.add_argument("--method", default="bilrp", choices=METHODS)
    p.add_argument("--store", default="topk:10",
                   help="per pair: full (R + tokens), words (word matrix) or topk:K (default topk:10)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="texts per device step, rounded up to a multiple of the device count "
                        "(default 8 per device)")
    p.add_argument("--shard-size", type=positive_int, default=256,
                   help="input rows per output shard, the unit of resume (default 256)")
    p.add_argument("--resume", action="store_true", help="continue a run in OUT, skipping finished shards")
    p.add_argument("--columns", type=_columns, default=None, help="the two text columns, e.g. q,d")
    p.add_argument("--truncate", action="store_true",
                   help="cut texts longer than the model maximum (default: report them as bad rows)")
    p.add_argument("--pooling", choices=["mean", "cls", "qkv"], default="mean",
                   help="pooling to explain (default: mean over all tokens, as jaxsim explain)")
    p.add_argument("--similarity", choices=SIMILARITIES, default="dot")
    p.add_argument("--mode", choices=MODES, default="auto", help="BiLRP engine (see jaxsim explain)")
    p.add_argument("--length-classes", choices=["auto", "adaptive", "fine", "buckets"], default="auto",
                   help="padded lengths: adaptive (chosen per shard, trading padding work "
                        "against compiling one more shape at this device's measured speed), fine "
                        "(multiples of 4/8/16 tokens), buckets (16/32/64/...), or auto (adaptive "
                        "for 64+ texts; default)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="matmul precision of the token-pair methods: fp32 (default), or tf32 / bf16 "
                        "(a GPU's tensor cores: faster, at the faithfulness cost measured in "
                        "benchmarks/results/corpus.md; emulated on the CPU, no faster there)")
    p.add_argument("--factor-cache-mb", type=non_negative_int, default=1024, metavar="MB",
                   help="keep computed BiLRP factors up to this size, so a text repeated anywhere "
                        "in the run is computed once (default 1024; 0: only within a shard)")
    p.add_argument("--top-k", type=positive_int, default=2, help="BTI: MeanShift clusters kept (default 2)")
    p.add_argument("--ig-steps", type=positive_int, default=10, help="IG: Riemann steps (default 10)")
    p.add_argument("--devices", type=int, default=None,
                   help="use the first N local devices (default all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--multihost", action="store_true",
                   help="jax.distributed.initialize() first; each process explains its own shards")
    p.add_argument("--coordinator", default=None,
                   help="multi-host by hand: host:port of process 0 (auto-detected on TPU pods)")
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--process-id", type=int, default=None)
    p.set_defaults(func=cmd_corpus)
