"""Data-parallel placement: a 1-D ``Mesh`` with a ``data`` axis, params replicated on every device,
batch rows split over the axis.

Per-text computations (BiLRP factors, embeddings) depend on one text only, so a batch splits over
devices with no communication: a jitted function called with rows placed as
``NamedSharding(mesh, P("data"))`` and params as ``NamedSharding(mesh, P())`` runs each device's
rows on that device (XLA's SPMD partitioner).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsim.errors import JaxsimError

DATA = "data"


class Placement(NamedTuple):
    """A model's params and pool params replicated over ``mesh`` (``place_params``)."""

    mesh: Mesh
    params: dict
    pool_params: dict | None


def data_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all local devices; an int takes the first n)."""
    local = jax.local_devices()
    if devices is None:
        devices = local
    elif isinstance(devices, int):
        if not 1 <= devices <= len(local):
            raise JaxsimError(f"asked for {devices} devices, this process has {len(local)}")
        devices = local[:devices]
    return Mesh(np.asarray(list(devices)), (DATA,))


def replicate(tree, mesh: Mesh):
    """Place a pytree (params) whole on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_rows(arrays: Sequence[np.ndarray], mesh: Mesh) -> list[jax.Array]:
    """Place ``[B, ...]`` arrays with their rows split over the data axis (B % devices == 0)."""
    sharding = NamedSharding(mesh, P(DATA))
    return [jax.device_put(a, sharding) for a in arrays]


def place_params(params: dict, pool_params: dict | None, mesh: Mesh) -> Placement:
    """Replicate a model's params over ``mesh`` (once per run, not per batch)."""
    params, pool_params = replicate((params, pool_params), mesh)
    return Placement(mesh, params, pool_params)
