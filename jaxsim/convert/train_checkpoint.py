"""The params of a ``jaxsim train`` checkpoint, for inference (``jaxsim.load_classifier``).

``<out>/checkpoints/<step>/`` is an orbax ``CheckpointManager`` folder with the items ``params``,
``opt_state`` and ``progress``; ``jaxsim.train.checkpoint`` writes and resumes the whole state,
this module owns the layout and reads the params alone (converters produce params; nothing
else reads checkpoints).
"""

from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp

from jaxsim.convert.keymap import abstract_params
from jaxsim.errors import JaxsimError
from jaxsim.models.config import ModelConfig

#: The items of one saved training step.
ITEMS = ("params", "opt_state", "progress")


def checkpoint_manager(directory: Path, max_to_keep: int = 2) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False,
    )
    return ocp.CheckpointManager(
        Path(directory).resolve(), options=options, item_names=ITEMS,
    )


def restore_params(directory: Path, config: ModelConfig, step: int | None = None) -> dict:
    """Only the params of a training checkpoint (latest step unless ``step``), for inference."""
    manager = checkpoint_manager(directory)
    try:
        step = manager.latest_step() if step is None else step
        if step is None or step not in manager.all_steps():
            raise JaxsimError(
                f"{directory} has no training checkpoint{'' if step is None else f' at step {step}'}"
                f" (steps: {list(manager.all_steps())})"
            )
        restored = manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params(config)),
        ))
        return restored["params"]
    finally:
        manager.close()
