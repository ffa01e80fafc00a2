"""Progress and the end-of-run summary: pairs/s, ETA, errors, wall and compile time."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import jax

# jax.monitoring events whose durations add up to the time spent tracing, lowering and compiling.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


class CompileClock:
    """Context manager summing jax's compile-time events while it is open (``.seconds``)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def _listen(self, event: str, duration_secs: float, **_: Any) -> None:
        if event in COMPILE_EVENTS:
            self.seconds += duration_secs

    def __enter__(self) -> CompileClock:
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)


def progress_bar(total: int | None, initial: int, desc: str, enabled: bool, unit: str = "pair"):
    """A tqdm bar over input rows (pairs/s and ETA); rows of resumed shards count as done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


@dataclasses.dataclass(frozen=True)
class Work:
    """The token-pair engine's accounted work in one run: ``texts`` computed (``reused``: served
    from the run's factor cache), ``flops`` useful FLOPs (``jaxsim.explain.bilrp.useful_flops``)
    and the float32 GEMM peak measured on this machine at the start of the run."""

    texts: int
    reused: int
    flops: float
    gemm_peak_gflops: float
    padded_flops: float = 0.0  # the same count over the batches run, padding included
    lengths: int = 0  # padded lengths (compiled shapes) used


@dataclasses.dataclass(frozen=True)
class CorpusSummary:
    """What one process did in one run; ``manifest`` (process 0 only) has the output's totals.

    pairs / errors: explained pairs and bad rows in the shards this run wrote; shards_skipped:
    shards already finished by an earlier run (``resume``).
    """

    out: Path
    pairs: int
    errors: int
    errors_by_reason: dict[str, int]
    shards_written: int
    shards_skipped: int
    seconds: float
    compile_seconds: float
    devices: int
    process_index: int = 0
    process_count: int = 1
    manifest: dict[str, Any] | None = None
    work: Work | None = None

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """A few lines for the terminal."""
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors_by_reason.items()))
        who = f"process {self.process_index}/{self.process_count}: " if self.process_count > 1 else ""
        lines = [
            f"{who}{self.pairs} pairs explained, {self.errors} bad rows"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.shards_written} shards written, {self.shards_skipped} already finished",
            f"time {self.seconds:.1f} s (compile {self.compile_seconds:.1f} s), "
            f"{self.pairs_per_second:.1f} pairs/s on {self.devices} device"
            + ("s" if self.devices > 1 else ""),
        ]
        if self.work is not None and self.seconds > 0:
            w = self.work
            rate = w.flops / self.seconds / 1e9
            lines.append(
                f"useful work {w.flops / 1e12:.2f} TFLOP over {w.texts} texts computed "
                f"({w.reused} repeats reused): {rate:.1f} GFLOP/s, {100 * rate / w.gemm_peak_gflops:.0f} % "
                f"of this device's float32 GEMM peak ({w.gemm_peak_gflops:.0f} GFLOP/s at run start)")
            if w.padded_flops:
                lines.append(f"padding: +{100 * (w.padded_flops / w.flops - 1):.1f} % work over "
                             f"{w.lengths} padded lengths")
        if self.manifest is not None:
            m = self.manifest
            state = "complete" if m["complete"] else "INCOMPLETE (run again with --resume)"
            lines.append(f"output {state}: {m['pairs']} pairs in {m['finished_shards']} shards, "
                         f"{m['errors']} bad rows in {self.out / 'errors.jsonl'}")
        return "\n".join(lines)


def count_reasons(errors: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(e["reason"] for e in errors).items()))
