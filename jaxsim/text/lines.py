"""Lines of a text file, as every jaxsim reader of text files splits them."""

from __future__ import annotations


def split_lines(text: str) -> list[str]:
    """The lines of a text file: split on ``\\n`` only (a ``\\r`` before it and a leading BOM
    dropped), never on U+2028, U+0085 (NEL), form feed or a lone ``\\r`` as ``str.splitlines``
    does, so line k of the file is always item k - 1. A final newline ends the last line."""
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
