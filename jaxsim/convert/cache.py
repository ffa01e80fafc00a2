"""Converted params stored with orbax under ``weights/<name>/<hash>/``.

The hash covers the source checkpoint files, ``config.json`` and the converter version, so a
changed checkpoint is re-converted and a stale cache entry is never read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from jaxsim.convert.checkpoint import read_tensors
from jaxsim.convert.keymap import abstract_params, convert_state_dict, local_device_sharding
from jaxsim.convert.source import ModelSource, weight_files
from jaxsim.models.config import ModelConfig

#: Bump when the params layout changes: every cached conversion becomes stale.
CONVERTER_VERSION = "1"


def default_weights_root() -> Path:
    """``$JAXSIM_WEIGHTS_DIR``, else the checkout's ``weights/``, else ``~/.cache/jaxsim/weights``."""
    env = os.environ.get("JAXSIM_WEIGHTS_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "weights"
    if checkout.is_dir():
        return checkout
    return Path.home() / ".cache" / "jaxsim" / "weights"


def source_hash(files: list[Path]) -> str:
    digest = hashlib.sha256(f"jaxsim-converter-{CONVERTER_VERSION}".encode())
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:20]


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def cache_path(source: ModelSource, files: list[Path], weights_root: Path | None = None) -> Path:
    """Where the converted params of ``source`` (checkpoint ``files``) are (or will be) cached."""
    root = (weights_root or default_weights_root()) / _folder_name(source.name)
    return root / source_hash(files + [source.model_dir / "config.json"])


def save_params(path: Path, params: dict) -> None:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path.resolve(), params, force=True)
    checkpointer.wait_until_finished()
    checkpointer.close()


def restore_params(path: Path, config: ModelConfig) -> dict:
    checkpointer = ocp.StandardCheckpointer()
    params = checkpointer.restore(path.resolve(), abstract_params(config))
    checkpointer.close()
    return params


def on_local_device(params: dict) -> dict:
    """Commit every leaf to this process's first device, as ``restore_params`` does: converted
    and cached params then hit the same jit cache entries (an uncommitted and a committed array
    are different jit keys, so mixing them compiled everything twice)."""
    return jax.device_put(params, local_device_sharding())


def load_params(
    source: ModelSource,
    config: ModelConfig,
    *,
    allow_pickle: bool = False,
    weights_root: Path | None = None,
    use_cache: bool = True,
) -> tuple[dict, Path | None]:
    """Params for ``source``: from the orbax cache if it matches, else converted (and cached).

    Returns (params, cache path or None).
    """
    files = weight_files(source.model_dir, allow_pickle=allow_pickle)
    if not use_cache:
        return on_local_device(convert_state_dict(read_tensors(files), config, str(source.model_dir))), None
    path = cache_path(source, files, weights_root)
    root = path.parent
    if path.is_dir():
        return restore_params(path, config), path
    params = on_local_device(convert_state_dict(read_tensors(files), config, str(source.model_dir)))
    if root.is_dir():  # an older conversion of a changed checkpoint
        for stale in root.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    save_params(path, params)
    return params, path
