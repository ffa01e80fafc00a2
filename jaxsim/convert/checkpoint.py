"""Read checkpoint tensors as numpy arrays. Safetensors never run code; pickle only on opt-in,
and then with ``torch.load(..., weights_only=True)``: PyTorch's restricted unpickler, which
rebuilds tensors and plain containers only and refuses anything that would run code."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsim.errors import WeightsError


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    try:
        tensors = {}
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        return tensors
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({err}); re-download or re-export it"
        ) from err


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _read_pickle(path: Path) -> dict[str, np.ndarray]:
    # Only reached with allow_pickle=True. Weights need no code execution, so weights_only=True
    # (a state dict of tensors loads; a pickle that calls arbitrary functions is refused).
    try:
        import torch
    except ImportError as err:
        raise WeightsError(
            f"reading the pickle checkpoint {path} needs PyTorch (`pip install torch`); "
            "better: convert it to safetensors"
        ) from err
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch's messages run to many lines: keep the first
        raise WeightsError(
            f"{path} is not a plain tensor checkpoint: torch.load(weights_only=True), which "
            f"never runs code from the file, refused it ({_first_line(err)}); convert it to "
            "safetensors where it was made"
        ) from err
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    return {k: v.detach().float().numpy() for k, v in state.items() if hasattr(v, "detach")}


def read_tensors(files: list[Path]) -> dict[str, np.ndarray]:
    """All tensors of a (possibly sharded) checkpoint, keyed as in the file."""
    tensors: dict[str, np.ndarray] = {}
    for path in files:
        reader = _read_safetensors if path.suffix == ".safetensors" else _read_pickle
        tensors.update(reader(path))
    return tensors
