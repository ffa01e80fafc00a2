"""IMASK and GMASK: learned word-group masks for sentence-pair classifiers ([GMASK]; METHODS.md §3).

Both explain a pair classifier's **predicted** label ŷ on ``[CLS] a [SEP] b [SEP]``. A mask multiplies
the embedding module's output (zero baseline) *and* enters the attention mask, as the reference
code does (METHODS.md §5): a masked word-piece is neither seen nor attended. [CLS]/[SEP] are
always kept; everything is at word-piece level (G5).

- **IMASK** (pre-selection): per content piece two logits ``R`` (init 1; column 1 = keep),
  ``l = sigmoid(R)``, ``p = softmax(l)[:, 1]``; each step draws ``imask_samples`` hard
  straight-through Gumbel-softmax masks (τ = 1) and minimises
  ``mean_s CE(f(mask_s), ŷ) + 0.1 · Σ p log(p + 1e-8)`` with Adam(0.1), 10 steps.
- **GMASK** on the shortened input ``[CLS] S1 [SEP] S2 [SEP]`` of the top ``k`` IMASK pieces (in
  IMASK order, split by sentence; fallback: the top ``k//2`` of each sentence when one side is
  empty), ``G = max(2, min(|S1|, |S2|))`` groups (G1). Z f32[n', G] (token -> group) and
  T f32[G] (group selection) logits init 1, sigmoid -> softmax (G2); each step draws
  ``samples`` hard Gumbel samples (τ = 0.5) of both, word mask ``w = z · g`` (Eq. 2, 13) and
  minimises Eq. 7 as the reference resolves it (G3)::

      mean_s CE(f(mask_s), ŷ) + γ2 · H(t_prob) + γ1 · (Σ q1 log q1 + Σ q2 log q2),
      q_i = softmax(Σ_{rows of sentence i} z_prob)          (variant="paper": column means)

  with Adam(0.1) and PyTorch's ``CosineAnnealingLR(T_max=10)`` (lr = 0.05 (1 + cos(π t / 10))),
  100 steps, γ1 = 10, γ2 = 1. The piece importance is Eq. 8 ``θ = z_prob @ t_prob``.

The whole optimisation is one jitted function: IMASK, the selection, the shortened input and
GMASK run inside ``jax.jit`` with ``optax`` in ``lax.scan``, samples ``vmap``-free (one batched
model call of S rows per step), ``vmap``ped over a batch of padded pairs. Randomness comes only
from the explicit keys: a pair's Gumbel noise for position t is drawn from ``fold_in(key, t)``,
so it does not depend on how much padding the batch has, and the reference's "seed re-set per
example" is the default (every pair gets ``PRNGKey(seed)``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsim.errors import JaxsimError
from jaxsim.explain.result import GroupExplanation
from jaxsim.explain.rules import composite
from jaxsim.models import encoder_for
from jaxsim.models.config import GPTNeoConfig, ModelConfig
from jaxsim.models.ops import PLAIN_OPS
from jaxsim.text import BatchPlan, Encoded, map_batches
from jaxsim.types import Array

if TYPE_CHECKING:
    from jaxsim.classifier import Classifier
    from jaxsim.model import Model

METHODS = ("gmask", "imask")
VARIANTS = ("reference", "paper")
#: Additive attention bias of a masked key: HF BERT's ``(1 - mask) · -10000`` of the reference's era.
MASKED_ATTENTION_BIAS = -10000.0


@dataclasses.dataclass(frozen=True)
class GmaskSettings:
    """Hyperparameters (defaults = the reference code, METHODS.md §5). Hashable: a jit static."""

    k: int = 10                 # IMASK keeps the top k pieces for GMASK
    imask_steps: int = 10
    imask_samples: int = 10
    imask_tau: float = 1.0
    imask_lr: float = 0.1
    imask_beta: float = 0.1     # weight of Σ p log p
    steps: int = 100
    samples: int = 500
    tau: float = 0.5
    lr: float = 0.1
    t_max: int = 10             # CosineAnnealingLR period / 2
    gamma1: float = 10.0
    gamma2: float = 1.0
    variant: str = "reference"  # Z regulariser: softmax of column sums (reference) or column means

    def __post_init__(self) -> None:
        ints = dict(k=self.k, imask_steps=self.imask_steps, imask_samples=self.imask_samples,
                    steps=self.steps, samples=self.samples, t_max=self.t_max)
        bad = [f"{name}={value}" for name, value in ints.items() if int(value) != value or value < 1]
        if bad:
            raise JaxsimError(f"GMASK settings must be positive integers: {', '.join(bad)}")
        if self.k < 2:
            raise JaxsimError(f"GMASK needs k >= 2 (one piece per sentence at least), got k={self.k}")
        if self.tau <= 0 or self.imask_tau <= 0:
            raise JaxsimError(f"Gumbel temperatures must be > 0, got tau={self.tau}, "
                              f"imask_tau={self.imask_tau}")
        if self.variant not in VARIANTS:
            raise JaxsimError(f"unknown GMASK variant {self.variant!r}: choose reference or paper")

    @property
    def max_groups(self) -> int:
        """Static group count the batch is padded to: ``G <= max(2, k // 2)``."""
        return max(2, self.k // 2)

    @property
    def short_length(self) -> int:
        """Static length of the shortened input: k pieces + [CLS] + 2 [SEP] (one more for the
        double separator of RoBERTa-style pairs)."""
        return self.k + 3


# --- Gumbel-softmax and losses (small pure functions, tested by hand) ---------------------------

def gumbel_softmax(logits: Array, noise: Array, tau: float, hard: bool = True,
                   valid: Array | None = None) -> Array:
    """Gumbel-softmax sample (App. A Eq. 12-13) over the last axis: ``softmax((logits + noise) / τ)``.

    ``noise`` = ``-log(-log u)`` of the same shape; ``valid`` (bool, broadcastable) excludes
    categories. ``hard``: the straight-through estimator, forward value exactly one-hot, gradient
    of the soft sample (written ``y_hard + (y_soft - sg(y_soft))`` so the forward is exact).
    """
    scores = (logits + noise) / tau
    if valid is not None:
        scores = jnp.where(valid, scores, -jnp.inf)
    y_soft = jax.nn.softmax(scores, axis=-1)
    if not hard:
        return y_soft
    y_hard = jax.nn.one_hot(jnp.argmax(y_soft, axis=-1), y_soft.shape[-1], dtype=y_soft.dtype)
    return y_hard + (y_soft - jax.lax.stop_gradient(y_soft))


def position_gumbel(key: Array, n: int, shape: tuple[int, ...]) -> Array:
    """``f32[n, *shape]`` Gumbel noise; row t drawn from ``fold_in(key, t)`` (padding-invariant)."""
    return jax.vmap(lambda t: jax.random.gumbel(jax.random.fold_in(key, t), shape))(jnp.arange(n))


def cross_entropy(logits: Array, label: Array) -> Array:
    """Mean over rows of ``-log softmax(logits)[label]``: ``logits f32[S, C]``, ``label`` i32[]."""
    return -jnp.mean(jax.nn.log_softmax(logits, -1)[:, label])


def neg_entropy(p: Array, valid: Array | None = None) -> Array:
    """``Σ p log(p + 1e-8)`` (the reference's ε), over the valid entries of the last axis."""
    terms = p * jnp.log(p + 1e-8)
    return jnp.sum(terms if valid is None else jnp.where(valid, terms, 0.0), -1)


def masked_softmax(logits: Array, valid: Array) -> Array:
    return jax.nn.softmax(jnp.where(valid, logits, -jnp.inf), -1)


def imask_loss(ce: Array, keep_prob: Array, content: Array, beta: float) -> Array:
    """IMASK objective: ``ce + β Σ_content p log(p + 1e-8)`` (p = keep probabilities, f32[n])."""
    return ce + beta * neg_entropy(keep_prob, content)


def gmask_regularisers(z_prob: Array, t_prob: Array, side: Array, valid_groups: Array,
                       variant: str = "reference") -> tuple[Array, Array, Array]:
    """Eq. 6 as the reference computes it. z_prob f32[n, G] token -> group probabilities; t_prob
    f32[G]; side i32[n] (0 = sentence a, 1 = b, -1 = not a masked piece).

    Returns ``(Σ q1 log q1, Σ q2 log q2, H(t))`` with ``q_i = softmax(Σ_{rows of i} z_prob)``
    (reference) or ``q_i = mean_{rows of i} z_prob`` (``variant="paper"``)."""
    def q(i: int) -> Array:
        rows = (side == i)[:, None]
        total = jnp.sum(jnp.where(rows, z_prob, 0.0), 0)
        if variant == "paper":
            return total / jnp.maximum(rows.sum(), 1)
        return masked_softmax(total, valid_groups)

    return (neg_entropy(q(0), valid_groups), neg_entropy(q(1), valid_groups),
            -neg_entropy(t_prob, valid_groups))


def gmask_loss(ce: Array, z_prob: Array, t_prob: Array, side: Array, valid_groups: Array,
               gamma1: float, gamma2: float, variant: str = "reference") -> Array:
    """Eq. 7: ``ce - γ1 (H(Z^U) + H(Z^L)) + γ2 H(G)`` = ``ce + γ1 (Σq1 log q1 + Σq2 log q2) + γ2 H(t)``."""
    nq1, nq2, h_t = gmask_regularisers(z_prob, t_prob, side, valid_groups, variant)
    return ce + gamma1 * (nq1 + nq2) + gamma2 * h_t


def cosine_annealing(base_lr: float, t_max: int):
    """PyTorch ``CosineAnnealingLR(T_max)`` stepped once per optimisation step (eta_min 0)."""
    return lambda count: 0.5 * base_lr * (1.0 + jnp.cos(jnp.pi * count / t_max))


# --- the masked model -----------------------------------------------------------------------------

def masked_logits(params: dict, config: ModelConfig, emb: Array, mask: Array, keep: Array) -> Array:
    """Logits of S masked copies of one input.

    emb: f32[n, d] embedding-module output; mask: bool[n] real tokens; keep: f32[S, n] mask values
    (1 = kept). The embedding rows are multiplied by ``keep`` and the attention mask by ``keep``
    (the encoder's ``attention_bias`` ``(1 - keep) · -10000`` on the scores, so gradients reach
    ``keep`` through both, as in the reference). Rules: the ``plain`` composite. Returns f32[S, C].
    """
    enc = encoder_for(config)
    ops = composite("plain")
    x = emb[None] * keep[..., None]                                  # f32[S, n, d]
    bias = (1.0 - keep) * MASKED_ATTENTION_BIAS                       # f32[S, n]
    rows = jnp.broadcast_to(mask[None], keep.shape)
    hidden = enc.encode_embeddings(params, config, ops, x, rows, attention_bias=bias)
    return enc.classify(params["head"], hidden, ops, mask=rows)


#: Sequence rows (samples x tokens, over the pairs of a batch) per forward+backward pass on CPU.
CPU_CHUNK_ROWS = 1024


def default_chunk_rows(pairs: int) -> int | None:
    """Rows per chunk for one pair of a ``pairs``-pair batch: on CPU ``CPU_CHUNK_ROWS // pairs``
    (a working set that stays in cache: ~1.15x faster than all 500 samples of a 13-token input at
    once on a 2-core EPYC); accelerators take all samples at once (None)."""
    return max(1, CPU_CHUNK_ROWS // pairs) if jax.default_backend() == "cpu" else None


def ce_and_keep_grad(model_fn, params, config, emb: Array, mask: Array, keep: Array, y_hat: Array,
                     chunk_rows: int | None) -> tuple[Array, Array]:
    """``mean_s CE(f(mask_s), ŷ)`` and its gradient w.r.t. ``keep`` f32[S, n].

    The S samples go through the model about ``chunk_rows // n`` at a time (equal chunks), each
    chunk's forward and backward pass together (``lax.map``), so a chunk's activations are all that
    is live; with ``chunk_rows=None`` all S at once. Padding rows (keep = 1) carry weight 0.
    """
    s, n = keep.shape
    count = 1 if chunk_rows is None else -(-s // max(1, chunk_rows // n))
    chunk = -(-s // count)                                              # equal chunks, < count pad rows
    pad = count * chunk - s
    weight = jnp.concatenate([jnp.full((s,), 1.0 / s, keep.dtype), jnp.zeros((pad,), keep.dtype)])
    padded = jnp.concatenate([keep, jnp.ones((pad, n), keep.dtype)])

    def part(args: tuple[Array, Array]) -> tuple[Array, Array]:
        rows, w = args                                                  # f32[c, n], f32[c]

        def weighted_ce(rows: Array) -> Array:
            log_p = jax.nn.log_softmax(model_fn(params, config, emb, mask, rows), -1)[:, y_hat]
            return -jnp.sum(w * log_p)
        return jax.value_and_grad(weighted_ce)(rows)

    values, grads = jax.lax.map(part, (padded.reshape(count, chunk, n), weight.reshape(count, chunk)))
    return values.sum(), grads.reshape(count * chunk, n)[:s]


def _embed_one(params: dict, config: ModelConfig, ids: Array, type_ids: Array) -> Array:
    """``i32[n] -> f32[n, d]`` embedding output (positions renumbered from 0)."""
    return encoder_for(config).embed(params, config, PLAIN_OPS, ids[None], type_ids[None])[0]


# --- IMASK ---------------------------------------------------------------------------------------

def _imask(model_fn, params, config, settings: GmaskSettings, emb, mask, content, y_hat, key, chunk_rows):
    """IMASK on one pair: emb f32[n, d], mask/content bool[n] -> (keep prob f32[n], losses f32[steps])."""
    n = emb.shape[0]
    opt = optax.adam(settings.imask_lr, b1=0.9, b2=0.999, eps=1e-8)

    def keep_probability(r):                                          # f32[n, 2] -> f32[n]
        return jax.nn.softmax(jax.nn.sigmoid(r), -1)[:, 1]

    def sample_keep(r, step_key):                                     # -> f32[S, n]
        noise = position_gumbel(step_key, n, (settings.imask_samples, 2)).transpose(1, 0, 2)
        sample = gumbel_softmax(jax.nn.sigmoid(r)[None], noise, settings.imask_tau)[..., 1]
        return jnp.where(content[None], sample, 1.0)

    def step(carry, t):
        r, state = carry
        step_key = jax.random.fold_in(key, t)
        keep, keep_vjp = jax.vjp(lambda r: sample_keep(r, step_key), r)
        ce, d_keep = ce_and_keep_grad(model_fn, params, config, emb, mask, keep, y_hat, chunk_rows)
        # the objective with CE held at its value: its gradient is the regulariser's
        loss, d_reg = jax.value_and_grad(
            lambda r: imask_loss(ce, keep_probability(r), content, settings.imask_beta))(r)
        grad = keep_vjp(d_keep)[0] + d_reg
        updates, state = opt.update(grad, state, r)
        return (optax.apply_updates(r, updates), state), loss

    r0 = jnp.ones((n, 2), emb.dtype)
    (r, _), losses = jax.lax.scan(step, (r0, opt.init(r0)), jnp.arange(settings.imask_steps))
    return jnp.where(content, keep_probability(r), 0.0), losses


# --- selection of the shortened input -------------------------------------------------------------

def _take_side(candidates: Array, valid: Array, segment: Array, side: int, limit: Array, width: int):
    """The first ``limit`` valid candidates on ``side``, in candidate order: (i32[width], count)."""
    take = valid & (segment[candidates] == side)
    take = take & (jnp.cumsum(take) <= limit)
    order = jnp.argsort(~take, stable=True)[:width]
    return candidates[order], jnp.minimum(take.sum(), width)


def select_short(importance: Array, content: Array, segment: Array, k: int):
    """IMASK order -> the pieces of the shortened input (METHODS.md §3 pseudo-code).

    importance f32[n], content bool[n], segment i32[n] -> (s1 i32[k], c1, s2 i32[k], c2, order i32[n])
    with ``order`` all positions by descending importance (content first, stable)."""
    n = importance.shape[0]
    order = jnp.argsort(jnp.where(content, -importance, jnp.inf), stable=True)
    n_content = content.sum()
    kw = jnp.minimum(k, n_content)
    width = min(k, n)
    top, top_valid = order[:width], jnp.arange(width) < kw
    s1, c1 = _take_side(top, top_valid, segment, 0, kw, width)
    s2, c2 = _take_side(top, top_valid, segment, 1, kw, width)
    all_valid = jnp.arange(n) < n_content
    f1, d1 = _take_side(order, all_valid, segment, 0, kw // 2, width)
    f2, d2 = _take_side(order, all_valid, segment, 1, kw // 2, width)
    fallback = (c1 == 0) | (c2 == 0)
    pad = lambda a: jnp.pad(a, (0, k - width))  # noqa: E731
    return (pad(jnp.where(fallback, f1, s1)), jnp.where(fallback, d1, c1),
            pad(jnp.where(fallback, f2, s2)), jnp.where(fallback, d2, c2), order)


def short_input(ids: Array, sep_a: Array, sep_b: Array, s1: Array, c1: Array, s2: Array, c2: Array,
                length: int, between: int = 1):
    """``[CLS] ids[s1] [SEP] ids[s2] [SEP]`` padded to ``length``; with ``between = 2`` the
    RoBERTa-style ``<s> ids[s1] </s></s> ids[s2] </s>`` (the ``between`` specials that follow text a
    in the original pair, from position ``sep_a`` on).

    Returns (source i32[length] original position of each short position, -1 = pad;
    type_ids i32[length] (BERT's: 1 from text b on); side i32[length] 0/1 for the masked pieces,
    -1 otherwise; mask bool)."""
    j = jnp.arange(length)
    first_b = c1 + 1 + between
    in_s1 = (j >= 1) & (j <= c1)
    in_s2 = (j >= first_b) & (j < first_b + c2)
    src = jnp.where(j == 0, 0, -1)
    src = jnp.where(in_s1, s1[jnp.clip(j - 1, 0, s1.shape[0] - 1)], src)
    src = jnp.where((j > c1) & (j < first_b), sep_a + (j - c1 - 1), src)
    src = jnp.where(in_s2, s2[jnp.clip(j - first_b, 0, s2.shape[0] - 1)], src)
    src = jnp.where(j == first_b + c2, sep_b, src)
    mask = j <= first_b + c2
    type_ids = jnp.where(mask & (j >= c1 + 2), 1, 0)
    side = jnp.where(in_s1, 0, jnp.where(in_s2, 1, -1))
    return src, type_ids, side, mask


# --- GMASK ---------------------------------------------------------------------------------------

def _gmask(model_fn, params, config, settings: GmaskSettings, emb, mask, side, n_groups, y_hat, key,
           chunk_rows):
    """GMASK on one shortened input: emb f32[L, d], side i32[L] -> (z_prob f32[L, G], t_prob f32[G],
    losses f32[steps])."""
    length, groups = emb.shape[0], settings.max_groups
    valid = jnp.arange(groups) < n_groups                                 # bool[G]
    masked = side >= 0
    opt = optax.adam(cosine_annealing(settings.lr, settings.t_max), b1=0.9, b2=0.999, eps=1e-8)

    def probs(z, t):
        return masked_softmax(jax.nn.sigmoid(z), valid), masked_softmax(jax.nn.sigmoid(t), valid)

    def sample_keep(zt, step_key):                                    # -> f32[S, L]
        z, t = zt
        kz, kt = jax.random.split(step_key)
        noise_z = position_gumbel(kz, length, (settings.samples, groups)).transpose(1, 0, 2)
        noise_t = jax.random.gumbel(kt, (settings.samples, groups))
        z_sample = gumbel_softmax(jax.nn.sigmoid(z)[None], noise_z, settings.tau, valid=valid)  # [S, L, G]
        t_sample = gumbel_softmax(jax.nn.sigmoid(t)[None], noise_t, settings.tau, valid=valid)  # [S, G]
        word_mask = jnp.einsum("slg,sg->sl", z_sample, t_sample)                                # Eq. 2
        return jnp.where(masked[None], word_mask, 1.0)

    def regularised(zt, ce):
        return gmask_loss(ce, *probs(*zt), side, valid, settings.gamma1, settings.gamma2, settings.variant)

    def step(carry, t):
        zt, state = carry
        step_key = jax.random.fold_in(key, t)
        keep, keep_vjp = jax.vjp(lambda zt: sample_keep(zt, step_key), zt)
        ce, d_keep = ce_and_keep_grad(model_fn, params, config, emb, mask, keep, y_hat, chunk_rows)
        loss, d_reg = jax.value_and_grad(regularised)(zt, ce)        # CE held at its value
        grad = jax.tree.map(jnp.add, keep_vjp(d_keep)[0], d_reg)
        updates, state = opt.update(grad, state, zt)
        return (optax.apply_updates(zt, updates), state), loss

    zt0 = (jnp.ones((length, groups), emb.dtype), jnp.ones((groups,), emb.dtype))
    ((z, t), _), losses = jax.lax.scan(step, (zt0, opt.init(zt0)), jnp.arange(settings.steps))
    z_prob, t_prob = probs(z, t)
    return z_prob, t_prob, losses


class GmaskOutput(NamedTuple):
    """One batch (leading axis B). Positions index the padded pair ``[CLS] a [SEP] b [SEP]`` (n) or
    the shortened input (L = k + 3).

    logits f32[B, C]; predicted i32[B] (ŷ, explained); imask f32[B, n] IMASK keep probability
    (0 off content); short_source i32[B, L] original position per short position (-1 pad);
    short_side i32[B, L]; n_groups i32[B]; z_prob f32[B, L, G]; t_prob f32[B, G]; theta f32[B, L]
    (Eq. 8, 0 off the masked pieces); ranking i32[B, n] content positions, GMASK's selection by θ
    then the rest in IMASK order, then non-content; imask_losses f32[B, imask_steps];
    losses f32[B, steps]."""

    logits: Array
    predicted: Array
    imask: Array
    short_source: Array
    short_side: Array
    n_groups: Array
    z_prob: Array
    t_prob: Array
    theta: Array
    ranking: Array
    imask_losses: Array
    losses: Array


def _explain_one(model_fn, params, config, settings: GmaskSettings, chunk_rows, between: int, ids, type_ids,
                 mask, segment, key):
    """IMASK -> selection -> shortened input -> GMASK for one padded pair (ids etc. i32[n]);
    ``between``: the special tokens between text a and text b (1 BERT, 2 RoBERTa-style)."""
    n, length = ids.shape[0], settings.short_length + between - 1
    content = mask & (segment >= 0)
    emb = _embed_one(params, config, ids, type_ids)
    logits = model_fn(params, config, emb, mask, jnp.ones((1, n), emb.dtype))[0]
    y_hat = jnp.argmax(logits)
    k_imask, k_gmask = jax.random.split(key)
    imask, imask_losses = _imask(model_fn, params, config, settings, emb, mask, content, y_hat, k_imask,
                                 chunk_rows)

    s1, c1, s2, c2, order = select_short(imask, content, segment, settings.k)
    specials = mask & (segment < 0)
    sep_a = jnp.argmax(specials & (jnp.arange(n) > 0))                 # first [SEP]
    sep_b = n - 1 - jnp.argmax((specials & (jnp.arange(n) > 0))[::-1])  # last [SEP]
    src, _, side, short_mask = short_input(ids, sep_a, sep_b, s1, c1, s2, c2, length, between)
    short_ids = jnp.where(src >= 0, ids[jnp.maximum(src, 0)], 0)
    short_types = jnp.where(src >= 0, type_ids[jnp.maximum(src, 0)], 0)  # each piece keeps its type
    short_emb = _embed_one(params, config, short_ids, short_types)
    n_groups = jnp.maximum(2, jnp.minimum(c1, c2))
    z_prob, t_prob, losses = _gmask(model_fn, params, config, settings, short_emb, short_mask, side, n_groups,
                                    y_hat, k_gmask, chunk_rows)
    theta = jnp.where(side >= 0, z_prob @ t_prob, 0.0)                 # Eq. 8

    # Final ranking (sort keys): GMASK's pieces by -θ (in [-1, 0]) first, then the other content
    # pieces by their IMASK rank (2 + rank), non-content last (4n); stable for ties.
    rank_of_order = jnp.zeros(n, jnp.float32).at[order].set(jnp.arange(n, dtype=jnp.float32))
    key_sort = jnp.where(content, 2.0 + rank_of_order, 4.0 * n)
    key_sort = key_sort.at[jnp.where(side >= 0, src, n)].set(-theta, mode="drop")
    ranking = jnp.argsort(key_sort, stable=True)
    return GmaskOutput(logits, y_hat.astype(jnp.int32), imask, src, side, n_groups.astype(jnp.int32),
                       z_prob, t_prob, theta, ranking.astype(jnp.int32), imask_losses, losses)


@functools.partial(jax.jit, static_argnames=("config", "settings", "model_fn", "chunk_rows", "between"))
def gmask_batch(params: dict, ids: Array, type_ids: Array, mask: Array, segment: Array, keys: Array, *,
                config: ModelConfig, settings: GmaskSettings = GmaskSettings(),
                model_fn: Callable | None = None, chunk_rows: int | None = None,
                between: int = 1) -> GmaskOutput:
    """IMASK + GMASK for a batch of padded pairs, one jitted call (``vmap`` over pairs).

    ids, type_ids, segment: i32[B, n] (segment 0 = a, 1 = b, -1 = special/pad); mask: bool[B, n];
    keys: PRNG keys [B] (one per pair; equal keys = the reference's per-example seed).
    ``model_fn(params, config, emb f32[n, d], mask bool[n], keep f32[S, n]) -> logits f32[S, C]``
    replaces the classifier (default ``masked_logits``; e.g. a rule-based model in tests).
    ``chunk_rows``: sequence rows (samples x tokens) per model pass for each pair, see
    ``ce_and_keep_grad`` (None: all samples at once; ``gmask_encoded`` picks ``default_chunk_rows``).
    It changes speed and float summation order only. ``between``: special tokens between the
    texts (1: ``[CLS] a [SEP] b [SEP]``; 2: ``<s> a </s></s> b </s>``)."""
    one = functools.partial(_explain_one, model_fn or masked_logits, params, config, settings, chunk_rows,
                            between)
    return jax.vmap(one)(ids, type_ids, mask, segment, keys)


def _check_classifier(config: ModelConfig) -> None:
    if isinstance(config, GPTNeoConfig):
        raise JaxsimError("GMASK explains encoder pair classifiers (BERT, RoBERTa/XLM-R, DistilBERT, "
                          "MPNet, ModernBERT cross-encoders); GPT-Neo has no pair classifier head")


def pad_pairs(encoded: Sequence[tuple[Encoded, np.ndarray]], length: int, rows: int, pad_id: int = 0):
    """``(ids, type_ids, mask, segment)`` numpy arrays ``[rows, length]`` (extra rows: a dummy
    ``[CLS] x [SEP] x [SEP]`` copy of the first pair, so every row is a valid pair)."""
    ids = np.full((rows, length), pad_id, np.int32)
    types = np.zeros((rows, length), np.int32)
    mask = np.zeros((rows, length), bool)
    segment = np.full((rows, length), -1, np.int32)
    for r in range(rows):
        enc, seg = encoded[min(r, len(encoded) - 1)]
        n = len(enc)
        ids[r, :n], types[r, :n], mask[r, :n], segment[r, :n] = enc.ids, enc.type_ids, True, seg
    return ids, types, mask, segment


def separators_between(segment: np.ndarray) -> int:
    """Special tokens between the last piece of text a and the first of text b (``segment``: 0 a,
    1 b, -1 special): 1 for ``[CLS] a [SEP] b [SEP]``, 2 for ``<s> a </s></s> b </s>``."""
    return int(np.flatnonzero(segment == 1)[0] - np.flatnonzero(segment == 0)[-1] - 1)


def _check_pair(enc: Encoded, segment: np.ndarray, index: int) -> int:
    """The pair's ``separators_between``, after checking it is ``<cls> a <sep>{1,2} b <sep>``."""
    if not (segment == 0).any() or not (segment == 1).any():
        raise JaxsimError(f"pair {index} has no word piece left in one of its texts (after truncation)")
    between = separators_between(segment)
    specials = int((segment < 0).sum())
    if between not in (1, 2) or specials != 2 + between or segment[0] >= 0 or segment[-1] >= 0:
        raise JaxsimError(f"pair {index} is not [CLS] a [SEP] b [SEP] nor <s> a </s></s> b </s> (found "
                          f"{specials} special tokens): GMASK needs a BERT- or RoBERTa-style pair tokenizer")
    return between


def gmask_encoded(
    classifier, encoded: Sequence[tuple[Encoded, np.ndarray]], *, seed: int = 42,
    settings: GmaskSettings = GmaskSettings(), batch_size: int = 8, progress: bool = False,
    same_key: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Run IMASK + GMASK on encoded pairs in length-bucketed batches; per pair a dict of numpy
    arrays (the ``GmaskOutput`` fields, cut to the pair's length). ``same_key``: every pair uses
    ``PRNGKey(seed)`` (the reference re-seeds per example); else pair i uses ``fold_in(seed, i)``."""
    from tqdm.auto import tqdm

    from jaxsim.classifier import as_classifier

    clf = as_classifier(classifier)
    model = clf.model
    _check_classifier(model.config)
    layouts = {_check_pair(enc, seg, i) for i, (enc, seg) in enumerate(encoded)}
    between = layouts.pop() if len(layouts) == 1 else 1
    base = jax.random.key(seed)
    keys = [base if same_key else jax.random.fold_in(base, i) for i in range(len(encoded))]
    rows = max(1, min(batch_size, len(encoded)))

    def pad(plan: BatchPlan):
        idx = plan.indices
        arrays = pad_pairs([encoded[i] for i in idx], plan.length, plan.rows, model.tokenizer.pad_token_id)
        return arrays, jnp.stack([keys[i] for i in idx] + [keys[idx[0]]] * (plan.rows - len(idx)))

    def compute(args):
        arrays, batch_keys = args
        return gmask_batch(model.params, *(jnp.asarray(a) for a in arrays), batch_keys,
                           config=model.config, settings=settings, chunk_rows=default_chunk_rows(rows),
                           between=between)

    def unpack(result: GmaskOutput, row: int, i: int) -> dict[str, np.ndarray]:
        n = len(encoded[i][0])
        one = {name: np.asarray(value[row]) for name, value in result._asdict().items()}
        one["imask"] = one["imask"][:n]
        one["ranking"] = one["ranking"][one["ranking"] < n][:n]
        return one

    return map_batches(
        encoded, [len(e) for e, _ in encoded], batch_size=batch_size,
        max_length=model.tokenizer.max_length, pad=pad, compute=compute, unpack=unpack, fill=False,
        progress=(lambda plans: tqdm(plans, desc="gmask", unit="batch")) if progress else None,
    )


def content_ranking(one: dict[str, np.ndarray], method: str, segment: np.ndarray) -> np.ndarray:
    """Content positions best first: GMASK's ranking, or IMASK's keep-probability order."""
    content = np.flatnonzero(segment >= 0)
    if method == "gmask":
        return np.asarray([t for t in one["ranking"] if segment[t] >= 0], np.int64)
    return content[np.argsort(-one["imask"][content], kind="stable")]


def _to_explanation(clf: Classifier, method: str, enc: Encoded, segment: np.ndarray, one: dict,
                    settings: GmaskSettings) -> GroupExplanation:
    n = len(enc)
    groups = np.full(n, -1, np.int32)
    scores = np.zeros(n, np.float32)
    token_groups = np.zeros((n, settings.max_groups), np.float32)
    for j, (src, side) in enumerate(zip(one["short_source"], one["short_side"], strict=True)):
        if side >= 0:
            groups[src] = int(np.argmax(one["z_prob"][j]))
            scores[src] = one["theta"][j]
            token_groups[src] = one["z_prob"][j]
    if method == "imask":
        scores = one["imask"].astype(np.float32)
    logits = np.asarray(one["logits"], np.float32)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    predicted = int(one["predicted"])
    n_groups = int(one["n_groups"])
    extras = {
        "ranking": content_ranking(one, method, segment), "groups": groups,
        "group_probs": one["t_prob"][:n_groups], "token_group_probs": token_groups[:, :n_groups],
        "imask": one["imask"], "losses": one["losses"], "imask_losses": one["imask_losses"],
        "settings": dataclasses.asdict(settings),
    }
    return GroupExplanation(
        method=method, model=clf.name, tokens=enc.tokens, segment=segment, scores=scores,
        signed=scores, words=enc.words, word_ids=enc.word_ids, special=enc.special, labels=clf.labels,
        logits=logits, target=predicted, output="probability", explained_value=float(probs[predicted]),
        extras=extras,
    )


def explain_pairs(
    model, pairs: Iterable[tuple[str, str]], *, method: str = "gmask", seed: int = 42,
    batch_size: int = 8, progress: bool = True, settings: GmaskSettings | None = None, **options,
) -> list[GroupExplanation]:
    """GMASK (or its IMASK pre-selection alone) for many pairs of a pair classifier.

    ``options`` override ``GmaskSettings`` fields (``samples=100, steps=50, k=10, ...``);
    ``target`` must be the predicted class (GMASK explains ŷ); CLI-only options are ignored."""
    from jaxsim.classifier import as_classifier

    if method not in METHODS:
        raise JaxsimError(f"unknown method {method!r}: choose gmask or imask")
    target = options.pop("target", None)
    if target not in (None, "predicted"):
        raise JaxsimError("GMASK/IMASK explain the predicted class only: drop --target")
    fields = {f.name for f in dataclasses.fields(GmaskSettings)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise JaxsimError(f"unknown GMASK options {unknown}: choose from {sorted(fields)}")
    settings = dataclasses.replace(settings or GmaskSettings(), **options)
    clf = as_classifier(model)
    encoded = [clf.model.tokenizer.encode_pair(a, b) for a, b in pairs]
    values = gmask_encoded(clf, encoded, seed=seed, settings=settings, batch_size=batch_size,
                           progress=progress)
    return [_to_explanation(clf, method, enc, seg, one, settings)
            for (enc, seg), one in zip(encoded, values, strict=True)]


def explain_pair(model: Model | Classifier, text_a: str, text_b: str, method: str = "gmask",
                 **options) -> GroupExplanation:
    """Explain one pair's predicted class with GMASK (or IMASK); see ``explain_pairs``."""
    options.setdefault("progress", False)
    return explain_pairs(model, [(text_a, text_b)], method=method, batch_size=1, **options)[0]


def model_passes(settings: GmaskSettings) -> int:
    """Forward+backward sequence passes per pair (cost model for the benchmark)."""
    return settings.imask_steps * settings.imask_samples + settings.steps * settings.samples


__all__ = ["GmaskOutput", "GmaskSettings", "GroupExplanation", "METHODS", "cosine_annealing",
           "cross_entropy", "explain_pair", "explain_pairs", "gmask_batch", "gmask_encoded",
           "gmask_loss", "gumbel_softmax", "imask_loss", "masked_logits"]
