"""Hugging Face state-dict keys <-> jaxsim params pytree, for every family.

A small regex table per architecture (``jaxsim.convert.tables``) maps each checkpoint key to a
params path and says whether the tensor is a ``Linear`` weight (stored ``(out, in)`` in
PyTorch, so transposed). The same table, read backwards, exports params in the Hugging Face
layout (``to_state_dict``): the key layout exists once. The expected shapes come from the
config first (no arrays touched); every missing, unexpected or mis-shaped tensor is collected
and reported once (up to ten names per kind, and the count).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.convert.tables import RENAME, expected_shapes, family, key_table
from jaxsim.errors import WeightsError
from jaxsim.models.config import ModelConfig

__all__ = ["abstract_params", "convert_state_dict", "expected_shapes", "local_device_sharding",
           "to_state_dict"]

Path = tuple[str | int, ...]


def local_device_sharding() -> jax.sharding.SingleDeviceSharding:
    """This process's first device: where converted, restored and checkpointed params live."""
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def abstract_params(config: ModelConfig, dtype=jnp.float32) -> dict:
    """``expected_shapes`` as ``jax.ShapeDtypeStruct`` leaves (for orbax restore targets), each
    placed on this process's first device: a checkpoint written on another machine (a GPU, 8
    devices) then restores here instead of failing on the saved topology."""
    sharding = local_device_sharding()
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s, dtype, sharding=sharding), expected_shapes(config),
        is_leaf=lambda x: isinstance(x, tuple) and all(isinstance(i, int) for i in x),
    )


def _few(names: list[str], limit: int = 10) -> str:
    """A list of tensor names for one error line: all of a short one, else the count and the
    first ``limit`` (a checkpoint of another model can miss thousands)."""
    if len(names) <= limit:
        return str(names)
    return f"{len(names)} tensors (first {limit}: {names[:limit]})"


def _lookup(tree: dict, path: Path):
    node = tree
    for part in path:
        node = node[part]
    return node


def _flatten(tree, prefix: Path = ()) -> dict[Path, tuple[int, ...]]:
    if isinstance(tree, dict):
        out: dict = {}
        for k, v in tree.items():
            out.update(_flatten(v, prefix + (k,)))
        return out
    if isinstance(tree, tuple) and tree and not isinstance(tree[0], int):
        out = {}
        for i, v in enumerate(tree):
            out.update(_flatten(v, prefix + (i,)))
        return out
    return {prefix: tree}


def _unflatten(flat: dict[Path, np.ndarray], skeleton):
    def build(node, prefix: Path):
        if isinstance(node, dict):
            return {k: build(v, prefix + (k,)) for k, v in node.items()}
        if isinstance(node, tuple) and node and not isinstance(node[0], int):
            return tuple(build(v, prefix + (i,)) for i, v in enumerate(node))
        return flat[prefix]
    return build(skeleton, ())


def _target_path(key: str, table: list) -> tuple[Path, bool] | None:
    for pattern, template, linear in table:
        m = re.fullmatch(pattern, key)
        if m is None:
            continue
        groups = m.groupdict()
        path: list[str | int] = []
        for part in template:
            if part.startswith("{"):
                value = groups[part[1:-1]]
                path.append(int(value) if part == "{i}" else RENAME.get(value, value))
            else:
                path.append(part)
        # LayerNorm "weight" is a scale, not a kernel.
        if path[-1] == "kernel" and not linear:
            path[-1] = "scale"
        return tuple(path), linear
    return None


def _strip_prefix(key: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def convert_state_dict(
    state: Mapping[str, np.ndarray], config: ModelConfig, source: str = "checkpoint"
) -> dict:
    """Map a HF state dict (numpy arrays) onto jaxsim params; fail once with every problem."""
    skeleton = expected_shapes(config)
    expected = _flatten(skeleton)
    table = key_table(config)
    fam = family(config)
    found: dict[Path, np.ndarray] = {}
    unexpected, misshaped, not_finite = [], [], []
    misshaped_paths: set[Path] = set()
    for raw_key, tensor in state.items():
        key = _strip_prefix(raw_key, fam.prefixes)
        target = _target_path(key, table)
        if target is None:
            if not fam.ignored.search(key):
                unexpected.append(raw_key)
            continue
        path, linear = target
        array = np.asarray(tensor, dtype=np.float32)
        if linear and path[-1] == "kernel":
            array = array.T
        if path not in expected:
            unexpected.append(raw_key)
            continue
        if array.shape != expected[path]:
            # Name both shapes in the checkpoint's own (out, in) layout, not the transposed one.
            want = expected[path][::-1] if linear and path[-1] == "kernel" else expected[path]
            misshaped.append(f"{raw_key}: {tuple(np.shape(tensor))} (expected {want})")
            misshaped_paths.add(path)
            continue
        if not np.isfinite(array).all():
            not_finite.append(raw_key)
        found[path] = array
    # A mis-shaped tensor is reported as such, not a second time as missing.
    missing = [".".join(map(str, p)) for p in expected
               if p not in found and p not in misshaped_paths]
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected),
                         ("mis-shaped", misshaped), ("NaN/inf values in", not_finite)):
        if names:
            problems.append(f"{label} {_few(names)}")
    if problems:
        raise WeightsError(
            f"{source} does not match the {config.arch} config: " + "; ".join(problems)
            + " — re-export the checkpoint from the model it belongs to"
        )
    return jax.tree.map(jnp.asarray, _unflatten(found, skeleton))


# --- export: the table read backwards -------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


def _flat_arrays(tree, prefix: Path = ()) -> dict[Path, np.ndarray]:
    """Params pytree (dicts, tuples of layers, arrays) -> ``{path: array}``."""
    if isinstance(tree, dict):
        return {p: a for k, v in tree.items() for p, a in _flat_arrays(v, prefix + (k,)).items()}
    if isinstance(tree, (tuple, list)):
        return {p: a for i, v in enumerate(tree) for p, a in _flat_arrays(v, prefix + (i,)).items()}
    return {prefix: np.asarray(tree)}


def _spellings(value: str | int) -> list[str]:
    """The checkpoint spellings of a params path part, preferred first: the part itself, then
    ``RENAME`` backwards; a LayerNorm scale is written ``weight`` (today's name), not ``gamma``."""
    if isinstance(value, int):
        return [str(value)]
    return (["weight"] if value == "scale" else []) + [value] + [k for k, v in RENAME.items() if v == value]


def _source_key(path: Path, table: list) -> tuple[str, bool] | None:
    """The checkpoint key (prefix stripped) of a params path: the first table row whose template
    binds the path and whose pattern accepts the spelled-out key."""
    for pattern, template, linear in table:
        if len(template) != len(path):
            continue
        bound: dict[str, list[str]] = {}
        for part, value in zip(template, path, strict=True):
            if part.startswith("{"):
                bound[part[1:-1]] = _spellings(value)
            elif part != value:
                break
        else:
            names = list(bound)
            for choice in itertools.product(*(bound[n] for n in names)):
                values = dict(zip(names, choice, strict=True))
                key = _GROUP.sub(lambda m, values=values: values.get(m.group("name"), ""), pattern)
                key = key.replace("\\.", ".")
                if re.fullmatch(pattern, key) and _target_path(key, table) == (path, linear):
                    return key, linear
    return None


def to_state_dict(params: dict, config: ModelConfig, prefix: str = "") -> dict[str, np.ndarray]:
    """jaxsim params -> a Hugging Face state dict (numpy float32, Linear weights back to
    ``(out, in)``), the inverse of ``convert_state_dict``. ``prefix`` (e.g. ``"bert."``) goes before
    every encoder and pooler key; a classification head's ``classifier`` keys stay unprefixed, as
    in ``*ForSequenceClassification`` checkpoints."""
    table = key_table(config)
    state: dict[str, np.ndarray] = {}
    for path, array in _flat_arrays(params).items():
        found = _source_key(path, table)
        if found is None:
            raise WeightsError(f"no checkpoint key for params path {'.'.join(map(str, path))} of a "
                               f"{config.arch} model: it is not in the conversion table")
        key, linear = found
        if linear and path[-1] == "kernel":
            array = array.T
        head = path[:2] == ("head", "classifier")
        state[("" if head else prefix) + key] = np.ascontiguousarray(array, np.float32)
    return state
