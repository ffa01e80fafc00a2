"""First-order attributions for sentence-pair classifiers ([W&O] §2; METHODS.md §4).

The classifier is ``f(x) = classifier(tanh(pooler(encoder(x)[CLS])))`` on the pair input
``[CLS] a [SEP] b [SEP]``; ``x: f32[n, d]`` is the embedding module's output (after its
LayerNorm, with the pair's token types). The explained scalar is the logit of class ``c``
(default: the predicted class; ``output="probability"`` for the softmax probability):

- ``gs``  Eq. 1 ``R_t = ∂f_c/∂x_t``, token score ``‖R_t‖²`` (squared L2 over d, W2);
- ``gi``  Eq. 2 ``R_t = x_t ⊙ ∂f_c/∂x_t``, token score ``‖R_t‖²``;
- ``lrp`` LRP-0: gradient × input through the rule graph (the ``lrp`` composite of
  ``jaxsim.explain.rules``: AH, LN, GA; tanh of the pooler proportional like GA; Linear layers
  LRP-0), token score ``Σ_d |R_t,d|``;
- ``lrp_eps`` / ``lrp_ab``: the same with every Linear layer (encoder and head) carrying
  relevance by the ε rule (ε = 1e-6) or the αβ rule (α = 2, β = 1), ``dense_rules``;
- ``lat`` Eq. 10 as the reference code: per head h, ``r_h ← r_h A_h^(l)`` from the last layer to
  the first starting from one-hot [CLS], heads summed at the end (Σ = H); ``lat_mix``: heads
  averaged in every layer (Eq. 10 literally, Σ = 1). Residuals are ignored (footnote 3).

``signed`` keeps ``Σ_d x ⊙ ∇`` (GS, GI) or ``Σ_d R`` (LRP): on a bias-free model LRP-0's signed
scores sum to the explained logit (conservation). Everything runs in one jitted, batched call
per (method, batch shape); padded positions get exactly 0.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.explain.result import TokenExplanation
from jaxsim.explain.rules import composite
from jaxsim.models import encoder_for
from jaxsim.models.config import ModelConfig
from jaxsim.models.ops import PLAIN_OPS, Ops
from jaxsim.text import BatchPlan, Encoded, map_batches, pad_batch
from jaxsim.types import Array

if TYPE_CHECKING:
    from jaxsim.classifier import Classifier
    from jaxsim.model import Model

METHODS = ("gs", "gi", "lrp", "lrp_eps", "lrp_ab", "lat", "lat_mix")
OUTPUTS = ("logit", "probability")
class Attribution(NamedTuple):
    """One batch. scores, signed: f32[B, n]; logits: f32[B, C]; target: i32[B]; explained: f32[B]."""

    scores: Array
    signed: Array
    logits: Array
    target: Array
    explained: Array


#: The rule composite each method runs (``jaxsim.explain.rules.COMPOSITES``).
COMPOSITE = {"gs": "plain", "gi": "plain", "lrp": "lrp", "lrp_eps": "lrp_eps", "lrp_ab": "lrp_ab",
             "lat": "plain", "lat_mix": "plain"}


def rule_ops(method: str, eps: float = 1e-6, alpha: float = 2.0, beta: float = 1.0) -> Ops:
    """The ``Ops`` of the method's composite: AH + LN + GA + tanh and its Linear rule (LRP), or
    the plain ops (gradient methods, LAT)."""
    options = {"lrp_eps": dict(eps=eps), "lrp_ab": dict(alpha=alpha, beta=beta)}.get(method, {})
    return composite(COMPOSITE[method], **options)


def _explained(logits: Array, target: Array, output: str) -> Array:
    values = jax.nn.softmax(logits, -1) if output == "probability" else logits
    return jnp.take_along_axis(values, target[:, None], -1)[:, 0]


def _resolve_target(logits: Array, target: Array) -> Array:
    """``target[b] < 0`` means the predicted class of row b."""
    return jnp.where(target < 0, logits.argmax(-1), target).astype(jnp.int32)


def lat_scores(probs_per_layer: Sequence[Array], start: Array, mix: bool = False) -> Array:
    """Layer-wise attention tracing (Eq. 10). probs: per layer f32[B, H, n, n] (query, key);
    start: f32[B, n] -> f32[B, n]. Reference: heads are separate chains summed at the end;
    ``mix``: the chain runs through the head-averaged attention of every layer."""
    if mix:
        r = start
        for probs in reversed(probs_per_layer):
            r = jnp.einsum("bq,bqk->bk", r, probs.mean(1))
        return r
    heads = probs_per_layer[0].shape[1]
    r = jnp.broadcast_to(start[:, None, :], (start.shape[0], heads, start.shape[1]))
    for probs in reversed(probs_per_layer):
        r = jnp.einsum("bhq,bhqk->bhk", r, probs)
    return r.sum(1)


@functools.partial(
    jax.jit, static_argnames=("config", "method", "output", "eps", "alpha", "beta", "squared"),
)
def attribute(
    params: dict, ids: Array, type_ids: Array, mask: Array, target: Array, *, config: ModelConfig,
    method: str, output: str = "logit", eps: float = 1e-6, alpha: float = 2.0, beta: float = 1.0,
    squared: bool = True,
) -> Attribution:
    """Token attributions of a batch of pairs.

    ids, type_ids: i32[B, n]; mask: bool[B, n]; target: i32[B] class per row (-1: predicted).
    ``squared``: GS/GI token score ``‖·‖²`` (reference, default) or ``‖·‖`` (paper text).
    """
    enc = encoder_for(config)
    head = params["head"]
    ops = rule_ops(method, eps, alpha, beta)
    lrp = method.startswith("lrp")
    x = enc.embed(params, config, PLAIN_OPS, ids, type_ids)  # f32[B, n, d]

    if method in ("lat", "lat_mix"):
        hidden, probs = enc.encode_embeddings_with_attention(params, config, PLAIN_OPS, x, mask)
        logits = enc.classify(head, hidden, PLAIN_OPS, mask=mask)
        target = _resolve_target(logits, target)
        start = jnp.zeros(mask.shape, x.dtype).at[:, 0].set(1.0)  # one-hot [CLS]
        scores = lat_scores(probs, start, mix=method == "lat_mix")
        return Attribution(scores, scores, logits, target, _explained(logits, target, output))

    def logits_of(x: Array) -> Array:
        hidden = enc.encode_embeddings(params, config, ops, x, mask)
        return enc.classify(head, hidden, ops, mask=mask)

    logits, pullback = jax.vjp(logits_of, x)
    target = _resolve_target(logits, target)
    explained = _explained(logits, target, output)
    onehot = jax.nn.one_hot(target, logits.shape[-1], dtype=x.dtype)
    if lrp:
        # LRP starts from the explained value at the target logit: R_out = f_c, i.e. a modified
        # gradient of 1 (logit) or f_c / z_c (probability; the product form R ≈ f_c Π z/z).
        z_c = jnp.take_along_axis(logits, target[:, None], -1)[:, 0]
        scale = explained / jnp.where(z_c == 0, 1.0, z_c) if output == "probability" else 1.0
        relevance = x * pullback(onehot * jnp.asarray(scale)[..., None])[0]  # f32[B, n, d]
        scores = jnp.abs(relevance).sum(-1)
        signed = relevance.sum(-1)
    else:
        if output == "probability":
            cotangent = jax.vmap(jax.grad(lambda z, c: jax.nn.softmax(z)[c]))(logits, target)
        else:
            cotangent = onehot
        grad = pullback(cotangent)[0]
        per_dim = grad if method == "gs" else x * grad
        scores = jnp.square(per_dim).sum(-1)
        scores = scores if squared else jnp.sqrt(scores)
        signed = (x * grad).sum(-1)
    mask_f = mask.astype(x.dtype)
    return Attribution(scores * mask_f, signed * mask_f, logits, target, explained)


# --- model-level API --------------------------------------------------------------------------

def _check(method: str, output: str) -> None:
    if method not in METHODS:
        raise JaxsimError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if output not in OUTPUTS:
        raise JaxsimError(f"unknown output {output!r}: choose logit or probability")


def _target_index(target: int | str | None, labels: tuple[str, ...]) -> int:
    """``None``/"predicted" -> -1; "last" -> C-1 (reference); a label name or an index."""
    if target is None or target == "predicted":
        return -1
    if target == "last":
        return len(labels) - 1
    if isinstance(target, str) and target in labels:
        return labels.index(target)
    try:
        index = int(target)
    except (TypeError, ValueError):
        index = None
    if index is None or not 0 <= index < len(labels):
        raise JaxsimError(f"unknown target {target!r}: a class of {list(labels)}, an index, "
                          "'predicted' or 'last'")
    return index


def attribute_encoded(
    classifier, encoded: Sequence[Encoded], *, method: str = "gi",
    target: int | str | None | Sequence = None, output: str = "logit", batch_size: int = 16,
    eps: float = 1e-6, alpha: float = 2.0, beta: float = 1.0, squared: bool = True,
    progress: bool = False,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int, float]]:
    """Per pair ``(scores f32[n], signed f32[n], logits f32[C], target, explained)``, in bucketed
    batches (one compilation per bucket). ``target`` may be one value or one per pair."""
    from jaxsim.classifier import as_classifier

    clf = as_classifier(classifier)
    _check(method, output)
    if isinstance(target, (list, tuple, np.ndarray)):
        targets = np.asarray([_target_index(t, clf.labels) for t in target], np.int32)
    else:
        targets = np.full(len(encoded), _target_index(target, clf.labels), np.int32)
    model = clf.model
    from tqdm.auto import tqdm

    def pad(plan: BatchPlan):
        batch = pad_batch([encoded[i] for i in plan.indices], plan.length, plan.rows,
                          model.tokenizer.pad_token_id)
        row_targets = np.full(plan.rows, -1, np.int32)
        row_targets[: len(plan.indices)] = targets[plan.indices]
        return batch, row_targets

    def compute(args):
        batch, row_targets = args
        return attribute(
            model.params, jnp.asarray(batch.ids), jnp.asarray(batch.type_ids), jnp.asarray(batch.mask),
            jnp.asarray(row_targets), config=model.config, method=method, output=output,
            eps=float(eps), alpha=float(alpha), beta=float(beta), squared=squared,
        )

    def unpack(result, row: int, i: int):
        n = len(encoded[i])
        return (result.scores[row, :n], result.signed[row, :n], result.logits[row],
                int(result.target[row]), float(result.explained[row]))

    return map_batches(
        encoded, [len(e) for e in encoded], batch_size=batch_size, max_length=model.tokenizer.max_length,
        pad=pad, compute=compute, unpack=unpack, fill=False,
        progress=(lambda plans: tqdm(plans, desc=method, unit="batch")) if progress else None,
    )


def explain_pairs(
    model, pairs: Iterable[tuple[str, str]], *, method: str = "gi", target=None, output: str = "logit",
    batch_size: int = 16, progress: bool = True, **options,
) -> list[TokenExplanation]:
    """Explain a classifier's decision on many pairs -> ``TokenExplanation`` per pair.

    ``options``: eps (LRP-ε), alpha/beta (LRP-αβ), squared (GS/GI token norm)."""
    from jaxsim.classifier import as_classifier

    clf = as_classifier(model)
    encoded_pairs = [clf.model.tokenizer.encode_pair(a, b) for a, b in pairs]
    encoded = [e for e, _ in encoded_pairs]
    values = attribute_encoded(clf, encoded, method=method, target=target, output=output,
                               batch_size=batch_size, progress=progress, **options)
    return [
        TokenExplanation(
            method=method, model=clf.name, tokens=enc.tokens, segment=segment, scores=scores,
            signed=signed, words=enc.words, word_ids=enc.word_ids, special=enc.special,
            labels=clf.labels, logits=logits, target=tgt, output=output, explained_value=value,
        )
        for (enc, segment), (scores, signed, logits, tgt, value) in zip(encoded_pairs, values, strict=True)
    ]


def explain_pair(model: Model | Classifier, text_a: str, text_b: str, method: str = "gi",
                 **options) -> TokenExplanation:
    """Explain one pair's classification (see ``explain_pairs``)."""
    options.setdefault("progress", False)
    return explain_pairs(model, [(text_a, text_b)], method=method, batch_size=1, **options)[0]
