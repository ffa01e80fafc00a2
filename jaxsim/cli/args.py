"""What every subcommand shares: the model options, loading the model they name, reading a text
file of one text per line."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxsim.errors import InputTextError, JaxsimError
from jaxsim.text.lines import split_lines


def read_text_file(path: str) -> str:
    """A UTF-8 text file, or ``InputTextError`` naming the line of the first bad byte."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise InputTextError(f"cannot read {path}: {err.strerror}") from err
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputTextError(
            f"{path} is not UTF-8 (bad byte at line {line}); re-save it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path}`"
        ) from err


def read_lines(path: str, skip_blank: bool = False) -> tuple[list[str], list[int]]:
    """The texts of a file of one text per line, and their 1-based line numbers.

    A blank (empty or whitespace-only) line is an error naming it, so that row k of any output
    is line k + 1 of the input; ``skip_blank`` drops such lines instead (the line numbers then
    say which lines were kept).
    """
    lines = split_lines(read_text_file(path))
    numbers = [i for i, line in enumerate(lines, start=1) if line.strip()]
    if not skip_blank and len(numbers) != len(lines):
        blank = next(i for i, line in enumerate(lines, start=1) if not line.strip())
        raise InputTextError(f"{path} line {blank} is blank: remove it, or pass --skip-blank to "
                             "skip blank lines (the kept line numbers are written too)")
    if not numbers:
        raise InputTextError(f"{path} has no non-empty lines")
    return [lines[i - 1] for i in numbers], numbers


def output_file(path: str | Path) -> Path:
    """``path`` with its folder created if missing (as ``--png`` does), or a one-line refusal
    when the folder cannot be created (a file in the way, no permission)."""
    path = Path(path)
    if path.is_dir():
        raise JaxsimError(f"--out {path} is a folder: pass a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise JaxsimError(f"cannot create the folder of --out {path}: {err.strerror}") from err
    return path


def whole_number(value: str, least: int = 1) -> int:
    """argparse type of sizes (``--batch-size``, ``--max-length``, ...): an integer >= ``least``."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {value!r}") from None
    if number < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {number}")
    return number


def positive_int(value: str) -> int:
    """A size that must be at least 1."""
    return whole_number(value, 1)


def non_negative_int(value: str) -> int:
    """A size that may be 0 (e.g. a cache turned off)."""
    return whole_number(value, 0)


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
                   help="read pytorch_model.bin checkpoints, with torch.load(weights_only=True): "
                        "tensors only, no code from the file runs (needs torch)")
    p.add_argument("--weights-dir", default=None, help="cache of converted params (default weights/)")
