"""Reproduction proxies of the BiLRP paper on the data we have (METHODS.md §6.1).

1. STS Spearman rho x 100 (cosine) for the embedded all-MiniLM-L6-v2 with CLS, mean and QKV
   pooling (QKV untrained: its query starts at 0, i.e. a mean of projected values) on STSb test,
   SICK-R test, BIOSSES and STSb-de test.
2. AUPC perturbation (lower is better) of BiLRP, H×P, Embeddings, BTI and random on the first N
   STSb test pairs (2N sentences), with a Wilcoxon signed-rank test of BiLRP against each.

The model is all-MiniLM-L6-v2, not the paper's BERT/SBERT/SGPT: compare orderings, not values.
Writes ``benchmarks/results/evaluation.md``.

    python benchmarks/evaluation.py [--data ../shared/data] [--n-aupc 200]
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from scipy.stats import wilcoxon

import jaxsim
from jaxsim.evaluate.perturbation import aupc_pairs
from jaxsim.evaluate.sts import read_scored_pairs, sts_spearman

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
STS_SETS = {"STSb test": "stsb_en/test.tsv", "SICK-R test": "sick_r/test.tsv",
            "BIOSSES": "biosses/all.tsv", "STSb-de test": "stsb_de/test.tsv"}
PAPER_AUPC = {"bilrp": 7.80, "random": 10.28, "embedding": 10.86, "hxp": 10.97}


def sts_table(model, data: Path) -> list[str]:
    lines = ["| pooling | " + " | ".join(STS_SETS) + " |", "|---|" + "---:|" * len(STS_SETS)]
    for pooling in ("cls", "mean", "qkv"):
        m = model.with_pooling(pooling)
        cells = [f"{sts_spearman(m, read_scored_pairs(data / rel)):.1f}" for rel in STS_SETS.values()]
        lines.append(f"| {pooling} | " + " | ".join(cells) + " |")
    return lines


def aupc_table(model, data: Path, n: int) -> list[str]:
    pairs = [(a, b) for a, b, _ in read_scored_pairs(data / "stsb_en" / "test.tsv", n)]
    start = time.perf_counter()
    scores = aupc_pairs(model, pairs)
    elapsed = time.perf_counter() - start
    lines = ["| method | AUPC mean ± std | Wilcoxon p (BiLRP < method) | paper (BERT, STSb) |",
             "|---|---:|---:|---:|"]
    for method, values in sorted(scores.items(), key=lambda kv: kv[1].mean()):
        test = wilcoxon(scores["bilrp"], values, alternative="less") if method != "bilrp" else None
        p = "—" if test is None else f"{test.pvalue:.1e}"
        paper = PAPER_AUPC.get(method, "—")
        lines.append(f"| {method} | {values.mean():.3f} ± {values.std():.3f} | {p} | {paper} |")
    lines.append("")
    lines.append(f"{2 * n} sentences from the first {n} STSb test pairs; {elapsed:.0f} s in all.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n-aupc", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "evaluation.md")
    args = parser.parse_args()
    model = jaxsim.load_model()
    text = "\n".join([
        "# Evaluation: reproduction proxies on all-MiniLM-L6-v2",
        "",
        f"`python benchmarks/evaluation.py --n-aupc {args.n_aupc}` · {date.today()} · "
        f"jaxsim {jaxsim.__version__}. Our model stands in for the paper's (BERT-base, SBERT, "
        "SGPT): these are not the paper's numbers.",
        "",
        "## STS Spearman ρ × 100 (cosine of pooled embeddings)",
        "",
        *sts_table(model, args.data),
        "",
        "The authors of all-MiniLM-L6-v2 report about 82 on STSb test with mean pooling. "
        "QKV pooling is untrained here (query 0 = mean of value projections ≈ identity).",
        "",
        "## AUPC perturbation (lower is better; METHODS.md §1.4, A6)",
        "",
        *aupc_table(model, args.data, args.n_aupc),
        "",
    ])
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
