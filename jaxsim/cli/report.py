"""``jaxsim report``: a corpus run's output folder -> one self-contained HTML page."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace) -> int:
    from jaxsim.errors import JaxsimError
    from jaxsim.viz.report import write_report

    for name in ("max_pairs", "page_size", "top"):
        if getattr(args, name) < 1:
            raise JaxsimError(f"--{name.replace('_', '-')} must be at least 1")
    path = write_report(args.input, args.out, max_pairs=args.max_pairs, page_size=args.page_size,
                        top=args.top)
    print(f"wrote corpus report to {path}")
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="summarise a `jaxsim corpus` output folder as one HTML page",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  jaxsim corpus --input pairs.tsv --out runs/stsb --store words\n"
               "  jaxsim report --input runs/stsb --out report.html\n"
               "the page needs no network: open it from disk in any browser",
    )
    p.add_argument("--input", required=True, help="output folder of `jaxsim corpus` (its --out)")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--max-pairs", type=int, default=500,
                   help="pairs embedded for the drill-down, in id order (default 500; the summary "
                        "uses all)")
    p.add_argument("--page-size", type=int, default=20, help="pairs per drill-down page (default 20)")
    p.add_argument("--top", type=int, default=30, help="word pairs in the overall table (default 30)")
    p.set_defaults(func=cmd_report)
