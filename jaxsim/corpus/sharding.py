"""Devices for a corpus run: the data mesh (``jaxsim.models.placement``: replicated params,
batches split over the ``data`` axis), the batch size per device, and the multi-host split of
the input shards.

Multi-host: every process builds its mesh over its *local* devices and explains its own input
shards (``owns_shard``). A global mesh would force all processes to step through the same
sequence of batch shapes in lockstep, which a streamed corpus with length buckets cannot give;
the only cross-process operations are barriers at the start and end of the run.
"""

from __future__ import annotations

import jax

from jaxsim.errors import JaxsimError
from jaxsim.explain.bilrp import CPU_BATCH, memory_batch_size
from jaxsim.models.config import ModelConfig
from jaxsim.models.placement import DATA, data_mesh, replicate, shard_rows
from jaxsim.text import BatchSize

__all__ = ["DATA", "barrier", "data_mesh", "initialize_multihost", "owns_shard", "replicate",
           "round_batch_size", "run_batch_size", "shard_rows"]

def round_batch_size(batch_size: int | None, n_devices: int, per_device: int = CPU_BATCH) -> int:
    """Texts per step: a multiple of the device count (rounded up), default ``8`` per device."""
    if batch_size is None:
        return per_device * n_devices
    if batch_size < 1:
        raise JaxsimError(f"batch size must be >= 1, got {batch_size}")
    return -(-batch_size // n_devices) * n_devices


def run_batch_size(batch_size: int | None, mesh, config: ModelConfig | None = None) -> BatchSize:
    """A run's batch size: ``round_batch_size``, except that the BiLRP engine (``config`` given)
    with no batch size asked for takes it per length class from the device's memory
    (``bilrp.memory_batch_size``: 8 per device on the CPU, as ``round_batch_size``)."""
    if batch_size is None and config is not None:
        return memory_batch_size(config, mesh.devices.flat[0], mesh.size)
    return round_batch_size(batch_size, mesh.size)


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
    from orbax.checkpoint import multihost

    multihost.get_barrier_sync_fn()(key=f"jaxsim-corpus-{name}", timeout_ms=int(timeout_s * 1000))
