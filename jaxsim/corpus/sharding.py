"""Devices for a corpus run: a 1-D ``Mesh`` with a ``data`` axis, replicated params, batches
split over the data axis, and the multi-host split of the input shards.

Per-text relevance depends on one text only, so a batch of texts splits over devices with no
communication: ``token_relevance`` (jitted) is called with ``ids, type_ids, mask`` placed as
``NamedSharding(mesh, P("data"))`` and params as ``NamedSharding(mesh, P())``, and XLA's SPMD
partitioner runs each device's rows on that device.

Multi-host: every process builds its mesh over its *local* devices and explains its own input
shards (``owns_shard``). A global mesh would force all processes to step through the same
sequence of batch shapes in lockstep, which a streamed corpus with length buckets cannot give;
the only cross-process operations are barriers at the start and end of the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsim.errors import JaxsimError

DATA = "data"


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


def round_batch_size(batch_size: int | None, n_devices: int, per_device: int = 8) -> int:
    """Texts per step: a multiple of the device count (rounded up), default ``8`` per device."""
    if batch_size is None:
        return per_device * n_devices
    if batch_size < 1:
        raise JaxsimError(f"batch size must be >= 1, got {batch_size}")
    return -(-batch_size // n_devices) * n_devices


def replicate(tree, mesh: Mesh):
    """Place a pytree (params) whole on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_rows(arrays: Sequence[np.ndarray], mesh: Mesh) -> list[jax.Array]:
    """Place ``[B, ...]`` arrays with their rows split over the data axis (B % devices == 0)."""
    sharding = NamedSharding(mesh, P(DATA))
    return [jax.device_put(a, sharding) for a in arrays]


def owns_shard(shard: int, process_index: int, process_count: int) -> bool:
    """Input shard ``k`` belongs to process ``k mod process_count`` (round robin: balanced even
    when text lengths drift along the file, and needs no row count up front)."""
    return shard % process_count == process_index


def initialize_multihost(coordinator: str | None = None, num_processes: int | None = None,
                         process_id: int | None = None) -> tuple[int, int]:
    """``jax.distributed.initialize`` (arguments auto-detected on TPU pods and SLURM/Open MPI
    clusters; give all three to run processes by hand, e.g. on localhost) -> (index, count)."""
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise JaxsimError("give all of --coordinator, --num-processes and --process-id, or none")
    if not jax.distributed.is_initialized():
        jax.distributed.initialize(coordinator, num_processes, process_id)
    return jax.process_index(), jax.process_count()


def barrier(name: str, timeout_s: float = 24 * 3600) -> None:
    """Wait for every process (a no-op with one process).

    Uses the coordination service's barrier (as orbax does), not a device collective: processes
    can finish their shards hours apart, far beyond a collective's timeout.
    """
    if jax.process_count() == 1:
        return
    from jax._src import distributed

    distributed.global_state.client.wait_at_barrier(f"jaxsim-corpus-{name}", int(timeout_s * 1000))
