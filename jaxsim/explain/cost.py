"""The forward engine's cost model: useful FLOPs, the device's GEMM peak, the price of a shape.

BiLRP's forward engine pushes one tangent per token through the encoder. Under the ``lrp``
composite the detached softmax stops tangents at the attention scores, so only the V, O and
MLP matrices carry them: a text of n tokens costs n passes over n positions through those
weights, ``2 n² P`` FLOPs ("useful work"; P = ``tangent_params``). Everything else — padded
positions and passes, the primal, attention mixing, host work — is waste against that count.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from jaxsim.models.config import ModelConfig

#: Seconds to trace and compile one new batch shape of the forward engine (all-MiniLM-L6-v2 on
#: the 2-core CPU: 0.64 s tracing + ~0.6 s XLA, benchmarks/results/roofline.md; deeper models
#: and accelerators compile longer, so this errs towards fewer shapes).
COMPILE_SECONDS = 1.5


def tangent_params(config: ModelConfig) -> int:
    """Weights whose matmuls carry tangents in the forward engine under the ``lrp`` composite: the
    detached softmax stops them at the scores, so per layer only V, O and the two MLP matrices
    (not Q and K): ``L * (2 d² + 2 d f)`` (8.85 M for all-MiniLM-L6-v2)."""
    d, f = config.hidden_size, config.intermediate_size
    return config.num_layers * (2 * d * d + 2 * d * f)


def useful_flops(config: ModelConfig, n_tokens: int) -> float:
    """The forward engine's useful work for one text of ``n_tokens`` (specials included): n
    tangent passes over n positions through the tangent-carrying weights, 2 FLOPs per
    multiply-add: ``2 n² tangent_params``. Padding, the primal pass, attention mixing and the
    Q/K path are not counted."""
    return 2.0 * n_tokens * n_tokens * tangent_params(config)


def gemm_peak_gflops(config: ModelConfig, rows: int = 8192, repeats: int = 5) -> float:
    """float32 GEMM rate (GFLOP/s) of this process's default device on the model's MLP shape
    (``rows x d @ d x f``): the best of ``repeats`` timed calls after a warm-up."""
    d, f = config.hidden_size, config.intermediate_size
    x = jnp.ones((rows, d), jnp.float32)
    w = jnp.ones((d, f), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(x, w).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(x, w).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * rows * d * f / best / 1e9


def class_cost(config: ModelConfig, peak_gflops: float,
               compile_seconds: float = COMPILE_SECONDS) -> float:
    """What one more compiled length class costs, in the units of ``text_work`` (token² of one
    text's passes x positions): the compile time times the tokens² the device runs per second at
    ``peak_gflops`` (~12,000 on the 2-core CPU: a 110-token text; millions on a GPU). A run's
    calls share it (``bilrp.FactorCache.call_price``): one compilation serves them all."""
    return compile_seconds * peak_gflops * 1e9 / (2.0 * tangent_params(config))


def text_work(length: int, hidden: int) -> float:
    """Work of one text padded to ``length`` in token² units: ``min(n, h)`` passes (the engine
    ``auto`` picks: n forward or h reverse) over n positions."""
    return float(length * min(length, hidden))
