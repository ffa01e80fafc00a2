"""Frozen model configs built from a Hugging Face ``config.json``, with guardrails.

Anything the encoders do not implement is refused up front with a message that names the
setting ("this config uses X, which jaxsim does not support") instead of failing later with a
shape error or, worse, silently computing something else.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from jaxsim.errors import ModelNotFoundError, UnsupportedModelError

#: HF activation names -> whether jaxsim's GELU uses the tanh approximation.
_GELU_APPROXIMATE = {"gelu": False, "gelu_python": False, "gelu_new": True, "gelu_pytorch_tanh": True}

_BERT_MODEL_TYPES = ("bert",)
_GPT_NEO_MODEL_TYPES = ("gpt_neo",)


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """BERT-family encoder (BERT, MiniLM, mBERT, sentence-transformers BERT)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    gelu_approximate: bool
    pad_token_id: int
    num_labels: int | None = None  # set for sequence-classification checkpoints

    arch = "bert"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True)
class GPTNeoConfig:
    """GPT-Neo decoder used as an encoder (global + local attention, learned positions)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float
    gelu_approximate: bool
    window_size: int
    attention_layers: tuple[str, ...]  # "global" | "local", one per layer
    pad_token_id: int

    arch = "gpt_neo"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


ModelConfig = BertConfig | GPTNeoConfig


def _refuse(setting: str, value: Any, supported: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"this config uses {setting}={value!r}, which jaxsim does not support ({supported})"
    )


def _whole(hf: dict[str, Any], key: str, minimum: int = 1, default: Any = None) -> int:
    """``hf[key]`` as a size: a JSON integer >= ``minimum`` (not 32.0, "32", true or 0), so a
    nonsensical config fails here, in one line, not as a shape error or a division by zero."""
    return _check_whole(key, hf[key] if default is None else hf.get(key, default), minimum)


def _check_whole(key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UnsupportedModelError(
            f"config.json has {key}={value!r}: it must be a whole number >= {minimum}; fix the "
            "config or re-export it with transformers"
        )
    return value


def _eps(hf: dict[str, Any], key: str, default: float) -> float:
    value = hf.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise UnsupportedModelError(
            f"config.json has {key}={value!r}: it must be a positive number (e.g. 1e-12); fix "
            "the config or re-export it with transformers"
        )
    return float(value)


def _heads_divide(hidden: int, heads: int) -> None:
    if hidden % heads:
        raise _refuse("hidden_size", hidden, f"must be divisible by the head count {heads}")


def _gelu_approximate(activation: str) -> bool:
    if activation not in _GELU_APPROXIMATE:
        raise _refuse("activation", activation, f"supported: {sorted(_GELU_APPROXIMATE)}")
    return _GELU_APPROXIMATE[activation]


def _bert_from_hf(hf: dict[str, Any]) -> BertConfig:
    position_type = hf.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise _refuse("position_embedding_type", position_type, "only 'absolute'")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise _refuse("is_decoder/add_cross_attention", True, "encoder-only BERT")
    _heads_divide(_whole(hf, "hidden_size"), _whole(hf, "num_attention_heads"))
    architectures = hf.get("architectures") or []
    num_labels = None
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        num_labels = len(hf.get("id2label") or {}) or hf.get("num_labels", 2)
    return BertConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=_whole(hf, "hidden_size"),
        num_layers=_whole(hf, "num_hidden_layers"),
        num_heads=_whole(hf, "num_attention_heads"),
        intermediate_size=_whole(hf, "intermediate_size"),
        max_position_embeddings=_whole(hf, "max_position_embeddings"),
        type_vocab_size=_whole(hf, "type_vocab_size", default=2),
        layer_norm_eps=_eps(hf, "layer_norm_eps", 1e-12),
        gelu_approximate=_gelu_approximate(hf.get("hidden_act", "gelu")),
        pad_token_id=hf.get("pad_token_id") or 0,
        num_labels=num_labels,
    )


def _expand_attention_layers(spec: list[Any], num_layers: int) -> tuple[str, ...]:
    """HF ``attention_types`` is ``[[["global", "local"], 12]]``: patterns repeated n times."""
    layers: list[str] = []
    for pattern, repeat in spec:
        layers.extend(list(pattern) * repeat)
    for kind in layers:
        if kind not in ("global", "local"):
            raise _refuse("attention_types", kind, "only 'global' and 'local'")
    if len(layers) != num_layers:
        raise UnsupportedModelError(
            f"attention_types expand to {len(layers)} layers but num_layers={num_layers}"
        )
    return tuple(layers)


def _gpt_neo_from_hf(hf: dict[str, Any]) -> GPTNeoConfig:
    num_layers = _whole(hf, "num_layers")
    if "attention_layers" in hf and hf["attention_layers"]:
        layers = tuple(hf["attention_layers"])
        for kind in layers:
            if kind not in ("global", "local"):
                raise _refuse("attention_layers", kind, "only 'global' and 'local'")
    else:
        layers = _expand_attention_layers(hf["attention_types"], num_layers)
    hidden = _whole(hf, "hidden_size")
    _heads_divide(hidden, _whole(hf, "num_heads"))
    return GPTNeoConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=hidden,
        num_layers=num_layers,
        num_heads=_whole(hf, "num_heads"),
        intermediate_size=_check_whole("intermediate_size",
                                       hf.get("intermediate_size") or 4 * hidden),
        max_position_embeddings=_whole(hf, "max_position_embeddings"),
        layer_norm_eps=_eps(hf, "layer_norm_epsilon", 1e-5),
        gelu_approximate=_gelu_approximate(hf.get("activation_function", "gelu_new")),
        window_size=_whole(hf, "window_size", default=256),
        attention_layers=layers,
        pad_token_id=hf.get("pad_token_id") or hf.get("eos_token_id") or 0,
    )


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    """Build a frozen config from a parsed HF ``config.json``; refuse unsupported models."""
    model_type = hf.get("model_type")
    if model_type in _BERT_MODEL_TYPES:
        return _bert_from_hf(hf)
    if model_type in _GPT_NEO_MODEL_TYPES:
        return _gpt_neo_from_hf(hf)
    raise UnsupportedModelError(
        f"model_type={model_type!r} is not supported: jaxsim implements "
        f"{list(_BERT_MODEL_TYPES + _GPT_NEO_MODEL_TYPES)}"
    )


def load_config(model_dir: Path) -> ModelConfig:
    """Read ``config.json`` from a model directory."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ModelNotFoundError(
            f"{model_dir} has no config.json, so it is not a Hugging Face model folder: pass the "
            "folder that holds config.json and the weights"
        )
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnsupportedModelError(
            f"{path} is not valid JSON ({err}); re-download or re-export the model"
        ) from err
    if not isinstance(hf, dict):
        raise UnsupportedModelError(f"{path} is not a JSON object; re-export the config")
    try:
        return config_from_hf(hf)
    except KeyError as err:
        raise UnsupportedModelError(
            f"{path} lacks the setting {err}; re-export the config with transformers"
        ) from err
    except (TypeError, ValueError) as err:  # e.g. attention_types of the wrong shape
        raise UnsupportedModelError(
            f"{path} has a malformed setting ({err}); re-export the config with transformers"
        ) from err
