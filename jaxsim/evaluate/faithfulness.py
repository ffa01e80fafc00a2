"""AOPC, post-hoc accuracy and the degradation test of [GMASK] §5.1 (METHODS.md §3, G6-G8).

Every method contributes a **ranking** of a pair's content word-pieces (best first); the metrics
remove or keep pieces by that ranking and read the classifier's probability of its prediction on
the full input, ŷ. "Removing" deletes the pieces from the sequence (positions renumbered,
[CLS]/[SEP] kept; G6), at word-piece level.

- ``aopc`` (Eq. 9): ``1/(U+1) · mean_x Σ_{u=1..U} p(ŷ|x) − p(ŷ|x without its top u pieces)``, U = 10;
  a pair with fewer than u pieces loses all of them (G8). Higher is better.
- ``post_hoc_accuracy(v)``: the share of pairs whose prediction from the top v pieces alone (plus
  specials) is ŷ, v = 1..10 (Fig. 3). Higher is better.
- ``degradation`` (Eq. 10-11): remove ``round(ρ q / 100)`` pieces most-relevant-first (MoRF) or
  least-relevant-first (LeRF), ρ = 0, 10, ..., 100 (G7); average p over pairs *before*
  ``S(ρ) = (p̄(x_ρ) − p̄(x_o)) / (p̄(x) − p̄(x_o))``; score ``∫ (S^L − S^M) dρ/100`` (trapezoid).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.evaluate.deletion import logits_of_rows
from jaxsim.text import Encoded

if TYPE_CHECKING:
    from jaxsim.classifier import Classifier
    from jaxsim.model import Model

AOPC_STEPS = tuple(range(1, 11))
POST_HOC_STEPS = tuple(range(1, 11))
DEGRADATION_PERCENTS = tuple(range(0, 101, 10))


# --- the metric arithmetic (pure numpy, tested by hand) ---------------------------------------------

def aopc(p_full: np.ndarray, p_removed: np.ndarray) -> float:
    """Eq. 9. p_full f[N] = p(ŷ|x); p_removed f[N, U] = p(ŷ | x without the top u) for u = 1..U."""
    p_full, p_removed = np.asarray(p_full, np.float64), np.asarray(p_removed, np.float64)
    u = p_removed.shape[1]
    return float(np.mean(np.sum(p_full[:, None] - p_removed, axis=1)) / (u + 1))


def post_hoc_accuracy(predicted: np.ndarray, predicted_kept: np.ndarray) -> np.ndarray:
    """f64[V]: share of pairs whose prediction from the top v pieces equals ŷ. predicted i[N];
    predicted_kept i[N, V]."""
    return (np.asarray(predicted_kept) == np.asarray(predicted)[:, None]).mean(0).astype(np.float64)


def degradation(percents: Sequence[float], p_morf: np.ndarray, p_lerf: np.ndarray
                ) -> tuple[float, np.ndarray, np.ndarray]:
    """Eq. 10-11. p_morf, p_lerf f[N, R] = p(ŷ | x_ρ) on the grid ``percents`` (0 first, 100 last:
    ρ = 0 is x, ρ = 100 is x_o, the same input for both orders). Returns (score, S^M f[R], S^L f[R])."""
    percents = np.asarray(percents, np.float64)
    if percents[0] != 0 or percents[-1] != 100:
        raise JaxsimError("the degradation grid must start at 0 % and end at 100 %")
    morf = np.asarray(p_morf, np.float64).mean(0)
    lerf = np.asarray(p_lerf, np.float64).mean(0)
    full, empty = morf[0], morf[-1]
    denom = full - empty
    if denom == 0:
        denom = np.finfo(np.float64).tiny
    s_morf, s_lerf = (morf - empty) / denom, (lerf - empty) / denom
    diff = s_lerf - s_morf
    score = float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(percents / 100.0)))
    return score, s_morf, s_lerf


# --- building the perturbed inputs ----------------------------------------------------------------

def drop_positions(ids: np.ndarray, type_ids: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Delete positions (renumbering the rest): ``i32[n]`` -> ``i32[n - |drop|]`` twice."""
    keep = np.ones(len(ids), bool)
    keep[np.asarray(drop, np.int64)] = False
    return np.asarray(ids)[keep], np.asarray(type_ids)[keep]


def keep_only(ids: np.ndarray, type_ids: np.ndarray, special: np.ndarray, kept: np.ndarray):
    """Keep the specials and the ``kept`` positions only (order preserved)."""
    keep = np.asarray(special, bool).copy()
    keep[np.asarray(kept, np.int64)] = True
    return np.asarray(ids)[keep], np.asarray(type_ids)[keep]


def perturbations(enc: Encoded, ranking: np.ndarray, *, aopc_steps=AOPC_STEPS, post_hoc_steps=POST_HOC_STEPS,
                  percents=DEGRADATION_PERCENTS) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The perturbed ``(ids, type_ids)`` of one pair for every metric, from its content ranking."""
    ranking = np.asarray(ranking, np.int64)
    q = len(ranking)
    rows: dict[str, list] = {"aopc": [], "post_hoc": [], "morf": [], "lerf": []}
    for u in aopc_steps:
        rows["aopc"].append(drop_positions(enc.ids, enc.type_ids, ranking[:min(u, q)]))
    for v in post_hoc_steps:
        rows["post_hoc"].append(keep_only(enc.ids, enc.type_ids, enc.special, ranking[:v]))
    for rho in percents:
        count = int(round(rho * q / 100.0))
        rows["morf"].append(drop_positions(enc.ids, enc.type_ids, ranking[:count]))
        rows["lerf"].append(drop_positions(enc.ids, enc.type_ids, ranking[::-1][:count]))
    return rows


@dataclasses.dataclass(frozen=True)
class FaithfulnessResult:
    """Per method: aopc float; post_hoc f64[V]; degradation score, S^M f64[R], S^L f64[R]."""

    model: str
    methods: tuple[str, ...]
    n_pairs: int
    aopc: dict[str, float]
    post_hoc: dict[str, np.ndarray]
    degradation: dict[str, float]
    s_morf: dict[str, np.ndarray]
    s_lerf: dict[str, np.ndarray]
    settings: dict

    def to_dict(self) -> dict:
        return {
            "model": self.model, "methods": list(self.methods), "n_pairs": self.n_pairs,
            "aopc": self.aopc, "post_hoc": {m: v.tolist() for m, v in self.post_hoc.items()},
            "post_hoc_steps": list(POST_HOC_STEPS), "degradation": self.degradation,
            "percents": list(DEGRADATION_PERCENTS),
            "s_morf": {m: v.tolist() for m, v in self.s_morf.items()},
            "s_lerf": {m: v.tolist() for m, v in self.s_lerf.items()}, "settings": self.settings,
        }

    def to_markdown(self, paper: dict[str, tuple[float, float]] | None = None) -> str:
        """AOPC + degradation table (with the paper's MRPC/BERT column if given) and post-hoc accuracy."""
        head = "| method | AOPC (U=10) | degradation |" + (" paper AOPC | paper degr. |" if paper else "")
        lines = [head, "|---|---|---|" + ("---|---|" if paper else "")]
        for m in self.methods:
            row = f"| {m} | {self.aopc[m]:.3f} | {self.degradation[m]:.3f} |"
            if paper:
                ref = paper.get(m)
                row += f" {ref[0]:.3f} | {ref[1]:.3f} |" if ref else " | |"
            lines.append(row)
        lines += ["", "Post-hoc accuracy (prediction from the top v word-pieces alone equals ŷ):", "",
                  "| method | " + " | ".join(f"v={v}" for v in POST_HOC_STEPS) + " |",
                  "|---|" + "---|" * len(POST_HOC_STEPS)]
        for m in self.methods:
            lines.append(f"| {m} | " + " | ".join(f"{a:.3f}" for a in self.post_hoc[m]) + " |")
        return "\n".join(lines) + "\n"


def evaluate_rankings(classifier: Classifier | Model, encoded: Sequence[Encoded],
                      rankings: dict[str, Sequence[np.ndarray]], *,
                      batch_size: int = 64, progress: bool = False) -> FaithfulnessResult:
    """All three metrics for every method's per-pair content rankings (``rankings[m][i]``)."""
    from tqdm.auto import tqdm

    from jaxsim.classifier import as_classifier

    clf = as_classifier(classifier)
    if not encoded:
        raise JaxsimError("no pairs to evaluate")
    for m, per_pair in rankings.items():
        if len(per_pair) != len(encoded):
            raise JaxsimError(f"method {m}: {len(per_pair)} rankings for {len(encoded)} pairs")
    base = logits_of_rows(clf, [e.ids for e in encoded], [e.type_ids for e in encoded], batch_size)
    predicted = base.argmax(-1)
    p_full = _softmax(base)[np.arange(len(encoded)), predicted]
    result: dict[str, dict] = {k: {} for k in ("aopc", "post_hoc", "degradation", "s_morf", "s_lerf")}
    for m in tqdm(list(rankings), desc="metrics", disable=not progress):
        ids, types, owner, kind = [], [], [], []
        for i, enc in enumerate(encoded):
            for name, rows in perturbations(enc, rankings[m][i]).items():
                for row_ids, row_types in rows:
                    ids.append(row_ids)
                    types.append(row_types)
                    owner.append(i)
                    kind.append(name)
        logits = logits_of_rows(clf, ids, types, batch_size)
        owner, kind = np.asarray(owner), np.asarray(kind)
        prob = _softmax(logits)[np.arange(len(owner)), predicted[owner]]

        per_pair = functools.partial(_per_pair, kind, len(encoded))

        result["aopc"][m] = aopc(p_full, per_pair("aopc", prob))
        result["post_hoc"][m] = post_hoc_accuracy(predicted, per_pair("post_hoc", logits.argmax(-1)))
        score, s_morf, s_lerf = degradation(DEGRADATION_PERCENTS, per_pair("morf", prob),
                                            per_pair("lerf", prob))
        result["degradation"][m], result["s_morf"][m], result["s_lerf"][m] = score, s_morf, s_lerf
    settings = {"removal": "word-pieces deleted, positions renumbered, specials kept",
                "aopc_steps": list(AOPC_STEPS), "post_hoc_steps": list(POST_HOC_STEPS),
                "degradation_percents": list(DEGRADATION_PERCENTS)}
    return FaithfulnessResult(clf.name, tuple(rankings), len(encoded), settings=settings, **result)


def _per_pair(kind: np.ndarray, n_pairs: int, name: str, values: np.ndarray) -> np.ndarray:
    """The rows of one metric as ``[n_pairs, steps]`` (rows are built pair by pair)."""
    return values[kind == name].reshape(n_pairs, -1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def first_order_rankings(classifier: Classifier | Model, encoded: Sequence[Encoded],
                         segments: Sequence[np.ndarray],
                         methods: Sequence[str], *, batch_size: int = 16, seed: int = 0
                         ) -> dict[str, list[np.ndarray]]:
    """Content rankings by GS/GI/LRP/LAT scores (predicted class) or a seeded random order."""
    from jaxsim.explain.first_order import attribute_encoded

    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {}
    for m in methods:
        content = [np.flatnonzero(np.asarray(s) >= 0) for s in segments]
        if m == "random":
            out[m] = [rng.permutation(c) for c in content]
            continue
        values = attribute_encoded(classifier, list(encoded), method=m, batch_size=batch_size)
        out[m] = [c[np.argsort(-np.asarray(v[0])[c], kind="stable")]
                  for c, v in zip(content, values, strict=True)]
    return out


def write_report(result: FaithfulnessResult, out_dir: str | Path, header: str = "",
                 paper: dict[str, tuple[float, float]] | None = None) -> list[Path]:
    """``faithfulness.md`` and ``faithfulness.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "faithfulness.md", out_dir / "faithfulness.json"
    md.write_text(f"# GMASK faithfulness metrics\n\n{header}{result.to_markdown(paper)}", encoding="utf-8")
    js.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return [md, js]
