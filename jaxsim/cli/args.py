"""What every subcommand shares: the model options, loading the model they name, reading a text
file of one text per line."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxsim.errors import InputTextError


def read_lines(path: str) -> list[str]:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise InputTextError(f"cannot read {path}: {err.strerror}") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputTextError(
            f"{path} is not UTF-8 (bad byte at line {line}); re-save it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path}`"
        ) from err
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputTextError(f"{path} has no non-empty lines")
    return lines


def load_model_from_args(args: argparse.Namespace):
    """The model of ``--model`` / ``--pooling`` / ``--allow-pickle`` / ``--weights-dir``."""
    from jaxsim.model import load_model

    return load_model(
        args.model, pooling=getattr(args, "pooling", None), allow_pickle=args.allow_pickle,
        weights_dir=args.weights_dir,
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="local folder or cached hub id (default: embedded all-MiniLM-L6-v2)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="read pytorch_model.bin checkpoints (can run code: trusted sources only)")
    p.add_argument("--weights-dir", default=None, help="cache of converted params (default weights/)")
