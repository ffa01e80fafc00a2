"""``jaxsim explain``: filled in with the explainers."""

from __future__ import annotations

import argparse


def add_explain_parser(sub: argparse._SubParsersAction) -> None:
    del sub
