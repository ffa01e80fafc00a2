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
_ROBERTA_MODEL_TYPES = ("roberta", "xlm-roberta")
_DISTILBERT_MODEL_TYPES = ("distilbert",)
_MPNET_MODEL_TYPES = ("mpnet",)
_MODERNBERT_MODEL_TYPES = ("modernbert",)
#: Every ``model_type`` jaxsim implements, in the order of the error message.
SUPPORTED_MODEL_TYPES: tuple[str, ...] = (
    _BERT_MODEL_TYPES + _ROBERTA_MODEL_TYPES + _DISTILBERT_MODEL_TYPES + _MPNET_MODEL_TYPES
    + _MODERNBERT_MODEL_TYPES + _GPT_NEO_MODEL_TYPES
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """The fields every family has (frozen and hashable: configs are jit static arguments).

    ``num_labels`` is set for sequence-classification checkpoints (``*ForSequenceClassification``).
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float
    gelu_approximate: bool
    pad_token_id: int
    num_labels: int | None = None

    arch = "encoder"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True, kw_only=True)
class BertConfig(EncoderConfig):
    """BERT-family encoder (BERT, MiniLM, mBERT, sentence-transformers BERT)."""

    type_vocab_size: int

    arch = "bert"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GPTNeoConfig(EncoderConfig):
    """GPT-Neo decoder used as an encoder (global + local attention, learned positions)."""

    window_size: int
    attention_layers: tuple[str, ...]  # "global" | "local", one per layer

    arch = "gpt_neo"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RobertaConfig(EncoderConfig):
    """RoBERTa / XLM-RoBERTa: BERT's post-LN layers; positions start after ``padding_idx``.

    ``max_position_embeddings`` is the number of *usable* positions (the HF table size minus
    ``position_offset``, e.g. 514 - 2 = 512); ``position_table_size`` is the table's row count.
    Position ``p`` (0-based in its text) reads row ``p + position_offset`` (HF:
    ``cumsum(ids != pad) + padding_idx``, the same on every real token of right-padded input).
    """

    position_table_size: int
    position_offset: int
    type_vocab_size: int
    model_type: str = "roberta"

    arch = "roberta"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DistilBertConfig(EncoderConfig):
    """DistilBERT: BERT's post-LN layers without token types (LayerNorm eps fixed at 1e-12)."""

    arch = "distilbert"


@dataclasses.dataclass(frozen=True, kw_only=True)
class MPNetConfig(EncoderConfig):
    """MPNet: BERT's post-LN layers, RoBERTa-style positions (offset ``padding_idx + 1`` = 2), no
    token types, and a relative-position bucket bias ``f32[num_buckets, H]`` shared by all
    layers (T5-style buckets, ``max_distance`` 128)."""

    position_table_size: int
    position_offset: int
    relative_attention_num_buckets: int

    arch = "mpnet"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModernBertConfig(EncoderConfig):
    """ModernBERT: pre-LN blocks, rotary positions (a global and a local θ), GeGLU MLP, no biases
    by default, an embedding norm and a final norm; layer ``i`` is global when
    ``i % global_attn_every_n_layers == 0`` (``attention_layers``), else local: a key is visible
    when ``|query - key| <= local_attention // 2``."""

    attention_layers: tuple[str, ...]  # "global" | "local", one per layer
    local_attention: int
    global_rope_theta: float
    local_rope_theta: float
    attention_bias: bool
    mlp_bias: bool
    norm_bias: bool
    classifier_pooling: str = "cls"
    classifier_bias: bool = False
    classifier_gelu_approximate: bool = False

    arch = "modernbert"

    @property
    def half_window(self) -> int:
        return self.local_attention // 2


ModelConfig = BertConfig | GPTNeoConfig | RobertaConfig | DistilBertConfig | MPNetConfig | ModernBertConfig


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


def _gelu_approximate(activation: str, field: str = "activation") -> bool:
    """Whether the GELU named ``activation`` (config field ``field``) is the tanh approximation."""
    if activation not in _GELU_APPROXIMATE:
        raise _refuse(field, activation, f"supported: {sorted(_GELU_APPROXIMATE)}")
    return _GELU_APPROXIMATE[activation]


def _num_labels(hf: dict[str, Any]) -> int | None:
    """The label count of a ``*ForSequenceClassification`` checkpoint, else None (no head)."""
    architectures = hf.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return len(hf.get("id2label") or {}) or hf.get("num_labels", 2)
    return None


def _check_encoder(hf: dict[str, Any], family: str, heads_key: str = "num_attention_heads",
                   hidden_key: str = "hidden_size") -> None:
    """Guardrails every BERT-like family shares: absolute positions, encoder only, whole heads."""
    position_type = hf.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise _refuse("position_embedding_type", position_type, "only 'absolute'")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise _refuse("is_decoder/add_cross_attention", True, f"encoder-only {family}")
    _heads_divide(_whole(hf, hidden_key), _whole(hf, heads_key))


def _bert_from_hf(hf: dict[str, Any]) -> BertConfig:
    _check_encoder(hf, "BERT")
    num_labels = _num_labels(hf)
    return BertConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=_whole(hf, "hidden_size"),
        num_layers=_whole(hf, "num_hidden_layers"),
        num_heads=_whole(hf, "num_attention_heads"),
        intermediate_size=_whole(hf, "intermediate_size"),
        max_position_embeddings=_whole(hf, "max_position_embeddings"),
        type_vocab_size=_whole(hf, "type_vocab_size", default=2),
        layer_norm_eps=_eps(hf, "layer_norm_eps", 1e-12),
        gelu_approximate=_gelu_approximate(hf.get("hidden_act", "gelu"), "hidden_act"),
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
    return GPTNeoConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=hidden,
        num_layers=num_layers,
        num_heads=_whole(hf, "num_heads"),
        intermediate_size=_check_whole("intermediate_size", hf.get("intermediate_size") or 4 * hidden),
        max_position_embeddings=_whole(hf, "max_position_embeddings"),
        layer_norm_eps=_eps(hf, "layer_norm_epsilon", 1e-5),
        gelu_approximate=_gelu_approximate(hf.get("activation_function", "gelu_new"), "activation_function"),
        window_size=_whole(hf, "window_size", default=256),
        attention_layers=layers,
        pad_token_id=hf.get("pad_token_id") or hf.get("eos_token_id") or 0,
    )


def _roberta_from_hf(hf: dict[str, Any]) -> RobertaConfig:
    _check_encoder(hf, "RoBERTa")
    pad = hf.get("pad_token_id")
    pad = 1 if pad is None else pad
    offset = pad + 1
    table = _whole(hf, "max_position_embeddings")
    if table <= offset:
        raise _refuse("max_position_embeddings", table, f"must exceed padding_idx + 1 = {offset}")
    return RobertaConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=_whole(hf, "hidden_size"),
        num_layers=_whole(hf, "num_hidden_layers"),
        num_heads=_whole(hf, "num_attention_heads"),
        intermediate_size=_whole(hf, "intermediate_size"),
        max_position_embeddings=table - offset,
        position_table_size=table,
        position_offset=offset,
        type_vocab_size=_whole(hf, "type_vocab_size", default=1),
        layer_norm_eps=_eps(hf, "layer_norm_eps", 1e-5),
        gelu_approximate=_gelu_approximate(hf.get("hidden_act", "gelu"), "hidden_act"),
        pad_token_id=pad,
        model_type=hf["model_type"],
        num_labels=_num_labels(hf),
    )


def _distilbert_from_hf(hf: dict[str, Any]) -> DistilBertConfig:
    _check_encoder(hf, "DistilBERT", heads_key="n_heads", hidden_key="dim")
    return DistilBertConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=_whole(hf, "dim"),
        num_layers=_whole(hf, "n_layers"),
        num_heads=_whole(hf, "n_heads"),
        intermediate_size=_whole(hf, "hidden_dim"),
        max_position_embeddings=_whole(hf, "max_position_embeddings"),
        layer_norm_eps=1e-12,  # hard-coded in HF's DistilBERT, not a config field
        gelu_approximate=_gelu_approximate(hf.get("activation", "gelu")),
        pad_token_id=hf.get("pad_token_id") or 0,
        num_labels=_num_labels(hf),
    )


def _mpnet_from_hf(hf: dict[str, Any]) -> MPNetConfig:
    _check_encoder(hf, "MPNet")
    offset = 2  # HF's MPNetEmbeddings fixes padding_idx = 1 whatever pad_token_id says
    table = _whole(hf, "max_position_embeddings")
    if table <= offset:
        raise _refuse("max_position_embeddings", table, f"must exceed padding_idx + 1 = {offset}")
    return MPNetConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=_whole(hf, "hidden_size"),
        num_layers=_whole(hf, "num_hidden_layers"),
        num_heads=_whole(hf, "num_attention_heads"),
        intermediate_size=_whole(hf, "intermediate_size"),
        max_position_embeddings=table - offset,
        position_table_size=table,
        position_offset=offset,
        relative_attention_num_buckets=_whole(hf, "relative_attention_num_buckets", default=32),
        layer_norm_eps=_eps(hf, "layer_norm_eps", 1e-12),
        gelu_approximate=_gelu_approximate(hf.get("hidden_act", "gelu"), "hidden_act"),
        pad_token_id=1 if hf.get("pad_token_id") is None else hf["pad_token_id"],
        num_labels=_num_labels(hf),
    )


def _modernbert_layers(hf: dict[str, Any], num_layers: int) -> tuple[str, ...]:
    """``layer_types`` (transformers >= 5) or ``global_attn_every_n_layers`` (hub configs)."""
    kinds = {"full_attention": "global", "sliding_attention": "local"}
    if hf.get("layer_types"):
        for kind in hf["layer_types"]:
            if kind not in kinds:
                raise _refuse("layer_types", kind, f"only {sorted(kinds)}")
        layers = tuple(kinds[k] for k in hf["layer_types"])
        if len(layers) != num_layers:
            raise UnsupportedModelError(
                f"layer_types has {len(layers)} entries but num_hidden_layers={num_layers}"
            )
        return layers
    every = hf.get("global_attn_every_n_layers", 3)
    if not isinstance(every, int) or every < 1:
        raise _refuse("global_attn_every_n_layers", every, "a positive integer")
    return tuple("global" if i % every == 0 else "local" for i in range(num_layers))


def _modernbert_thetas(hf: dict[str, Any]) -> tuple[float, float]:
    """(global θ, local θ) from ``rope_parameters`` (transformers >= 5) or the hub's
    ``global_rope_theta`` / ``local_rope_theta``; only the default (unscaled) RoPE."""
    if hf.get("rope_scaling"):
        raise _refuse("rope_scaling", hf["rope_scaling"], "only unscaled RoPE")
    thetas = {"full_attention": hf.get("global_rope_theta", 160_000.0),
              "sliding_attention": hf.get("local_rope_theta", 10_000.0)}
    for kind, params in (hf.get("rope_parameters") or {}).items():
        if kind not in thetas or params is None:
            continue
        rope_type = params.get("rope_type", "default")
        if rope_type != "default":
            raise _refuse(f"rope_parameters.{kind}.rope_type", rope_type, "only 'default'")
        thetas[kind] = params.get("rope_theta", thetas[kind])
    return float(thetas["full_attention"]), float(thetas["sliding_attention"])


def _modernbert_from_hf(hf: dict[str, Any]) -> ModernBertConfig:
    _heads_divide(_whole(hf, "hidden_size"), _whole(hf, "num_attention_heads"))
    if hf.get("head_dim") not in (None, hf["hidden_size"] // hf["num_attention_heads"]):
        raise _refuse("head_dim", hf["head_dim"], "hidden_size // num_attention_heads")
    pooling = hf.get("classifier_pooling", "cls")
    if pooling not in ("cls", "mean"):
        raise _refuse("classifier_pooling", pooling, "'cls' or 'mean'")
    num_layers = _whole(hf, "num_hidden_layers")
    global_theta, local_theta = _modernbert_thetas(hf)
    pad = hf.get("pad_token_id")
    return ModernBertConfig(
        vocab_size=_whole(hf, "vocab_size"),
        hidden_size=_whole(hf, "hidden_size"),
        num_layers=num_layers,
        num_heads=_whole(hf, "num_attention_heads"),
        intermediate_size=_whole(hf, "intermediate_size"),
        max_position_embeddings=hf.get("max_position_embeddings", 8192),
        layer_norm_eps=_eps(hf, "norm_eps", 1e-5),
        gelu_approximate=_gelu_approximate(hf.get("hidden_activation", "gelu"), "hidden_activation"),
        attention_layers=_modernbert_layers(hf, num_layers),
        local_attention=_whole(hf, "local_attention", default=128),
        global_rope_theta=global_theta,
        local_rope_theta=local_theta,
        attention_bias=bool(hf.get("attention_bias", False)),
        mlp_bias=bool(hf.get("mlp_bias", False)),
        norm_bias=bool(hf.get("norm_bias", False)),
        pad_token_id=50283 if pad is None else pad,
        num_labels=_num_labels(hf),
        classifier_pooling=pooling,
        classifier_bias=bool(hf.get("classifier_bias", False)),
        classifier_gelu_approximate=_gelu_approximate(hf.get("classifier_activation", "gelu"),
                                                       "classifier_activation"),
    )


_FAMILIES = (
    (_BERT_MODEL_TYPES, _bert_from_hf),
    (_ROBERTA_MODEL_TYPES, _roberta_from_hf),
    (_DISTILBERT_MODEL_TYPES, _distilbert_from_hf),
    (_MPNET_MODEL_TYPES, _mpnet_from_hf),
    (_MODERNBERT_MODEL_TYPES, _modernbert_from_hf),
    (_GPT_NEO_MODEL_TYPES, _gpt_neo_from_hf),
)


def config_from_hf(hf: dict[str, Any]) -> ModelConfig:
    """Build a frozen config from a parsed HF ``config.json``; refuse unsupported models."""
    model_type = hf.get("model_type")
    for model_types, build in _FAMILIES:
        if model_type in model_types:
            return build(hf)
    raise UnsupportedModelError(
        f"model_type={model_type!r} is not supported: jaxsim implements {list(SUPPORTED_MODEL_TYPES)}"
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
