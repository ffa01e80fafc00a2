"""``jaxsim evaluate deletion``: deletion curves of first-order attributions on a pair classifier."""

from __future__ import annotations

import argparse


def cmd_deletion(args: argparse.Namespace) -> int:
    from jaxsim.classifier import load_classifier
    from jaxsim.errors import JaxsimError
    from jaxsim.evaluate.deletion import deletion_curves, seed_correlation, write_report
    from jaxsim.train import read_pairs

    if args.model is None:
        raise JaxsimError("pass the classifier to evaluate with --model (e.g. a `jaxsim train` output)")
    clf = load_classifier(args.model, weights_dir=args.weights_dir, allow_pickle=args.allow_pickle)
    data = read_pairs(args.data)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    steps = [float(s) for s in args.steps.split(",")] if args.steps else None
    result = deletion_curves(
        clf, data, methods=methods, unit=args.unit, steps=steps, min_tokens=args.min_tokens,
        max_pairs=args.max_pairs or None, keep_special=args.keep_special, seed=args.seed,
        batch_size=args.batch_size, progress=not args.no_progress,
    )
    seeds = None
    if args.model2:
        other = load_classifier(args.model2, weights_dir=args.weights_dir, allow_pickle=args.allow_pickle)
        seeds = seed_correlation(clf, other, data, methods, min_tokens=args.min_tokens,
                                 max_pairs=args.max_pairs or None, batch_size=args.batch_size)
    paths = write_report(result, args.out, seeds)
    print(result.to_markdown())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def add_deletion_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate deletion`` (creating the ``evaluate`` group unless it exists)."""
    from jaxsim.cli.args import add_model_args, positive_int
    from jaxsim.evaluate.deletion import DEFAULT_METHODS

    evaluate = sub.choices.get("evaluate")
    if evaluate is None:
        evaluate = sub.add_parser(
            "evaluate", help="evaluate explanations (deletion curves, ...)",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="example:\n  jaxsim evaluate deletion --model out/mrpc-minilm "
                   "--data ../shared/data/mrpc/test.tsv --out out/deletion-mrpc",
        )
        group = evaluate.add_subparsers(dest="evaluation", required=True)
    else:
        group = next(a for a in evaluate._actions if isinstance(a, argparse._SubParsersAction))
    p = group.add_parser(
        "deletion", help="accuracy after deleting the top-ranked tokens, per method (Wu & Ong Fig. 1)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  jaxsim evaluate deletion --model out/mrpc-minilm "
               "--data ../shared/data/mrpc/test.tsv --out out/deletion-mrpc",
    )
    add_model_args(p)
    p.add_argument("--data", required=True, help="TSV with header sentence1<TAB>sentence2<TAB>label")
    p.add_argument("--out", required=True, help="folder for deletion.md, deletion.png, deletion.json")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated, incl. random")
    p.add_argument("--unit", choices=["percent", "tokens"], default="percent")
    p.add_argument("--steps", default=None,
                   help="comma-separated steps (default percent: 0,5,10,15,20,30,40,50; tokens: 0..10)")
    p.add_argument("--min-tokens", type=int, default=10)
    p.add_argument("--max-pairs", type=int, default=1000, help="0 = all correctly classified pairs")
    p.add_argument("--keep-special", action="store_true", help="never delete [CLS]/[SEP]")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--model2", default=None,
                   help="a second fine-tuning (other seed): also report per-method correlation")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_deletion)
