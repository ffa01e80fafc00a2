"""Fingerprints that bind an output to what produced it: the model and the input rows.

A corpus run records them in ``run.json`` (model, whole input) and in each shard's
``.done.json`` (that shard's input rows); ``--resume`` recomputes them and refuses any
difference. They are plain sha256 hex digests of canonical bytes, so anything else that stores
derived data (a search index) can record and check the same values.

- ``model_fingerprint(model)``: ``{"weights", "tokenizer", "config"}``. ``weights`` hashes the
  params as loaded (every leaf's path, dtype, shape and bytes, and the pooling params), so the
  same checkpoint gives the same hash whether it came from the conversion cache or not, while
  two checkpoints with the same name and config but other values never do.
- ``rows_hash(rows)``: the rows of one input shard (ids, texts, bad-row reasons).
- ``file_sha256(path)``: a whole file, read in 1 MiB blocks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import numpy as np

#: Which part of the model each fingerprint key covers, as a resume refusal names it.
MODEL_PARTS = {"weights": "model weights", "tokenizer": "tokenizer", "config": "model config"}
_BLOCK = 1 << 20


def _tree_sha256(tree: Any) -> str:
    """sha256 of a pytree of arrays: each leaf's key path, dtype, shape and raw bytes, in order."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _json_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def model_fingerprint(model) -> dict[str, str]:
    """``{"weights", "tokenizer", "config"}`` sha256 digests of a loaded ``Model``."""
    config = {"arch": model.config.arch, **dataclasses.asdict(model.config)}
    tokenizer = hashlib.sha256(model.tokenizer.tokenizer.to_str().encode())
    tokenizer.update(f"|max_length={model.tokenizer.max_length}".encode())
    return {
        "weights": _tree_sha256({"params": model.params, "pool_params": model.pool_params}),
        "tokenizer": tokenizer.hexdigest(),
        "config": _json_sha256(config),
    }


def model_changes(previous: dict[str, str] | None, current: dict[str, str]) -> list[str]:
    """The parts (``MODEL_PARTS`` names) whose fingerprints differ; all of them if none recorded."""
    previous = previous or {}
    return [name for key, name in MODEL_PARTS.items() if previous.get(key) != current.get(key)]


def rows_hash(rows: Iterable[tuple]) -> str:
    """sha256 of input rows (``Pair``/``BadRow`` or any tuples of JSON values), one canonical
    JSON line per row with its type name, so a bad row never hashes like a good one."""
    digest = hashlib.sha256()
    for row in rows:
        line = json.dumps([type(row).__name__, *row], ensure_ascii=False)
        digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
