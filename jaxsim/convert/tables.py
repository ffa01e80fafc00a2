"""Per-family key tables: Hugging Face state-dict keys -> jaxsim params paths, and the params
shapes each config implies.

A ``Family`` holds a small regex table (pattern, path template, is-``Linear``-weight; ``{i}`` is
the layer index, ``{n}``/``{p}`` named groups renamed by ``RENAME``), the key prefixes its
checkpoints may carry (``bert.``, ``roberta.``, ...), the keys it knows but does not use, and
``shapes(config)``: the params pytree with shape tuples at the leaves, from the config alone.
``jaxsim.convert.keymap`` applies it and collects every problem before failing once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from jaxsim.models.config import (
    BertConfig,
    DistilBertConfig,
    GPTNeoConfig,
    ModelConfig,
    ModernBertConfig,
    MPNetConfig,
    RobertaConfig,
)

Table = list[tuple[str, tuple[str, ...], bool]]

#: Buffers and tensors no family uses (not errors when present).
_COMMON_IGNORED = (r"(^|\.)(position_ids|token_type_ids|masked_bias)$|attn\.attention\.bias$|"
                   r"^lm_head\.|^cls\.|^pooler\.dense\.(weight|bias)$")

RENAME = {
    "weight": "kernel", "gamma": "scale", "beta": "bias", "q": "query", "k": "key", "v": "value",
    "c_fc": "fc", "c_proj": "proj",
}

_LN = r"(?P<p>weight|bias|gamma|beta)"
_WB = r"(?P<p>weight|bias)"
_L = r"(?P<i>\d+)"


class Family(NamedTuple):
    """How one family's checkpoints map onto its params pytree."""

    table: Table
    head_table: Table  # used only for ``*ForSequenceClassification`` configs (num_labels set)
    prefixes: tuple[str, ...]
    ignored: re.Pattern
    shapes: Callable[[ModelConfig], dict]


def _dense(n_in: int, n_out: int, bias: bool = True) -> dict:
    return {"kernel": (n_in, n_out), "bias": (n_out,)} if bias else {"kernel": (n_in, n_out)}


def _ln(d: int, bias: bool = True) -> dict:
    return {"scale": (d,), "bias": (d,)} if bias else {"scale": (d,)}


def _ignored(extra: str = "") -> re.Pattern:
    return re.compile(_COMMON_IGNORED + (f"|{extra}" if extra else ""))


# --- BERT and the families with its block (RoBERTa, DistilBERT, MPNet) ------------------------

def _post_ln_layer(d: int, f: int) -> dict:
    return {
        "attention": {**{n: _dense(d, d) for n in ("query", "key", "value", "output")}, "ln": _ln(d)},
        "mlp": {"intermediate": _dense(d, f), "output": _dense(f, d), "ln": _ln(d)},
    }


def _bert_like_shapes(config, *, positions: int, token_types: int | None, head: dict | None) -> dict:
    d, f = config.hidden_size, config.intermediate_size
    embeddings = {"word": (config.vocab_size, d), "position": (positions, d)}
    if token_types is not None:
        embeddings["token_type"] = (token_types, d)
    embeddings["ln"] = _ln(d)
    tree: dict = {
        "embeddings": embeddings,
        "layers": tuple(_post_ln_layer(d, f) for _ in range(config.num_layers)),
    }
    if config.num_labels is not None and head is not None:
        tree["head"] = head
    return tree


def _tanh_head(config) -> dict:
    d = config.hidden_size
    return {"pooler": _dense(d, d), "classifier": _dense(d, config.num_labels or 0)}


def _bert_shapes(config: BertConfig) -> dict:
    return _bert_like_shapes(config, positions=config.max_position_embeddings,
                             token_types=config.type_vocab_size, head=_tanh_head(config))


def _roberta_shapes(config: RobertaConfig) -> dict:
    return _bert_like_shapes(config, positions=config.position_table_size,
                             token_types=config.type_vocab_size, head=_tanh_head(config))


def _distilbert_shapes(config: DistilBertConfig) -> dict:
    d = config.hidden_size
    head = {"pre_classifier": _dense(d, d), "classifier": _dense(d, config.num_labels or 0)}
    return _bert_like_shapes(config, positions=config.max_position_embeddings, token_types=None,
                             head=head)


def _mpnet_shapes(config: MPNetConfig) -> dict:
    tree = _bert_like_shapes(config, positions=config.position_table_size, token_types=None,
                             head=_tanh_head(config))
    tree["relative_attention_bias"] = (config.relative_attention_num_buckets, config.num_heads)
    return tree


_BERT_TABLE: Table = [
    (r"embeddings\.word_embeddings\.weight", ("embeddings", "word"), False),
    (r"embeddings\.position_embeddings\.weight", ("embeddings", "position"), False),
    (r"embeddings\.token_type_embeddings\.weight", ("embeddings", "token_type"), False),
    (rf"embeddings\.LayerNorm\.{_LN}", ("embeddings", "ln", "{p}"), False),
    (rf"encoder\.layer\.{_L}\.attention\.self\.(?P<n>query|key|value)\.{_WB}",
     ("layers", "{i}", "attention", "{n}", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.attention\.output\.dense\.{_WB}",
     ("layers", "{i}", "attention", "output", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.attention\.output\.LayerNorm\.{_LN}",
     ("layers", "{i}", "attention", "ln", "{p}"), False),
    (rf"encoder\.layer\.{_L}\.intermediate\.dense\.{_WB}",
     ("layers", "{i}", "mlp", "intermediate", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.output\.dense\.{_WB}", ("layers", "{i}", "mlp", "output", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.output\.LayerNorm\.{_LN}", ("layers", "{i}", "mlp", "ln", "{p}"), False),
]
_BERT_HEAD_TABLE: Table = [
    (rf"pooler\.dense\.{_WB}", ("head", "pooler", "{p}"), True),
    (rf"classifier\.{_WB}", ("head", "classifier", "{p}"), True),
]
# RobertaClassificationHead / MPNetClassificationHead: dense -> tanh -> out_proj on <s>.
_ROBERTA_HEAD_TABLE: Table = [
    (rf"classifier\.dense\.{_WB}", ("head", "pooler", "{p}"), True),
    (rf"classifier\.out_proj\.{_WB}", ("head", "classifier", "{p}"), True),
]
_DISTILBERT_TABLE: Table = [
    (r"embeddings\.word_embeddings\.weight", ("embeddings", "word"), False),
    (r"embeddings\.position_embeddings\.weight", ("embeddings", "position"), False),
    (rf"embeddings\.LayerNorm\.{_LN}", ("embeddings", "ln", "{p}"), False),
    (rf"transformer\.layer\.{_L}\.attention\.(?P<n>q|k|v)_lin\.{_WB}",
     ("layers", "{i}", "attention", "{n}", "{p}"), True),
    (rf"transformer\.layer\.{_L}\.attention\.out_lin\.{_WB}",
     ("layers", "{i}", "attention", "output", "{p}"), True),
    (rf"transformer\.layer\.{_L}\.sa_layer_norm\.{_LN}", ("layers", "{i}", "attention", "ln", "{p}"), False),
    (rf"transformer\.layer\.{_L}\.ffn\.lin1\.{_WB}", ("layers", "{i}", "mlp", "intermediate", "{p}"), True),
    (rf"transformer\.layer\.{_L}\.ffn\.lin2\.{_WB}", ("layers", "{i}", "mlp", "output", "{p}"), True),
    (rf"transformer\.layer\.{_L}\.output_layer_norm\.{_LN}", ("layers", "{i}", "mlp", "ln", "{p}"), False),
]
_DISTILBERT_HEAD_TABLE: Table = [
    (rf"pre_classifier\.{_WB}", ("head", "pre_classifier", "{p}"), True),
    (rf"classifier\.{_WB}", ("head", "classifier", "{p}"), True),
]
_MPNET_TABLE: Table = [
    (r"embeddings\.word_embeddings\.weight", ("embeddings", "word"), False),
    (r"embeddings\.position_embeddings\.weight", ("embeddings", "position"), False),
    (rf"embeddings\.LayerNorm\.{_LN}", ("embeddings", "ln", "{p}"), False),
    (rf"encoder\.layer\.{_L}\.attention\.attn\.(?P<n>q|k|v)\.{_WB}",
     ("layers", "{i}", "attention", "{n}", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.attention\.attn\.o\.{_WB}",
     ("layers", "{i}", "attention", "output", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.attention\.LayerNorm\.{_LN}",
     ("layers", "{i}", "attention", "ln", "{p}"), False),
    (rf"encoder\.layer\.{_L}\.intermediate\.dense\.{_WB}",
     ("layers", "{i}", "mlp", "intermediate", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.output\.dense\.{_WB}", ("layers", "{i}", "mlp", "output", "{p}"), True),
    (rf"encoder\.layer\.{_L}\.output\.LayerNorm\.{_LN}", ("layers", "{i}", "mlp", "ln", "{p}"), False),
    (r"encoder\.relative_attention_bias\.weight", ("relative_attention_bias",), False),
]


# --- GPT-Neo ----------------------------------------------------------------------------------

def _gpt_neo_shapes(config: GPTNeoConfig) -> dict:
    d, f = config.hidden_size, config.intermediate_size
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


_GPT_NEO_TABLE: Table = [
    (r"wte\.weight", ("embeddings", "word"), False),
    (r"wpe\.weight", ("embeddings", "position"), False),
    (rf"h\.{_L}\.(?P<n>ln_1|ln_2)\.{_LN}", ("layers", "{i}", "{n}", "{p}"), False),
    (rf"h\.{_L}\.attn\.attention\.(?P<n>q|k|v)_proj\.weight",
     ("layers", "{i}", "attention", "{n}", "kernel"), True),
    (rf"h\.{_L}\.attn\.attention\.out_proj\.{_WB}", ("layers", "{i}", "attention", "output", "{p}"), True),
    (rf"h\.{_L}\.mlp\.(?P<n>c_fc|c_proj)\.{_WB}", ("layers", "{i}", "mlp", "{n}", "{p}"), True),
    (rf"ln_f\.{_LN}", ("ln_f", "{p}"), False),
]


# --- ModernBERT -------------------------------------------------------------------------------

def _modernbert_shapes(config: ModernBertConfig) -> dict:
    d, f = config.hidden_size, config.intermediate_size
    attn_b, mlp_b, norm_b = config.attention_bias, config.mlp_bias, config.norm_bias

    def layer(i: int) -> dict:
        out: dict = {} if i == 0 else {"attn_norm": _ln(d, norm_b)}  # layer 0: identity
        out["attention"] = {"qkv": _dense(d, 3 * d, attn_b), "output": _dense(d, d, attn_b)}
        out["mlp_norm"] = _ln(d, norm_b)
        out["mlp"] = {"wi": _dense(d, 2 * f, mlp_b), "wo": _dense(f, d, mlp_b)}
        return out

    tree: dict = {
        "embeddings": {"word": (config.vocab_size, d), "ln": _ln(d, norm_b)},
        "layers": tuple(layer(i) for i in range(config.num_layers)),
        "final_norm": _ln(d, norm_b),
    }
    if config.num_labels is not None:
        tree["head"] = {"dense": _dense(d, d, config.classifier_bias), "norm": _ln(d, norm_b),
                        "classifier": _dense(d, config.num_labels)}
    return tree


_MODERNBERT_TABLE: Table = [
    (r"embeddings\.tok_embeddings\.weight", ("embeddings", "word"), False),
    (rf"embeddings\.norm\.{_LN}", ("embeddings", "ln", "{p}"), False),
    (rf"layers\.{_L}\.(?P<n>attn_norm|mlp_norm)\.{_LN}", ("layers", "{i}", "{n}", "{p}"), False),
    (rf"layers\.{_L}\.attn\.Wqkv\.{_WB}", ("layers", "{i}", "attention", "qkv", "{p}"), True),
    (rf"layers\.{_L}\.attn\.Wo\.{_WB}", ("layers", "{i}", "attention", "output", "{p}"), True),
    (rf"layers\.{_L}\.mlp\.Wi\.{_WB}", ("layers", "{i}", "mlp", "wi", "{p}"), True),
    (rf"layers\.{_L}\.mlp\.Wo\.{_WB}", ("layers", "{i}", "mlp", "wo", "{p}"), True),
    (rf"final_norm\.{_LN}", ("final_norm", "{p}"), False),
]
_MODERNBERT_HEAD_TABLE: Table = [
    (rf"head\.dense\.{_WB}", ("head", "dense", "{p}"), True),
    (rf"head\.norm\.{_LN}", ("head", "norm", "{p}"), False),
    (rf"classifier\.{_WB}", ("head", "classifier", "{p}"), True),
]

_OLD_PREFIXES = ("bert.", "transformer.", "model.")

FAMILIES: dict[type, Family] = {
    BertConfig: Family(_BERT_TABLE, _BERT_HEAD_TABLE, _OLD_PREFIXES, _ignored(), _bert_shapes),
    GPTNeoConfig: Family(_GPT_NEO_TABLE, [], _OLD_PREFIXES, _ignored(), _gpt_neo_shapes),
    RobertaConfig: Family(_BERT_TABLE, _ROBERTA_HEAD_TABLE, ("roberta.",), _ignored(), _roberta_shapes),
    DistilBertConfig: Family(
        _DISTILBERT_TABLE, _DISTILBERT_HEAD_TABLE, ("distilbert.",),
        _ignored(r"^vocab_(transform|layer_norm|projector)\."), _distilbert_shapes,
    ),
    MPNetConfig: Family(_MPNET_TABLE, _ROBERTA_HEAD_TABLE, ("mpnet.",), _ignored(), _mpnet_shapes),
    # A masked-LM checkpoint (answerdotai/ModernBERT-base) carries its MLM head and decoder.
    ModernBertConfig: Family(_MODERNBERT_TABLE, _MODERNBERT_HEAD_TABLE, ("model.",),
                             _ignored(r"^head\.|^decoder\."), _modernbert_shapes),
}


def family(config: ModelConfig) -> Family:
    return FAMILIES[type(config)]


def key_table(config: ModelConfig) -> Table:
    """The table for this config: the encoder's, plus its head's for a classifier checkpoint."""
    fam = family(config)
    return fam.table + (fam.head_table if getattr(config, "num_labels", None) is not None else [])


def expected_shapes(config: ModelConfig) -> dict:
    """The params pytree with shape tuples at the leaves, from the config alone."""
    return family(config).shapes(config)
