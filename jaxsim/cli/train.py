"""``jaxsim train``: fine-tune a BERT-family encoder + classification head on a pair TSV."""

from __future__ import annotations

import argparse


def cmd_train(args: argparse.Namespace) -> int:
    from jaxsim.classifier import load_classifier
    from jaxsim.cli.args import load_model_from_args
    from jaxsim.errors import JaxsimError
    from jaxsim.train import TrainConfig, read_pairs, split, train

    train_data = read_pairs(args.train)
    if args.dev:
        dev_data = read_pairs(args.dev, train_data.label_names)
    else:
        train_data, dev_data = split(train_data, args.dev_fraction, args.seed)
        print(f"no --dev: holding out {len(dev_data)} of the training pairs (seed {args.seed})")
    if args.epochs < 1 or args.batch_size < 1:
        raise JaxsimError("--epochs and --batch-size must be at least 1")
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay, dropout=args.dropout,
        max_length=args.max_length, seed=args.seed, patience=args.patience,
        save_every=args.save_every, max_steps=args.max_steps,
    )
    args.pooling = None
    model = load_model_from_args(args)
    result = train(model, train_data, dev_data, args.out, config, resume=not args.no_resume,
                   progress=not args.no_progress, weights_dir=args.weights_dir)
    print(f"{result.stopped} after {result.steps} steps: best dev accuracy {result.best_accuracy:.4f} "
          f"(epoch {result.best_epoch}, majority class {dev_data.majority_accuracy():.4f}); "
          f"classifier in {result.out_dir}")
    if args.test:
        clf = load_classifier(args.out, weights_dir=args.weights_dir, max_length=args.max_length)
        test_data = read_pairs(args.test, train_data.label_names)
        print(f"test accuracy {clf.accuracy(test_data):.4f} on {len(test_data)} pairs "
              f"(majority class {test_data.majority_accuracy():.4f})")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    from jaxsim.cli.args import add_model_args, positive_int
    from jaxsim.train import TrainConfig

    defaults = TrainConfig()
    p = sub.add_parser(
        "train", help="fine-tune a sentence-pair classifier (TSV: sentence1, sentence2, label)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  jaxsim train --train ../shared/data/mrpc/train.tsv "
               "--test ../shared/data/mrpc/test.tsv --out out/mrpc-minilm --epochs 2 --lr 8e-5\n"
               "An interrupted run resumes from its last checkpoint when re-run with the same --out.",
    )
    add_model_args(p)
    p.add_argument("--train", required=True, help="UTF-8 TSV with header sentence1<TAB>sentence2<TAB>label")
    p.add_argument("--dev", default=None, help="dev TSV (default: hold out --dev-fraction of --train)")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    p.add_argument("--test", default=None, help="report the best model's accuracy on this TSV at the end")
    p.add_argument("--out", required=True, help="output folder (HF classifier + orbax checkpoints)")
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    p.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.learning_rate, help="peak AdamW learning rate")
    p.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--dropout", type=float, default=defaults.dropout,
                   help="on the embedding output and the pooled vector (not inside the encoder)")
    p.add_argument("--max-length", type=positive_int, default=defaults.max_length,
                   help="pair length limit (tokens)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--patience", type=int, default=defaults.patience,
                   help="stop after this many epochs without a better dev accuracy (0 = never)")
    p.add_argument("--save-every", type=int, default=defaults.save_every, help="checkpoint every N steps")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (resumable)")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out has checkpoints")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)
