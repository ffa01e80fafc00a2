"""``jaxsim explain``: one pair, printed as text, JSON (the contract in README) or HTML."""

from __future__ import annotations

import argparse


def cmd_explain(args: argparse.Namespace) -> int:
    from jaxsim.cli.args import load_model_from_args, output_file
    from jaxsim.errors import OptionError
    from jaxsim.explain import bti, explain_pair, first_order, gmask
    from jaxsim.explain.result import WordPairExplanation

    out = output_file(args.out) if args.out else None  # before the slow part
    model = load_model_from_args(args)
    if args.method in bti.METHODS:
        options = dict(top_k=args.top_k, ig_steps=args.ig_steps)
    elif args.method in first_order.METHODS:
        options = dict(target=args.target)
    elif args.method in gmask.METHODS:
        options = dict(k=args.k, steps=args.steps, samples=args.samples, seed=args.seed)
    else:
        options = dict(similarity=args.similarity, mode=args.mode, prompt=args.prompt,
                       precision=args.precision)
    for flag, value, default in (("--prompt", args.prompt, None), ("--precision", args.precision, "fp32")):
        if value != default and flag.strip("-") not in options:
            raise OptionError(f"{flag} applies to the similarity methods (bilrp, hxp, embedding), "
                              f"not {args.method}: drop it")
    result = explain_pair(model, args.text_a, args.text_b, method=args.method, **options)
    if args.format == "json":
        text = result.to_json(indent=None)
    elif args.format == "html":
        text = result.to_html()  # one self-contained page (jaxsim.viz.html)
    else:  # any method's view: escape what the user's texts could do to the terminal
        from jaxsim.viz.terminal import printable

        text = printable(result.show(), keep="\n")
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.format} explanation to {out}")
    else:
        print(text)
    if args.png and not isinstance(result, WordPairExplanation):  # word pairs have no figure
        print(f"wrote figure to {result.save_png(args.png)}")
    return 0


def add_explain_parser(sub: argparse._SubParsersAction) -> None:
    from jaxsim.cli.args import add_model_args, positive_int
    from jaxsim.explain import METHODS
    from jaxsim.explain.bilrp import MODES, SIMILARITIES
    from jaxsim.models.precision import PRECISIONS

    p = sub.add_parser(
        "explain", help="explain why two texts are similar (token-pair relevance)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n'
               '  jaxsim explain "A man is playing a guitar." "A person plays an instrument."\n'
               '  jaxsim explain --method hxp --format json --out pair.json "a" "b"\n'
               '  jaxsim explain --format html --out pair.html "A cat sits." "A cat is sitting."\n'
               '  jaxsim explain --method bti "A red dress." "A crimson gown."\n'
               '  jaxsim explain --method gmask --model out/mrpc-minilm --format html --out g.html \\\n'
               '      "He said the food was good." "He said the meal was tasty."',
    )
    add_model_args(p)
    p.add_argument("text_a")
    p.add_argument("text_b")
    p.add_argument("--method", default="bilrp", choices=METHODS)
    p.add_argument("--pooling", choices=["mean", "cls", "qkv"], default="mean",
                   help="pooling to explain (default: mean over all tokens)")
    p.add_argument("--similarity", choices=SIMILARITIES, default="dot",
                   help="dot product of un-normalised pooled embeddings (default) or cosine")
    p.add_argument("--prompt", default=None, metavar="NAME",
                   help="a sentence-transformers prompt of the model put before both texts (e.g. "
                        "e5's query); its pieces show as tokens, in no word")
    p.add_argument("--mode", choices=MODES, default="auto",
                   help="BiLRP engine: forward (n passes), reverse (h passes) or auto (fewer)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="matmul precision: fp32 (default), or tf32 / bf16 as a GPU's tensor cores "
                        "(emulated on the CPU; faithfulness cost in benchmarks/results/corpus.md)")
    p.add_argument("--top-k", type=positive_int, default=2,
                   help="BTI: keep the word pairs of the top-k MeanShift clusters (default 2)")
    p.add_argument("--ig-steps", type=positive_int, default=10, help="IG: Riemann steps (default 10)")
    p.add_argument("--target", default=None, help="gs/gi/lrp*/lat* (pair classifiers): class to "
                   "explain, a label, an index or 'last' (default: the predicted class)")
    p.add_argument("--k", type=positive_int, default=10,
                   help="gmask: IMASK keeps the top k word-pieces (default 10)")
    p.add_argument("--steps", type=positive_int, default=100, help="gmask: optimisation steps (default 100)")
    p.add_argument("--samples", type=positive_int, default=500,
                   help="gmask: Gumbel samples per step (default 500; fewer is faster on a CPU)")
    p.add_argument("--seed", type=int, default=42, help="gmask/imask: PRNG seed per pair (default 42)")
    p.add_argument("--format", choices=["text", "json", "html"], default="text")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.add_argument("--png", default=None,
                   help="also save the heatmap + pair figure as PNG (token-pair methods)")
    p.set_defaults(func=cmd_explain)
