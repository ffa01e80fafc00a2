"""``jaxsim evaluate gmask``: AOPC, post-hoc accuracy and degradation of GMASK, IMASK and baselines."""

from __future__ import annotations

import argparse

DEFAULT_METHODS = ("gmask", "imask", "gs", "gi", "lrp", "lat", "random")
EXAMPLE = ("example:\n  jaxsim evaluate gmask --model out/mrpc-minilm --data ../shared/data/mrpc/test.tsv "
           "--max-pairs 50 --out out/gmask-mrpc\n  (on a CPU add e.g. --samples 50 --steps 20: the "
           "reference's 500 x 100 needs a GPU)")


def cmd_gmask(args: argparse.Namespace) -> int:
    from jaxsim.classifier import load_classifier
    from jaxsim.errors import JaxsimError
    from jaxsim.evaluate.faithfulness import evaluate_rankings, first_order_rankings, write_report
    from jaxsim.explain.gmask import METHODS, GmaskSettings, content_ranking, gmask_encoded
    from jaxsim.train import read_pairs

    if args.model is None:
        raise JaxsimError("pass the pair classifier to evaluate with --model (e.g. a `jaxsim train` output)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    clf = load_classifier(args.model, weights_dir=args.weights_dir, allow_pickle=args.allow_pickle)
    data = read_pairs(args.data)
    pairs = data.pairs[: args.max_pairs] if args.max_pairs else data.pairs
    encoded = [clf.model.tokenizer.encode_pair(a, b) for a, b in pairs]
    rankings = {}
    learned = [m for m in methods if m in METHODS]
    if learned:
        settings = GmaskSettings(k=args.k, steps=args.steps, samples=args.samples)
        outputs = gmask_encoded(clf, encoded, seed=args.seed, settings=settings, batch_size=args.batch_size,
                                progress=not args.no_progress)
        for m in learned:
            rankings[m] = [content_ranking(o, m, s) for o, (_, s) in zip(outputs, encoded, strict=True)]
    others = [m for m in methods if m not in METHODS]
    rankings |= first_order_rankings(clf, [e for e, _ in encoded], [s for _, s in encoded], others,
                                     batch_size=args.batch_size, seed=args.seed)
    rankings = {m: rankings[m] for m in methods}
    result = evaluate_rankings(clf, [e for e, _ in encoded], rankings, progress=not args.no_progress)
    header = (f"`{clf.name}` on the first {len(pairs)} pairs of `{args.data}`; GMASK {args.samples} "
              f"samples x {args.steps} steps, k = {args.k}, seed {args.seed}.\n\n")
    paths = write_report(result, args.out, header)
    print(result.to_markdown())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def add_gmask_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate gmask`` in the ``evaluate`` group (created by ``add_deletion_parser``)."""
    from jaxsim.cli.args import add_model_args, positive_int
    from jaxsim.cli.deletion import add_deletion_parser

    if "evaluate" not in sub.choices:
        add_deletion_parser(sub)
    evaluate = sub.choices["evaluate"]
    group = next(a for a in evaluate._actions if isinstance(a, argparse._SubParsersAction))
    p = group.add_parser(
        "gmask", help="AOPC, post-hoc accuracy and degradation of GMASK/IMASK and baselines (Chen et al.)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE,
    )
    add_model_args(p)
    p.add_argument("--data", required=True, help="TSV with header sentence1<TAB>sentence2<TAB>label")
    p.add_argument("--out", required=True, help="folder for faithfulness.md and faithfulness.json")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="comma-separated: gmask, imask, gs, gi, lrp, lrp_eps, lrp_ab, lat, random")
    p.add_argument("--max-pairs", type=int, default=100, help="first N pairs of the file (0 = all)")
    p.add_argument("--k", type=positive_int, default=10)
    p.add_argument("--steps", type=positive_int, default=100)
    p.add_argument("--samples", type=positive_int, default=500)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch-size", type=positive_int, default=16, help="pairs per jitted GMASK call")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_gmask)
