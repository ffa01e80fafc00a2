"""Resumable training checkpoints with an orbax ``CheckpointManager``
(``jaxsim.convert.train_checkpoint.checkpoint_manager``; the params alone are read back by
``jaxsim.convert.train_checkpoint.restore_params``).

``<out>/checkpoints/<step>/`` holds three items: ``params`` and ``opt_state`` (array pytrees,
``StandardSave``) and ``progress`` (JSON: epoch, batches done in it, best dev accuracy, the
history, the label names and the run settings). Saving is synchronous so the donated train
state is never read after the next step reuses its buffers; orbax writes each step to a
temporary folder and renames it when complete, so a killed run leaves the previous step intact.
"""

from __future__ import annotations

import jax
import optax
import orbax.checkpoint as ocp

from jaxsim.convert.keymap import local_device_sharding
from jaxsim.errors import JaxsimError
from jaxsim.train.step import TrainState


def save_state(manager: ocp.CheckpointManager, state: TrainState, progress: dict) -> None:
    """Save ``state`` and ``progress`` at the state's step, replacing an older save of that step
    (e.g. a periodic save just before the epoch's evaluation updated the progress)."""
    step = int(state.step)
    if step in manager.all_steps():
        manager.delete(step)
    manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(state.params),
        opt_state=ocp.args.StandardSave(state.opt_state),
        progress=ocp.args.JsonSave(progress),
    ))
    manager.wait_until_finished()


def restore_state(
    manager: ocp.CheckpointManager, params_like: dict, optimizer: optax.GradientTransformation,
    step: int | None = None,
) -> tuple[TrainState, dict]:
    """The saved ``TrainState`` and progress at ``step`` (default: latest)."""
    step = manager.latest_step() if step is None else step
    if step is None:
        raise JaxsimError(f"no checkpoint to resume in {manager.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, params_like)
    # eval_shape drops placement: put every optimizer leaf on this process's first device, so a
    # checkpoint saved on another topology (GPU, several devices) restores here.
    sharding = local_device_sharding()
    opt_abstract = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        jax.eval_shape(optimizer.init, abstract),
    )
    restored = manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract),
        opt_state=ocp.args.StandardRestore(opt_abstract),
        progress=ocp.args.JsonRestore(),
    ))
    state = TrainState(jax.numpy.asarray(step, jax.numpy.int32), restored["params"], restored["opt_state"])
    return state, dict(restored["progress"])
