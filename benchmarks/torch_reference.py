"""Independent PyTorch twin of BiLRP and H×P for Hugging Face BERT models.

Written from the Hugging Face module weights only (no jaxsim code), as the reference that
jaxsim's BiLRP engines are tested and timed against (METHODS.md §1, §5).

The BERT forward is re-implemented functionally from ``model.embeddings`` and
``model.encoder.layer[i]``'s weights, with the three LRP rules of [BiLRP] §3.2 switchable:

- **AH**: ``out = softmax(QK^T / sqrt(d_head) + mask).detach() @ V``;
- **LN**: ``(h - mean) / sqrt(var + eps).detach() * gamma + beta`` (``ln_variant="paper"``), or the
  published code's ``(h - mean) / (std.detach() + eps)`` (``ln_variant="reference"``,
  population std, eps outside the square root);
- **GA**: ``z * (gelu(z) / z).detach()`` (limit 0.5 at z = 0).

Each frozen factor (attention probabilities, LN scale, GELU ratio) is by default computed from a
detached input, which has the same value and zero derivative as detaching the factor itself
(``Rules(detach="output")``, the published spelling) and spares forward-mode AD the tangents it
would throw away (see ``Rules``).

With every rule off (``PLAIN``) the forward is the plain model (H×P uses plain gradients), and it
reproduces ``BertModel(...).last_hidden_state``.

For ``y = <phi(a), phi(b)>`` with ``phi`` the un-normalised mean-pooled embedding and ``x`` the
embedding module's output (after its LayerNorm, token types 0)::

    r_m(x)[t] = sum_d x[t, d] * d phi~_m / d x[t, d]          # r: [h, n]
    R         = r(a)^T r(b)                                  # [n_a, n_b]

Three engines compute ``r``:

- ``reference_loop``: the published reference style (alevas/xai_similarity_transformers): a
  Python loop over the ``h`` pooled dimensions, batch 1, one backward per dimension on a retained
  graph, ``R_m = (grad * x).sum(-1)``, ``R = sum_m outer(R_m(a), R_m(b))``. The published code
  also re-runs the forward pass for every dimension (``recompute_forward=True``); by default
  this twin keeps one forward, a lower bound on the published cost.
- ``vectorised_vjp``: ``torch.func.vmap`` of one ``torch.func.vjp`` over the ``h`` one-hot
  cotangents;
- ``vectorised_jvp``: ``torch.func.vmap`` of ``torch.func.jvp`` over the ``n`` per-token tangents
  ``x * onehot(t)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor
LNVariant = Literal["paper", "reference"]
_TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


# --- rules ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rules:
    """Which LRP rules the forward applies (all off = the plain model, i.e. H×P).

    detach: where a rule's frozen factor is cut from the graph. ``input`` computes it from a
    detached input, ``output`` detaches the computed factor (the published code's spelling).
    Values and gradients are identical; ``input`` spares forward-mode AD the tangents that a
    later ``.detach()`` would discard, which keeps ``vectorised_jvp`` the best PyTorch baseline.
    """

    attention: bool = True
    layer_norm: bool = True
    gelu: bool = True
    ln_variant: LNVariant = "paper"
    detach: Literal["input", "output"] = "input"


LRP = Rules()
LRP_PUBLISHED = Rules(detach="output")  # the rules spelt as in alevas/xai_similarity_transformers
PLAIN = Rules(attention=False, layer_norm=False, gelu=False)


def freeze(factor: Callable[[Tensor], Tensor], t: Tensor, on: bool, rules: Rules) -> Tensor:
    """``factor(t)``, as a constant when the rule is ``on`` (see ``Rules.detach``)."""
    if not on:
        return factor(t)
    if rules.detach == "input":
        return factor(t.detach())
    return factor(t).detach()


def attention_probs(q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
    """``softmax(q k^T / sqrt(d_head))`` with padded keys masked to probability 0."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:  # bool[B, n]
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


def ln_scale(x: Tensor, eps: float, variant: LNVariant) -> Tensor:
    """The LayerNorm denominator: ``sqrt(var + eps)`` (paper) or ``std + eps`` (reference)."""
    var = x.var(-1, unbiased=False, keepdim=True)
    if variant == "paper":
        return torch.sqrt(var + eps)
    if variant == "reference":
        return torch.sqrt(var) + eps
    raise ValueError(f"unknown ln_variant {variant!r}: paper or reference")


def rule_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float, rules: Rules) -> Tensor:
    """LayerNorm over the last axis; LN freezes the scale (the mean stays differentiable)."""
    if not rules.layer_norm:
        return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    scale = freeze(lambda t: ln_scale(t, eps, rules.ln_variant), x, True, rules)
    return (x - x.mean(-1, keepdim=True)) / scale * weight + bias


def gelu_ratio(z: Tensor, approximate: str) -> Tensor:
    """``gelu(z) / z`` with its limit 0.5 at 0."""
    small = z.abs() < 1e-9
    return torch.where(small, 0.5, F.gelu(z, approximate=approximate) / torch.where(small, 1.0, z))


def rule_gelu(z: Tensor, approximate: str, rules: Rules) -> Tensor:
    """GELU; GA makes it ``z * [gelu(z) / z].detach()`` (relevance proportional to activation)."""
    if not rules.gelu:
        return F.gelu(z, approximate=approximate)
    return z * freeze(lambda t: gelu_ratio(t, approximate), z, True, rules)


# --- weights and forward ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerWeights:
    """One ``BertLayer``'s parameters (``F.linear`` layout: weight [out, in])."""

    query: tuple[Tensor, Tensor]
    key: tuple[Tensor, Tensor]
    value: tuple[Tensor, Tensor]
    attention_out: tuple[Tensor, Tensor]
    attention_ln: tuple[Tensor, Tensor]
    intermediate: tuple[Tensor, Tensor]
    output: tuple[Tensor, Tensor]
    output_ln: tuple[Tensor, Tensor]


@dataclasses.dataclass(frozen=True)
class BertWeights:
    """Detached views of a Hugging Face ``BertModel``'s weights (no copy)."""

    word: Tensor
    position: Tensor
    token_type: Tensor
    embedding_ln: tuple[Tensor, Tensor]
    layers: tuple[LayerWeights, ...]
    num_heads: int
    eps: float
    gelu_approximate: str

    @classmethod
    def from_hf(cls, model: torch.nn.Module) -> BertWeights:
        config = model.config
        if config.hidden_act not in ("gelu", *_TANH_GELUS):
            raise ValueError(f"unsupported activation {config.hidden_act!r}")
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        emb = model.embeddings
        return cls(
            word=emb.word_embeddings.weight.detach(),
            position=emb.position_embeddings.weight.detach(),
            token_type=emb.token_type_embeddings.weight.detach(),
            embedding_ln=_pair(emb.LayerNorm),
            layers=tuple(_layer_weights(layer) for layer in model.encoder.layer),
            num_heads=config.num_attention_heads,
            eps=config.layer_norm_eps,
            gelu_approximate="tanh" if config.hidden_act in _TANH_GELUS else "none",
        )


def _pair(module: torch.nn.Module) -> tuple[Tensor, Tensor]:
    return module.weight.detach(), module.bias.detach()


def _layer_weights(layer: torch.nn.Module) -> LayerWeights:
    att = layer.attention
    return LayerWeights(
        query=_pair(att.self.query), key=_pair(att.self.key), value=_pair(att.self.value),
        attention_out=_pair(att.output.dense), attention_ln=_pair(att.output.LayerNorm),
        intermediate=_pair(layer.intermediate.dense), output=_pair(layer.output.dense),
        output_ln=_pair(layer.output.LayerNorm),
    )


def as_weights(model: torch.nn.Module | BertWeights) -> BertWeights:
    return model if isinstance(model, BertWeights) else BertWeights.from_hf(model)


def embedding_output(w: BertWeights, ids: Tensor) -> Tensor:
    """The embedding module's output, token types 0: ``i64[B, n] -> f32[B, n, d]``."""
    n = ids.shape[-1]
    summed = w.word[ids] + w.position[:n] + w.token_type[0]
    return F.layer_norm(summed, (summed.shape[-1],), *w.embedding_ln, w.eps)


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """``[B, n, H*k] -> [B, H, n, k]``."""
    b, n, d = x.shape
    return x.view(b, n, num_heads, d // num_heads).transpose(1, 2)


def encoder_layer(
    lw: LayerWeights, w: BertWeights, x: Tensor, mask: Tensor | None, rules: Rules
) -> Tensor:
    """One post-LN BERT layer: self-attention, add & norm, GELU MLP, add & norm."""

    def probs(t: Tensor) -> Tensor:  # AH freezes the attention probabilities
        q, k = (_heads(F.linear(t, *p), w.num_heads) for p in (lw.query, lw.key))
        return attention_probs(q, k, mask)

    v = _heads(F.linear(x, *lw.value), w.num_heads)
    context = freeze(probs, x, rules.attention, rules) @ v
    context = context.transpose(1, 2).reshape(x.shape)
    x = rule_layer_norm(F.linear(context, *lw.attention_out) + x, *lw.attention_ln, w.eps, rules)
    hidden = rule_gelu(F.linear(x, *lw.intermediate), w.gelu_approximate, rules)
    return rule_layer_norm(F.linear(hidden, *lw.output) + x, *lw.output_ln, w.eps, rules)


def encode(w: BertWeights, x: Tensor, mask: Tensor | None = None, rules: Rules = PLAIN) -> Tensor:
    """Last hidden state ``f32[B, n, d]`` from the embedding output ``x``."""
    for lw in w.layers:
        x = encoder_layer(lw, w, x, mask, rules)
    return x


def mean_pool(hidden: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over real tokens, [CLS]/[SEP] included (sentence-transformers)."""
    if mask is None:
        return hidden.mean(1)
    weights = mask.to(hidden.dtype)[..., None]
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


def pooled(w: BertWeights, x: Tensor, mask: Tensor | None = None, rules: Rules = PLAIN) -> Tensor:
    """Un-normalised mean-pooled embedding ``f32[B, h]`` of the (rule) encoder."""
    return mean_pool(encode(w, x, mask, rules), mask)


def hf_last_hidden_state(model: torch.nn.Module, ids: Tensor) -> Tensor:
    """Hugging Face's own forward (token types 0), for the sanity check."""
    with torch.no_grad():
        return model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state


def twin_last_hidden_state(model: torch.nn.Module | BertWeights, ids: Tensor,
                           rules: Rules = PLAIN) -> Tensor:
    """The twin's forward from the weights (rules only change gradients, not values)."""
    w = as_weights(model)
    with torch.no_grad():
        return encode(w, embedding_output(w, ids), None, rules)


# --- per-text relevance engines: r f32[h, n], phi f32[h] ------------------------------------


def _phi_of(w: BertWeights, rules: Rules) -> Callable[[Tensor], Tensor]:
    """``x f32[n, d] -> phi f32[h]`` for one unpadded text."""
    def phi(x: Tensor) -> Tensor:
        return pooled(w, x[None], None, rules)[0]
    return phi


def relevance_loop(
    w: BertWeights, ids: Tensor, rules: Rules = LRP, dims: Sequence[int] | None = None,
    recompute_forward: bool = False,
) -> tuple[Tensor, Tensor]:
    """Reference style: one forward, then one backward per pooled dimension (retain_graph).

    ids: i64[1, n]. ``dims`` restricts the loop to a subset of dimensions (rows of r for the
    other dimensions are left at 0), for timing extrapolation. ``recompute_forward`` re-runs
    the forward for every dimension instead of retaining the graph, as the published code does.
    """
    x = embedding_output(w, ids).detach().requires_grad_(True)  # [1, n, d]
    phi = pooled(w, x, None, rules)[0]
    h = phi.shape[0]
    r = torch.zeros(h, x.shape[1], dtype=x.dtype, device=x.device)
    for m in range(h) if dims is None else dims:
        if recompute_forward:
            phi = pooled(w, x, None, rules)[0]
        (grad,) = torch.autograd.grad(phi[m], x, retain_graph=not recompute_forward)
        r[m] = (grad * x).sum(-1)[0].detach()
    return r, phi.detach()


def relevance_vjp(
    w: BertWeights, ids: Tensor, rules: Rules = LRP, chunk_size: int | None = None,
    dims: Sequence[int] | None = None,
) -> tuple[Tensor, Tensor]:
    """``vmap`` of one ``vjp`` over the h one-hot cotangents (h backward passes, batched).

    ``dims`` restricts the cotangents to a subset of dimensions (other rows of r stay 0), for
    timing extrapolation.
    """
    x = embedding_output(w, ids)[0].detach()
    with torch.no_grad():
        phi, pullback = torch.func.vjp(_phi_of(w, rules), x)
        h = phi.shape[0]
        rows = list(range(h)) if dims is None else list(dims)
        r = torch.zeros(h, x.shape[0], dtype=x.dtype, device=x.device)
        if rows:
            cotangents = torch.eye(h, dtype=x.dtype, device=x.device)[rows]
            (jacobian,) = torch.func.vmap(pullback, chunk_size=chunk_size)(cotangents)  # [k, n, d]
            r[rows] = (jacobian * x).sum(-1)
        return r, phi


def relevance_jvp(
    w: BertWeights, ids: Tensor, rules: Rules = LRP, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """``vmap`` of ``jvp`` over the n per-token tangents ``x * onehot(t)`` (n forward passes)."""
    x = embedding_output(w, ids)[0].detach()
    phi_fn = _phi_of(w, rules)
    n = x.shape[0]

    def column(tangent: Tensor) -> Tensor:
        return torch.func.jvp(phi_fn, (x,), (tangent,))[1]

    with torch.no_grad():
        tangents = torch.eye(n, dtype=x.dtype, device=x.device)[:, :, None] * x[None]  # [n, n, d]
        columns = torch.func.vmap(column, chunk_size=chunk_size)(tangents)  # [n, h]
        return columns.T.contiguous(), phi_fn(x)


ENGINES = {"loop": relevance_loop, "vjp": relevance_vjp, "jvp": relevance_jvp}


# --- pair API -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TwinResult:
    """Raw token-pair relevance (f64[n_a, n_b], never normalised) and its factors."""

    relevance: np.ndarray
    r_a: np.ndarray
    r_b: np.ndarray
    phi_a: np.ndarray
    phi_b: np.ndarray

    @property
    def similarity(self) -> float:
        """The explained dot product ``<phi(a), phi(b)>``."""
        return float(self.phi_a.astype(np.float64) @ self.phi_b.astype(np.float64))


def tokenize(tokenizer, text: str, max_length: int | None = None) -> Tensor:
    """``[CLS] text [SEP]`` ids ``i64[1, n]`` with the model's own tokenizer."""
    enc = tokenizer(text, return_tensors="pt", truncation=max_length is not None,
                    max_length=max_length)
    return enc["input_ids"]


def pair_from_relevances(
    rel_a: tuple[Tensor, Tensor], rel_b: tuple[Tensor, Tensor]
) -> TwinResult:
    """``R = sum_m outer(r_m(a), r_m(b)) = r(a)^T r(b)`` in float64."""
    (r_a, phi_a), (r_b, phi_b) = rel_a, rel_b
    r_a, r_b = r_a.cpu().numpy(), r_b.cpu().numpy()  # .cpu() also synchronises a GPU
    relevance = r_a.astype(np.float64).T @ r_b.astype(np.float64)
    return TwinResult(relevance, r_a, r_b, phi_a.cpu().numpy(), phi_b.cpu().numpy())


def explain_pair(
    model: torch.nn.Module | BertWeights, tokenizer, a: str, b: str, *,
    engine: Literal["loop", "vjp", "jvp"] = "jvp", rules: Rules = LRP, **engine_options,
) -> TwinResult:
    """BiLRP (``rules=LRP``) or H×P (``rules=PLAIN``) relevance of one pair, any engine."""
    w = as_weights(model)
    relevance = ENGINES[engine]
    device = w.word.device
    rels = [relevance(w, tokenize(tokenizer, text).to(device), rules, **engine_options)
            for text in (a, b)]
    return pair_from_relevances(*rels)


def reference_loop(
    model: torch.nn.Module | BertWeights, tokenizer, a: str, b: str, *,
    rules: Rules = LRP_PUBLISHED, dims: Sequence[int] | None = None,
    recompute_forward: bool = False,
) -> TwinResult:
    """The published reference style: Python loop over h dims, batch 1, one backward per dim.

    Default rules: BiLRP with ``.detach()`` on the frozen factors, as the published code.
    ``recompute_forward=True``: also one forward per dim (the published code's cost).
    """
    return explain_pair(model, tokenizer, a, b, engine="loop", rules=rules, dims=dims,
                        recompute_forward=recompute_forward)


def vectorised_vjp(
    model: torch.nn.Module | BertWeights, tokenizer, a: str, b: str, *, rules: Rules = LRP,
    chunk_size: int | None = None, dims: Sequence[int] | None = None,
) -> TwinResult:
    """``torch.func``: vmap of vjp over the h one-hot cotangents (or the ``dims`` subset)."""
    return explain_pair(model, tokenizer, a, b, engine="vjp", rules=rules, chunk_size=chunk_size,
                        dims=dims)


def vectorised_jvp(
    model: torch.nn.Module | BertWeights, tokenizer, a: str, b: str, *, rules: Rules = LRP,
    chunk_size: int | None = None,
) -> TwinResult:
    """``torch.func``: vmap of jvp over the n per-token tangents."""
    return explain_pair(model, tokenizer, a, b, engine="jvp", rules=rules, chunk_size=chunk_size)


def load_hf(model_dir: str, device: str = "cpu") -> tuple[torch.nn.Module, object]:
    """A Hugging Face ``BertModel`` (eval mode, no parameter gradients, on ``device``) and its
    tokenizer."""
    from transformers import AutoTokenizer, BertModel

    model = BertModel.from_pretrained(model_dir).eval().to(device)
    model.requires_grad_(False)
    return model, AutoTokenizer.from_pretrained(model_dir)
