"""Deletion curves and attribution agreement for pair classifiers ([W&O] §4, Fig. 1, Table 1).

**Deletion** (METHODS.md §4, the reference protocol): on the test pairs the classifier gets
right (and with at least ``min_tokens`` tokens, at most ``max_pairs`` of them), rank the token
positions by a method's scores (for the predicted class), delete the top ones and record the
accuracy. Deleting sets the id to 0 (``[PAD]``) with the attention mask unchanged, and
[CLS]/[SEP] are candidates, as in the reference code (``keep_special=True`` ranks only content
tokens). Steps are percentages of a pair's candidate tokens (``round(p/100 · n)``, the issue's
"top-k %") or absolute counts (``unit="tokens"``: the paper's k = 1..10). ``random`` deletes a
seeded random order. A faithful method's curve falls faster than random's.

**Agreement** ([W&O] Table 1): Pearson correlation between two attributions of the same pair's
tokens, averaged over pairs — across methods on one model, or across two fine-tunings (seeds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.text import Batch, BatchPlan, Encoded, map_batches

if TYPE_CHECKING:
    from jaxsim.classifier import Classifier

DEFAULT_PERCENTS = (0, 5, 10, 15, 20, 30, 40, 50)
DEFAULT_COUNTS = tuple(range(11))
DEFAULT_METHODS = ("gs", "gi", "lrp", "lrp_eps", "lrp_ab", "lat", "random")


def deletion_counts(n_candidates: int, steps: Sequence[float], unit: str) -> np.ndarray:
    """``i64[K]`` tokens deleted at each step (never more than the candidates)."""
    if unit == "percent":
        counts = [int(round(p / 100.0 * n_candidates)) for p in steps]
    elif unit == "tokens":
        counts = [int(k) for k in steps]
    else:
        raise JaxsimError(f"unknown unit {unit!r}: percent or tokens")
    return np.minimum(np.asarray(counts, np.int64), n_candidates)


def ranking(scores: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Candidate positions by descending score (ties: earlier position first)."""
    order = np.argsort(-scores[candidates], kind="stable")
    return candidates[order]


def deleted_ids(ids: np.ndarray, order: np.ndarray, counts: np.ndarray, pad_id: int = 0) -> np.ndarray:
    """``i32[K, n]``: row k has the first ``counts[k]`` positions of ``order`` set to ``pad_id``."""
    rows = np.repeat(np.asarray(ids, np.int32)[None], len(counts), axis=0)
    for k, count in enumerate(counts):
        rows[k, order[:count]] = pad_id
    return rows


def logits_of_rows(clf: Classifier, rows: list[np.ndarray], type_ids: list[np.ndarray],
                   batch_size: int) -> np.ndarray:
    """Logits ``f32[R, C]`` of many id rows (each with its own type ids, mask = all real)."""
    from jaxsim.models import pair_logits

    model = clf.model

    def pad(plan: BatchPlan) -> Batch:
        ids = np.full((plan.rows, plan.length), model.tokenizer.pad_token_id, np.int32)
        types = np.zeros((plan.rows, plan.length), np.int32)
        mask = np.zeros((plan.rows, plan.length), bool)
        for r, i in enumerate(plan.indices):
            n = len(rows[i])
            ids[r, :n], types[r, :n], mask[r, :n] = rows[i], type_ids[i], True
        return Batch(ids, types, mask)

    logits = map_batches(
        rows, [len(r) for r in rows], batch_size=batch_size, max_length=model.tokenizer.max_length,
        pad=pad, unpack=lambda out, row, i: out[row],
        compute=lambda batch: pair_logits(model.params, *(jnp.asarray(a) for a in batch),
                                          config=model.config),
    )
    return np.stack(logits) if logits else np.zeros((0, model.config.num_labels), np.float32)


@dataclasses.dataclass(frozen=True)
class DeletionResult:
    """accuracy[method]: f64[K] accuracy after deleting ``steps`` (percent or tokens) per pair;
    correlation: methods x methods mean Pearson of token scores (NaN where undefined)."""

    model: str
    methods: tuple[str, ...]
    steps: tuple[float, ...]
    unit: str
    accuracy: dict[str, np.ndarray]
    n_pairs: int
    n_candidates_mean: float
    correlation: np.ndarray
    settings: dict

    def area(self, method: str) -> float:
        """Mean accuracy over the steps (lower = the method found the decisive tokens faster)."""
        return float(np.mean(self.accuracy[method]))

    def to_dict(self) -> dict:
        return {
            "model": self.model, "methods": list(self.methods), "steps": list(self.steps),
            "unit": self.unit, "accuracy": {m: a.tolist() for m, a in self.accuracy.items()},
            "n_pairs": self.n_pairs, "n_candidates_mean": self.n_candidates_mean,
            "correlation": np.where(np.isnan(self.correlation), None, self.correlation).tolist(),
            "settings": self.settings,
        }

    def to_markdown(self) -> str:
        unit = "%" if self.unit == "percent" else " tok"
        head = "| method | " + " | ".join(f"{s:g}{unit}" for s in self.steps) + " | mean |"
        lines = [
            f"Deletion on {self.n_pairs} correctly classified pairs of `{self.model}` "
            f"(mean {self.n_candidates_mean:.1f} candidate tokens; settings {self.settings}).",
            "Accuracy after deleting the top-ranked tokens (ids -> [PAD], mask unchanged); lower = "
            "more faithful.", "", head, "|---|" + "---|" * (len(self.steps) + 1),
        ]
        for m in self.methods:
            cells = " | ".join(f"{a:.3f}" for a in self.accuracy[m])
            lines.append(f"| {m} | {cells} | {self.area(m):.3f} |")
        scored = [m for m in self.methods if m != "random"]
        if scored:
            lines += ["", "Mean Pearson correlation of token scores between methods (same pairs):", "",
                      "| | " + " | ".join(scored) + " |", "|---|" + "---|" * len(scored)]
            for i, m in enumerate(scored):
                row = " | ".join("" if np.isnan(v) else f"{v:.3f}" for v in self.correlation[i])
                lines.append(f"| {m} | {row} |")
        return "\n".join(lines) + "\n"

    def save_png(self, path: str | Path) -> Path:
        """Accuracy vs deleted fraction (or count), one line per method; random dashed."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for m in self.methods:
            style = dict(linestyle="--", color="black") if m == "random" else dict(marker="o", markersize=3)
            ax.plot(self.steps, self.accuracy[m], label=m, **style)
        ax.set_xlabel("% of tokens deleted" if self.unit == "percent" else "tokens deleted")
        ax.set_ylabel("accuracy")
        ax.set_title(f"deletion: {self.model} ({self.n_pairs} pairs)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=130)
        plt.close(fig)
        return path


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def attribution_correlation(scores_a: Sequence[np.ndarray], scores_b: Sequence[np.ndarray]) -> float:
    """Mean over pairs of the Pearson correlation of two token-score vectors ([W&O] Table 1)."""
    values = [pearson(a, b) for a, b in zip(scores_a, scores_b, strict=True)]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def select_pairs(clf: Classifier, encoded: Sequence[Encoded], labels: np.ndarray, *, min_tokens: int = 10,
                 max_pairs: int | None = 1000, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the pairs classified correctly with ``>= min_tokens`` tokens (first
    ``max_pairs``, in data order) and the logits of all pairs."""
    from jaxsim.classifier import encoded_logits

    logits = encoded_logits(clf.model, list(encoded), batch_size)
    keep = (logits.argmax(-1) == labels) & (np.asarray([len(e) for e in encoded]) >= min_tokens)
    index = np.flatnonzero(keep)
    return (index[:max_pairs] if max_pairs else index), logits


def deletion_curves(
    classifier, data, *, methods: Sequence[str] = DEFAULT_METHODS, unit: str = "percent",
    steps: Sequence[float] | None = None, min_tokens: int = 10, max_pairs: int | None = 1000,
    keep_special: bool = False, seed: int = 0, batch_size: int = 32, progress: bool = True,
    scores: dict[str, list[np.ndarray]] | None = None,
) -> DeletionResult:
    """Accuracy after deleting each method's top tokens on the correctly classified pairs of
    ``data`` (a ``PairData``). ``scores`` may pass precomputed token scores per method."""
    from tqdm.auto import tqdm

    from jaxsim.classifier import as_classifier
    from jaxsim.explain.first_order import METHODS, attribute_encoded

    clf = as_classifier(classifier)
    unknown = [m for m in methods if m not in METHODS and m != "random"]
    if unknown:
        raise JaxsimError(f"unknown deletion methods {unknown}: choose from {', '.join(METHODS)}, random")
    steps = tuple(steps if steps is not None else (DEFAULT_PERCENTS if unit == "percent" else DEFAULT_COUNTS))
    if tuple(data.label_names) != clf.labels:
        from jaxsim.classifier import relabel

        data = relabel(data, clf.labels)
    encoded = clf.encode(data.pairs)
    index, _ = select_pairs(clf, encoded, data.labels, min_tokens=min_tokens, max_pairs=max_pairs,
                            batch_size=batch_size)
    if not len(index):
        raise JaxsimError("no correctly classified pair with enough tokens to delete from")
    chosen = [encoded[i] for i in index]
    labels = data.labels[index]
    scores = dict(scores or {})
    rng = np.random.default_rng(seed)
    for m in methods:
        if m == "random":
            scores.setdefault(m, [rng.permutation(len(e)).astype(np.float64) for e in chosen])
        elif m not in scores:
            values = attribute_encoded(clf, chosen, method=m, target=list(labels), batch_size=batch_size,
                                       progress=progress)
            scores[m] = [v[0] for v in values]
    candidates = [np.flatnonzero(~e.special) if keep_special else np.arange(len(e)) for e in chosen]
    accuracy = {}
    for m in tqdm(methods, desc="deletion", disable=not progress):
        rows, types, owners = [], [], []
        for j, enc in enumerate(chosen):
            counts = deletion_counts(len(candidates[j]), steps, unit)
            order = ranking(np.asarray(scores[m][j]), candidates[j])
            for row in deleted_ids(enc.ids, order, counts, clf.model.tokenizer.pad_token_id):
                rows.append(row)
                types.append(enc.type_ids)
                owners.append(j)
        logits = logits_of_rows(clf, rows, types, batch_size)
        correct = (logits.argmax(-1) == labels[np.asarray(owners)]).reshape(len(chosen), len(steps))
        accuracy[m] = correct.mean(0).astype(np.float64)
    scored = [m for m in methods if m != "random"]
    corr = np.full((len(scored), len(scored)), np.nan)
    for i, a in enumerate(scored):
        for j, b in enumerate(scored):
            corr[i, j] = attribution_correlation(scores[a], scores[b])
    settings = {"unit": unit, "min_tokens": min_tokens, "max_pairs": max_pairs,
                "keep_special": keep_special, "seed": seed, "deletion": "id -> [PAD], mask kept"}
    return DeletionResult(clf.name, tuple(methods), steps, unit, accuracy, len(chosen),
                          float(np.mean([len(c) for c in candidates])), corr, settings)


def seed_correlation(classifier_a, classifier_b, data, methods: Sequence[str], *, min_tokens: int = 10,
                     max_pairs: int | None = 1000, batch_size: int = 32) -> dict[str, float]:
    """[W&O] Table 1: per method, mean Pearson of token scores from two fine-tunings (different
    seeds) on the pairs both classify correctly, each explaining its predicted class."""
    from jaxsim.classifier import as_classifier
    from jaxsim.explain.first_order import attribute_encoded

    a, b = as_classifier(classifier_a), as_classifier(classifier_b)
    encoded = a.encode(data.pairs)
    idx_a, _ = select_pairs(a, encoded, data.labels, min_tokens=min_tokens, max_pairs=None,
                            batch_size=batch_size)
    idx_b, _ = select_pairs(b, encoded, data.labels, min_tokens=min_tokens, max_pairs=None,
                            batch_size=batch_size)
    index = np.intersect1d(idx_a, idx_b)[:max_pairs]
    chosen = [encoded[i] for i in index]
    out = {}
    for m in methods:
        if m == "random":
            continue
        sa = [v[0] for v in attribute_encoded(a, chosen, method=m, batch_size=batch_size)]
        sb = [v[0] for v in attribute_encoded(b, chosen, method=m, batch_size=batch_size)]
        out[m] = attribution_correlation(sa, sb)
    return out


def write_report(result: DeletionResult, out_dir: str | Path,
                 seeds: dict[str, float] | None = None) -> list[Path]:
    """``deletion.md`` (table), ``deletion.png`` (curves), ``deletion.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = f"# Deletion evaluation\n\n{result.to_markdown()}"
    if seeds:
        text += ("\nMean Pearson correlation of token scores between two fine-tunings (seeds):\n\n| method | "
                 + " | ".join(seeds) + " |\n|---|" + "---|" * len(seeds) + "\n| r | "
                 + " | ".join(f"{v:.3f}" for v in seeds.values()) + " |\n")
    paths = [out_dir / "deletion.md", out_dir / "deletion.png", out_dir / "deletion.json"]
    paths[0].write_text(text, encoding="utf-8")
    result.save_png(paths[1])
    payload = result.to_dict() | ({"seed_correlation": seeds} if seeds else {})
    paths[2].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return paths
