"""Matmul precision of the explaining engines: ``fp32`` (the default), ``tf32`` or ``bf16``.

``tf32`` and ``bf16`` round both operands of every matmul to 10 or 7 mantissa bits (8 exponent
bits) and accumulate in float32, as the tensor cores of a GPU do; the tangents of the forward
engine go through the same matmuls and are rounded alike. Two implementations, one arithmetic:

- on a GPU or TPU, XLA's dot algorithm presets (``TF32_TF32_F32``, ``BF16_BF16_F32``; ``fp32``
  pins ``highest``, true float32 whatever JAX's default) set by ``matmul_precision``: the
  hardware's fast path;
- on the CPU, which has no such units (XLA refuses TF32 there and runs BF16 presets in float32),
  ``precision_ops`` rounds the operands with ``lax.reduce_precision`` before a float32 matmul:
  the same numbers, no speed-up. This is how the faithfulness cost of each setting is measured
  on a machine without an accelerator (benchmarks/precision.py).
"""

from __future__ import annotations

import contextlib
import functools

import jax

from jaxsim.errors import OptionError
from jaxsim.models.ops import Ops
from jaxsim.types import Array

PRECISIONS = ("fp32", "tf32", "bf16")
MANTISSA_BITS = {"tf32": 10, "bf16": 7}
#: ``jax.default_matmul_precision`` on accelerators.
PRESETS = {"fp32": "highest", "tf32": "TF32_TF32_F32", "bf16": "BF16_BF16_F32"}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def emulated(precision: str, backend: str | None = None) -> bool:
    """True where ``precision`` is emulated by rounding (a reduced precision on the CPU)."""
    return check_precision(precision) != "fp32" and (backend or jax.default_backend()) == "cpu"


def round_to(precision: str, x: Array) -> Array:
    """``x`` rounded to nearest at ``precision``'s mantissa (float32 storage)."""
    return jax.lax.reduce_precision(x, exponent_bits=8, mantissa_bits=MANTISSA_BITS[precision])


@functools.cache
def precision_ops(ops: Ops, precision: str, backend: str | None = None) -> Ops:
    """``ops`` whose dense and attention matmuls run at ``precision``: unchanged unless emulated
    (``emulated``), else both operands rounded first. Cached: equal arguments give the same
    ``Ops`` object, so jit caches keyed on it stay warm."""
    if not emulated(precision, backend):
        return ops
    rnd = functools.partial(round_to, precision)
    dense, einsum = ops.dense, ops.einsum

    def rounded_dense(x: Array, kernel: Array, bias: Array | None) -> Array:
        return dense(rnd(x), rnd(kernel), bias)

    def rounded_einsum(spec: str, a: Array, b: Array) -> Array:
        return einsum(spec, rnd(a), rnd(b))

    return ops._replace(dense=rounded_dense, einsum=rounded_einsum)


def matmul_precision(precision: str, backend: str | None = None) -> contextlib.AbstractContextManager:
    """The ``jax.default_matmul_precision`` to trace the engine under: the hardware preset on an
    accelerator, ``highest`` where the rounding is emulated (the rounded operands then multiply
    exactly in float32)."""
    if emulated(precision, backend):
        return jax.default_matmul_precision("highest")
    return jax.default_matmul_precision(PRESETS[check_precision(precision)])
