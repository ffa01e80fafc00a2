"""Hugging Face state-dict keys <-> jaxsim params pytree, for BERT and GPT-Neo.

A small regex table per architecture maps each checkpoint key to a params path and says
whether the tensor is a ``Linear`` weight (stored ``(out, in)`` in PyTorch, so transposed).
The same table, read backwards, exports params in the Hugging Face layout (``to_state_dict``):
the key layout exists once.
The expected shapes come from the config first (no arrays touched); every missing, unexpected
or mis-shaped tensor is collected and reported once (up to ten names per kind, and the count).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import WeightsError
from jaxsim.models.config import BertConfig, GPTNeoConfig, ModelConfig

Path = tuple[str | int, ...]

#: Buffers and tensors jaxsim does not use (not errors when present).
_IGNORED = re.compile(
    r"(^|\.)(position_ids|token_type_ids|masked_bias)$|attn\.attention\.bias$|^lm_head\.|"
    r"^cls\.|^pooler\.dense\.(weight|bias)$"
)
_PREFIXES = ("bert.", "transformer.", "model.")

# (pattern, path template, is_linear_weight). ``{i}`` in a template is the layer index.
_LN = r"(?P<p>weight|bias|gamma|beta)"
_BERT_TABLE = [
    (r"embeddings\.word_embeddings\.weight", ("embeddings", "word"), False),
    (r"embeddings\.position_embeddings\.weight", ("embeddings", "position"), False),
    (r"embeddings\.token_type_embeddings\.weight", ("embeddings", "token_type"), False),
    (rf"embeddings\.LayerNorm\.{_LN}", ("embeddings", "ln", "{p}"), False),
    (r"encoder\.layer\.(?P<i>\d+)\.attention\.self\.(?P<n>query|key|value)\.(?P<p>weight|bias)",
     ("layers", "{i}", "attention", "{n}", "{p}"), True),
    (r"encoder\.layer\.(?P<i>\d+)\.attention\.output\.dense\.(?P<p>weight|bias)",
     ("layers", "{i}", "attention", "output", "{p}"), True),
    (rf"encoder\.layer\.(?P<i>\d+)\.attention\.output\.LayerNorm\.{_LN}",
     ("layers", "{i}", "attention", "ln", "{p}"), False),
    (r"encoder\.layer\.(?P<i>\d+)\.intermediate\.dense\.(?P<p>weight|bias)",
     ("layers", "{i}", "mlp", "intermediate", "{p}"), True),
    (r"encoder\.layer\.(?P<i>\d+)\.output\.dense\.(?P<p>weight|bias)",
     ("layers", "{i}", "mlp", "output", "{p}"), True),
    (rf"encoder\.layer\.(?P<i>\d+)\.output\.LayerNorm\.{_LN}",
     ("layers", "{i}", "mlp", "ln", "{p}"), False),
]
_BERT_HEAD_TABLE = [
    (r"pooler\.dense\.(?P<p>weight|bias)", ("head", "pooler", "{p}"), True),
    (r"classifier\.(?P<p>weight|bias)", ("head", "classifier", "{p}"), True),
]
_GPT_NEO_TABLE = [
    (r"wte\.weight", ("embeddings", "word"), False),
    (r"wpe\.weight", ("embeddings", "position"), False),
    (rf"h\.(?P<i>\d+)\.(?P<n>ln_1|ln_2)\.{_LN}", ("layers", "{i}", "{n}", "{p}"), False),
    (r"h\.(?P<i>\d+)\.attn\.attention\.(?P<n>q|k|v)_proj\.weight",
     ("layers", "{i}", "attention", "{n}", "kernel"), True),
    (r"h\.(?P<i>\d+)\.attn\.attention\.out_proj\.(?P<p>weight|bias)",
     ("layers", "{i}", "attention", "output", "{p}"), True),
    (r"h\.(?P<i>\d+)\.mlp\.(?P<n>c_fc|c_proj)\.(?P<p>weight|bias)",
     ("layers", "{i}", "mlp", "{n}", "{p}"), True),
    (rf"ln_f\.{_LN}", ("ln_f", "{p}"), False),
]
_RENAME = {
    "weight": "kernel", "gamma": "scale", "beta": "bias", "q": "query", "k": "key", "v": "value",
    "c_fc": "fc", "c_proj": "proj",
}


def _few(names: list[str], limit: int = 10) -> str:
    """A list of tensor names for one error line: all of a short one, else the count and the
    first ``limit`` (a checkpoint of another model can miss thousands)."""
    if len(names) <= limit:
        return str(names)
    return f"{len(names)} tensors (first {limit}: {names[:limit]})"


def _dense(n_in: int, n_out: int, bias: bool = True) -> dict:
    return {"kernel": (n_in, n_out), "bias": (n_out,)} if bias else {"kernel": (n_in, n_out)}


def _ln(d: int) -> dict:
    return {"scale": (d,), "bias": (d,)}


def expected_shapes(config: ModelConfig) -> dict:
    """The params pytree with shape tuples at the leaves, from the config alone."""
    d, f = config.hidden_size, config.intermediate_size
    if isinstance(config, BertConfig):
        layer = {
            "attention": {**{n: _dense(d, d) for n in ("query", "key", "value", "output")},
                          "ln": _ln(d)},
            "mlp": {"intermediate": _dense(d, f), "output": _dense(f, d), "ln": _ln(d)},
        }
        tree: dict = {
            "embeddings": {
                "word": (config.vocab_size, d),
                "position": (config.max_position_embeddings, d),
                "token_type": (config.type_vocab_size, d),
                "ln": _ln(d),
            },
            "layers": tuple(layer for _ in range(config.num_layers)),
        }
        if config.num_labels is not None:
            tree["head"] = {"pooler": _dense(d, d), "classifier": _dense(d, config.num_labels)}
        return tree
    assert isinstance(config, GPTNeoConfig)
    layer = {
        "ln_1": _ln(d),
        "attention": {**{n: _dense(d, d, bias=False) for n in ("query", "key", "value")},
                      "output": _dense(d, d)},
        "ln_2": _ln(d),
        "mlp": {"fc": _dense(d, f), "proj": _dense(f, d)},
    }
    return {
        "embeddings": {"word": (config.vocab_size, d), "position": (config.max_position_embeddings, d)},
        "layers": tuple(layer for _ in range(config.num_layers)),
        "ln_f": _ln(d),
    }


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


def _table(config: ModelConfig) -> list:
    if isinstance(config, BertConfig):
        return _BERT_TABLE + (_BERT_HEAD_TABLE if config.num_labels is not None else [])
    return _GPT_NEO_TABLE


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
                path.append(int(value) if part == "{i}" else _RENAME.get(value, value))
            else:
                path.append(part)
        # LayerNorm "weight" is a scale, not a kernel.
        if path[-1] == "kernel" and not linear:
            path[-1] = "scale"
        return tuple(path), linear
    return None


def _strip_prefix(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def convert_state_dict(
    state: Mapping[str, np.ndarray], config: ModelConfig, source: str = "checkpoint"
) -> dict:
    """Map a HF state dict (numpy arrays) onto jaxsim params; fail once with every problem."""
    skeleton = expected_shapes(config)
    expected = _flatten(skeleton)
    table = _table(config)
    found: dict[Path, np.ndarray] = {}
    unexpected, misshaped, not_finite = [], [], []
    misshaped_paths: set[Path] = set()
    for raw_key, tensor in state.items():
        key = _strip_prefix(raw_key)
        target = _target_path(key, table)
        if target is None:
            if not _IGNORED.search(key):
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
    ``_RENAME`` backwards; a LayerNorm scale is written ``weight`` (today's name), not ``gamma``."""
    if isinstance(value, int):
        return [str(value)]
    return (["weight"] if value == "scale" else []) + [value] + [k for k, v in _RENAME.items() if v == value]


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
    table = _table(config)
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
