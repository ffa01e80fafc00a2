"""Exact top-k by the model's similarity: one jitted matmul over the index's embeddings, their
rows split over a ``data`` mesh.

Each device scores its own rows (``shard_map``: ``e f32[rows, h] @ qᵀ``), keeps its best
``min(k, rows)`` with ``lax.top_k``, and a final ``top_k`` over the devices' candidates picks the
global best: only ``devices x k`` scores leave a device. Rows are padded to a multiple of the
device count; padded rows score ``-inf`` and are never returned while real rows remain.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxsim.models.placement import DATA, replicate, shard_rows


class PlacedRows(NamedTuple):
    """``rows f32[N_pad, h]`` split over ``mesh``; the first ``n`` are real."""

    mesh: Mesh
    rows: jax.Array
    n: int


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x f32[N, h]`` with every row scaled to unit L2 norm (cosine similarity)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def place_rows(emb: np.ndarray, mesh: Mesh) -> PlacedRows:
    """Pad ``emb f32[N, h]`` to a multiple of the mesh size and split its rows over it."""
    n, h = emb.shape
    padded = -(-max(n, 1) // mesh.size) * mesh.size
    rows = np.zeros((padded, h), np.float32)
    rows[:n] = emb
    return PlacedRows(mesh, shard_rows([rows], mesh)[0], n)


@functools.partial(jax.jit, static_argnames=("mesh", "k", "n"))
def _top_k(rows: jax.Array, queries: jax.Array, *, mesh: Mesh, k: int, n: int):
    per_device = rows.shape[0] // mesh.size
    local_k = min(k, per_device)

    def local(block, q):  # block f32[per_device, h], q f32[Q, h]
        first = jax.lax.axis_index(DATA) * per_device
        scores = q @ block.T  # f32[Q, per_device]
        real = first + jnp.arange(per_device) < n
        scores = jnp.where(real[None], scores, -jnp.inf)
        values, where = jax.lax.top_k(scores, local_k)
        return values, where + first

    values, where = jax.shard_map(local, mesh=mesh, in_specs=(P(DATA), P()),
                                  out_specs=(P(None, DATA), P(None, DATA)))(rows, queries)
    best, pick = jax.lax.top_k(values, k)  # over the devices' candidates
    return best, jnp.take_along_axis(where, pick, axis=1)


def top_k(placed: PlacedRows, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``queries f32[Q, h]`` -> (scores f32[Q, k'], rows i64[Q, k']), best first, with
    ``k' = min(k, N)``: the exact top-k of ``queries @ rowsᵀ``."""
    k = min(k, placed.n)
    q = np.asarray(queries, np.float32)
    if k == 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    scores, rows = _top_k(placed.rows, replicate(q, placed.mesh), mesh=placed.mesh, k=k, n=placed.n)
    return np.asarray(scores), np.asarray(rows, np.int64)
