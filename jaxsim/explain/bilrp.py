"""BiLRP second-order relevance, and the H×P and Embeddings baselines ([BiLRP] §3; METHODS.md §1).

For the similarity ``y = <phi(a), phi(b)>`` of two pooled embeddings::

    r_m(x)[t] = sum_d x[t, d] * d phi~_m(x) / d x[t, d]        # r(x): f32[h, n]
    R[t, t']  = sum_m r_m(a)[t] * r_m(b)[t']                  # R = r(a)^T r(b): f32[n_a, n_b]

where ``phi~`` is the encoder run with the LRP rules (``LRP_OPS``) and ``x`` the embedding
module's output. ``r`` is the Jacobian of ``phi~`` contracted with ``x``, computed either

- **reverse**: ``vmap`` over the ``h`` output dimensions of one ``vjp`` (h backward passes), or
- **forward**: ``jvp`` with tangent ``x`` restricted to one token (n forward passes);

``mode="auto"`` takes the one with fewer passes. Both are chunked with ``lax.map(batch_size=)``
to bound memory. ``r`` depends on one text only, so a corpus computes it once per text.

H×P is the same computation with the plain ``Ops`` (plain gradients), Embeddings is
``(E_a E_b^T)^2`` on the embedding outputs.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.explain.cost import class_cost, gemm_peak_gflops, text_work
from jaxsim.explain.result import PairExplanation
from jaxsim.explain.rules import LRP_OPS, composite
from jaxsim.models import embedding_outputs, encoder_for, pooled_embeddings
from jaxsim.models.config import ModelConfig
from jaxsim.models.ops import Ops
from jaxsim.models.placement import Placement, shard_rows
from jaxsim.models.pooling import pool
from jaxsim.models.precision import check_precision, matmul_precision, precision_ops
from jaxsim.text import (
    LENGTH_CLASSES,
    Batch,
    BatchSize,
    Encoded,
    LengthClasses,
    adaptive_lengths,
    map_encoded,
)
from jaxsim.types import Array

if TYPE_CHECKING:
    from jaxsim.model import Model

Mode = Literal["auto", "forward", "reverse"]
METHODS = ("bilrp", "hxp", "embedding")
#: The rule composite of each relevance method (``jaxsim.explain.rules.COMPOSITES``).
COMPOSITE = {"bilrp": "lrp", "hxp": "plain"}
SIMILARITIES = ("dot", "cosine")
MODES = ("auto", "forward", "reverse")
EXPLAIN_INPUTS = ("embedding", "embedding_sum")


def resolve_mode(mode: str, n_tokens: int, h: int) -> str:
    """``auto`` -> the engine with fewer passes: forward costs n, reverse costs h."""
    if mode not in MODES:
        raise JaxsimError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "auto":
        return "forward" if n_tokens <= h else "reverse"
    return mode


#: ``length_classes="auto"`` pads to the fine classes from this many texts on.
FINE_FROM = 64


class FactorCache:
    """Per-text results of ``text_relevances`` (r f32[h, n] and phi f32[h]) kept across calls, up
    to ``max_bytes`` (least recently used out first): a corpus run computes each distinct text
    once over the whole run, not once per shard. Keyed by the token ids, so it serves one model,
    method and mode (the caller's job keeps those fixed).

    It also carries the run's length classes: ``known_lengths`` (the padded lengths earlier calls
    compiled) and ``class_cost`` (what one more compiled length costs, ``cost.class_cost``; set
    from the device's measured GEMM peak), which ``length_classes="adaptive"`` trades against
    padding. ``calls``: the calls the run will make (its shards); a length compiled now serves
    this call and every later one, so a call pays ``class_cost / calls_left`` (``call_price``)."""

    def __init__(self, max_bytes: int = 2**30, class_cost: float | None = None, calls: int = 1):
        self.max_bytes = max_bytes
        self.class_cost = class_cost
        self.calls_left = calls
        self.known_lengths: set[int] = set()
        self.bytes = 0
        self.hits = 0
        self.computed = 0
        self.computed_tokens_squared = 0  # sum of n² over the texts computed (the engine's work)
        self.padded_work = 0  # the same, rows x L² over the batches run: padding and filler rows
        self._items: collections.OrderedDict = collections.OrderedDict()

    @staticmethod
    def key(encoded: Encoded) -> bytes:
        return np.asarray(encoded.ids, np.int32).tobytes() + np.asarray(encoded.type_ids, np.int8).tobytes()

    @property
    def call_price(self) -> float | None:
        """This call's share of one compilation: ``class_cost`` over the calls left (>= 1)."""
        return None if self.class_cost is None else self.class_cost / max(1, self.calls_left)

    def __contains__(self, key: bytes) -> bool:
        return key in self._items

    def get(self, key: bytes):
        self._items.move_to_end(key)
        self.hits += 1
        return self._items[key]

    def put(self, key: bytes, value: tuple[np.ndarray, np.ndarray]) -> None:
        """Keep a text's computed ``(r f32[h, n] or E f32[n, d], phi)``."""
        n = len(key) // 5  # 4 bytes of id + 1 byte of token type per token
        self.computed += 1
        self.computed_tokens_squared += n * n
        size = sum(np.asarray(v).nbytes for v in value)
        if size > self.max_bytes:
            return
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= sum(np.asarray(v).nbytes for v in old)


CPU_CHUNK_ROWS = 1024  # activation rows (passes x tokens) per chunk on CPU
ACCELERATOR_CHUNK_ROWS = 2**16


def default_chunk_size(mode: str, n_tokens: int, h: int, backend: str | None = None) -> int:
    """Passes per chunk, so that a chunk's activations hold about ``rows = chunk * n`` rows.

    On CPU ~1024 rows keeps each chunk's tangents cache-sized; XLA hoists the loop-invariant
    primal out of the ``lax.map`` loop, so small chunks cost no recomputation. Measured on a
    2-core EPYC (benchmarks/results/bilrp.md): forward 1.2-1.6x and reverse 1.3-1.6x faster
    than one chunk of all passes at 64-256 tokens. Accelerators keep large chunks (at least 8
    passes, all of them for short texts); memory ~ chunk * n^2 either way.
    """
    passes = n_tokens if mode == "forward" else h
    if (backend or jax.default_backend()) == "cpu":
        return int(max(1, min(passes, CPU_CHUNK_ROWS // n_tokens)))
    return int(min(passes, max(8, ACCELERATOR_CHUNK_ROWS // n_tokens)))


#: Texts per device in a batch where memory does not decide (the CPU: cache-sized chunks,
#: benchmarks/results/bilrp.md) and the most on an accelerator.
CPU_BATCH = 8
MAX_BATCH = 256
#: Share of an accelerator's memory one batch's forward-engine activations may take.
MEMORY_FRACTION = 0.4


def memory_batch_size(config: ModelConfig, device=None, devices: int = 1) -> BatchSize:
    """Texts per batch chosen from the device's memory.

    On a GPU or TPU (``device.memory_stats()["bytes_limit"]``): for a length class L, as many texts
    per device as fit ``MEMORY_FRACTION`` of the memory, each holding a chunk of passes x L
    positions of ``2f + 8h`` float32 activations (``default_chunk_size``), at most ``MAX_BATCH``;
    so short texts get wide batches and long ones narrow. Elsewhere (the CPU, or no memory stats)
    ``CPU_BATCH`` per device. Times ``devices`` (a data mesh's size)."""
    device = device or jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    limit = (stats or {}).get("bytes_limit")
    if not limit:
        return CPU_BATCH * devices
    h, f = config.hidden_size, config.intermediate_size
    row_bytes = 4 * (2 * f + 8 * h)

    def texts(length: int) -> int:
        mode = resolve_mode("auto", length, h)
        per_text = default_chunk_size(mode, length, h, backend=device.platform) * length * row_bytes
        return devices * int(min(MAX_BATCH, max(1, MEMORY_FRACTION * limit // per_text)))

    return texts


def _single_relevance(
    params: dict, pool_params: dict | None, ids: Array, type_ids: Array, mask: Array, *,
    config: ModelConfig, pooling: str, ops: Ops, mode: str, chunk_size: int, explain_input: str,
) -> tuple[Array, Array]:
    """One text: ``ids, type_ids: i32[n], mask: bool[n]`` -> (r f32[h, n], phi f32[h])."""
    enc = encoder_for(config)
    if explain_input == "embedding":
        x = enc.embed(params, config, ops, ids[None], type_ids[None])[0]
        def to_embedding(v):
            return v
    else:  # the raw embedding sum, before the embedding LayerNorm
        x = enc.embedding_sum(params, config, ids[None], type_ids[None])[0]
        def to_embedding(v):
            return enc.embedding_norm(params, config, ops, v)

    def phi(x: Array) -> Array:  # f32[n, d] -> f32[h]
        hidden = enc.encode_embeddings(params, config, ops, to_embedding(x[None]), mask[None])
        return pool(pooling, pool_params, ops, hidden, mask[None])[0]

    n = x.shape[0]
    if mode == "reverse":
        y, pullback = jax.vjp(phi, x)
        def row(cotangent):  # one output dimension m -> r_m f32[n]
            return (pullback(cotangent)[0] * x).sum(-1)
        r = jax.lax.map(row, jnp.eye(y.shape[0], dtype=x.dtype), batch_size=chunk_size)
    else:
        def column(t):  # one token t -> (phi f32[h], r[:, t] f32[h])
            return jax.jvp(phi, (x,), (x * (jnp.arange(n) == t)[:, None],))
        # phi comes from the jvp's own primal (a separate phi(x) is not deduplicated by XLA)
        ys, columns = jax.lax.map(column, jnp.arange(n), batch_size=chunk_size)
        r, y = columns.T, ys[0]
    return r, y


@functools.partial(
    jax.jit,
    static_argnames=("config", "pooling", "ops", "mode", "chunk_size", "explain_input"),
)
def token_relevance(
    params: dict, pool_params: dict | None, ids: Array, type_ids: Array, mask: Array, *,
    config: ModelConfig, pooling: str, ops: Ops = LRP_OPS, mode: str = "forward",
    chunk_size: int = 64, explain_input: str = "embedding",
) -> tuple[Array, Array]:
    """First-order relevance of every output dimension, for a batch of texts.

    ids, type_ids: i32[B, n]; mask: bool[B, n] -> (r f32[B, h, n], phi f32[B, h]).
    Padded positions get exactly 0 (they are masked out of attention and pooling).
    """
    single = functools.partial(
        _single_relevance, params, pool_params, config=config, pooling=pooling, ops=ops,
        mode=mode, chunk_size=chunk_size, explain_input=explain_input,
    )
    return jax.vmap(single)(ids, type_ids, mask)


def _check(method: str, similarity: str, explain_input: str) -> None:
    if method not in METHODS:
        raise JaxsimError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if similarity not in SIMILARITIES:
        raise JaxsimError(f"unknown similarity {similarity!r}: choose dot or cosine")
    if explain_input not in EXPLAIN_INPUTS:
        raise JaxsimError(f"unknown explain_input {explain_input!r}: {', '.join(EXPLAIN_INPUTS)}")


LENGTH_POLICIES = ("auto", "adaptive", "fine", "buckets")


def resolve_length_classes(length_classes: str, n_texts: int, cache: FactorCache | None = None) -> str:
    """``auto`` -> ``adaptive`` (classes chosen for the request against the compile cost,
    ``jaxsim.text.adaptive_lengths``) for ``FINE_FROM`` texts or more when ``cache`` knows the
    run's ``class_cost``; ``fine`` (multiples of 4/8/16 tokens) for as many without it; else
    ``buckets`` (one compilation serves a short request)."""
    if length_classes not in LENGTH_POLICIES:
        raise JaxsimError(f"unknown length classes {length_classes!r}: choose {', '.join(LENGTH_POLICIES)}")
    if length_classes == "auto":
        if n_texts < FINE_FROM:
            return "buckets"
        return "adaptive" if cache is not None and cache.class_cost is not None else "fine"
    return length_classes


def length_policy(model: Model, lengths: Sequence[int], length_classes: str,
                  cache: FactorCache | None = None, method: str = "bilrp") -> LengthClasses:
    """The ``plan_batches`` length classes for texts of ``lengths``: a name, or for ``adaptive``
    the mapping that minimises padded work plus ``class_cost`` per new compiled length (the
    cache's lengths already compiled are free). Records the classes it hands out in the cache.
    ``embedding`` (work linear in n) takes ``fine`` where the others take ``adaptive``."""
    policy: LengthClasses = resolve_length_classes(length_classes, len(lengths), cache)
    if policy == "adaptive" and method == "embedding":
        policy = "fine"
    hidden = model.config.hidden_size
    if policy == "adaptive":
        price = cache.call_price if cache is not None and cache.class_cost is not None else (
            class_cost(model.config, gemm_peak_gflops(model.config)))
        mapping = adaptive_lengths(lengths, new_class_cost=price,
                                   known=cache.known_lengths if cache is not None else (),
                                   work=functools.partial(text_work, hidden=hidden))
        policy = lambda n, max_length=None: mapping[n]  # noqa: E731
    if cache is not None and lengths:
        of = policy if callable(policy) else LENGTH_CLASSES[policy]
        cache.known_lengths.update(of(n, model.tokenizer.max_length) for n in set(lengths))
    return policy


def text_relevances(
    model: Model, encoded: Sequence[Encoded], *, method: str = "bilrp", mode: str = "auto",
    chunk_size: int | None = None, batch_size: BatchSize = 8, explain_input: str = "embedding",
    ops: Ops | None = None, progress: bool = False, placement: Placement | None = None,
    length_classes: LengthClasses = "auto", cache: FactorCache | None = None, precision: str = "fp32",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: (r f32[h, n] or, for ``embedding``, E f32[n, d]; phi f32[h]), in length-classed
    batches (``jaxsim.text.map_encoded``; ``length_classes``: ``auto``, ``adaptive``, ``fine``,
    ``buckets`` (see ``resolve_length_classes``) or a ``(n, max_length) -> length`` callable).

    placement: params replicated over a data mesh (``jaxsim.models.placement.place_params``);
    batch rows are then split over its devices (rows a multiple of the device count). A small
    request gets no all-padding rows. cache: factors already computed (a ``FactorCache`` keyed by
    the text's token ids), reused and filled, so a text repeated across calls is computed once.
    precision: ``fp32`` (default), ``tf32`` or ``bf16`` matmuls (``jaxsim.models.precision``).
    """
    check_precision(precision)
    if cache is not None:
        keys = [cache.key(e) for e in encoded]
        todo = [i for i, k in enumerate(keys) if k not in cache]
        computed = _relevances(
            model, [encoded[i] for i in todo], method=method, mode=mode, chunk_size=chunk_size,
            batch_size=batch_size, explain_input=explain_input, ops=ops, progress=progress,
            placement=placement, precision=precision, account=cache,
            length_classes=length_classes if callable(length_classes) else length_policy(
                model, [len(encoded[i]) for i in todo], length_classes, cache, method),
        ) if todo else []
        cache.calls_left -= 1
        for i, value in zip(todo, computed, strict=True):
            cache.put(keys[i], value)
        found = {i: value for i, value in zip(todo, computed, strict=True)}
        return [found[i] if i in found else cache.get(keys[i]) for i in range(len(encoded))]
    return _relevances(
        model, encoded, method=method, mode=mode, chunk_size=chunk_size, batch_size=batch_size,
        explain_input=explain_input, ops=ops, progress=progress, placement=placement,
        precision=precision, length_classes=length_classes if callable(length_classes) else
        length_policy(model, [len(e) for e in encoded], length_classes, method=method),
    )


def _relevances(
    model: Model, encoded: Sequence[Encoded], *, method: str, mode: str, chunk_size: int | None,
    batch_size: BatchSize, explain_input: str, ops: Ops | None, progress: bool,
    placement: Placement | None, length_classes: LengthClasses, precision: str,
    account: FactorCache | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``text_relevances`` without the cache; ``account``: a ``FactorCache`` whose
    ``padded_work`` counts the batches' work, padding and filler rows included."""
    from tqdm.auto import tqdm

    h = model.config.hidden_size
    params, pool_params = (placement.params, placement.pool_params) if placement else (
        model.params, model.pool_params)
    rule_ops = ops or (None if method == "embedding" else composite(COMPOSITE[method]))
    if rule_ops is not None:
        rule_ops = precision_ops(rule_ops, precision)

    def compute(batch: Batch):
        with matmul_precision(precision):
            return dispatch(batch)

    def dispatch(batch: Batch):
        ids, types, mask = (shard_rows(batch, placement.mesh) if placement
                            else [jnp.asarray(a) for a in batch])
        if method == "embedding":
            return (embedding_outputs(params, ids, types, config=model.config),
                    pooled_embeddings(params, pool_params, ids, types, mask, config=model.config,
                                      pooling=model.pooling))
        length = ids.shape[1]
        if account is not None:
            account.padded_work += ids.shape[0] * length * length
        run_mode = resolve_mode(mode, length, h)
        return token_relevance(
            params, pool_params, ids, types, mask, config=model.config, pooling=model.pooling,
            ops=rule_ops, mode=run_mode, explain_input=explain_input,
            chunk_size=chunk_size or default_chunk_size(run_mode, length, h),
        )

    def unpack(host, row: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        values, phis = host
        n = len(encoded[i])
        return (values[row, :n] if method == "embedding" else values[row, :, :n]), phis[row]

    return map_encoded(
        encoded, batch_size=batch_size, max_length=model.tokenizer.max_length,
        pad_id=model.tokenizer.pad_token_id, compute=compute, unpack=unpack,
        fill=False, multiple_of=placement.mesh.size if placement else 1,
        length_classes=length_classes,
        progress=(lambda plans: tqdm(plans, desc=f"{method} texts", unit="batch")) if progress else None,
    )


def pair_relevance(
    method: str, rel_a: np.ndarray, rel_b: np.ndarray, phi_a: np.ndarray, phi_b: np.ndarray,
    similarity: str,
) -> tuple[np.ndarray, float]:
    """``R f64[n_a, n_b]`` and the explained similarity, from per-text relevances."""
    phi_a, phi_b = phi_a.astype(np.float64), phi_b.astype(np.float64)
    if method == "embedding":
        relevance = np.square(rel_a.astype(np.float64) @ rel_b.astype(np.float64).T)
    else:
        relevance = rel_a.astype(np.float64).T @ rel_b.astype(np.float64)
    score = float(phi_a @ phi_b)
    if similarity == "cosine":
        norm = float(np.linalg.norm(phi_a) * np.linalg.norm(phi_b))
        score /= norm
        if method != "embedding":
            relevance = relevance / norm
    return relevance, score


def explain_encoded_pairs(
    model: Model, pairs: Sequence[tuple[str, str]], encoded: dict[str, Encoded], *,
    method: str = "bilrp", similarity: str = "dot", mode: str = "auto", chunk_size: int | None = None,
    batch_size: int = 8, explain_input: str = "embedding", ops: Ops | None = None,
    progress: bool = False, placement: Placement | None = None, length_classes: str = "auto",
    cache: FactorCache | None = None, precision: str = "fp32",
) -> list[PairExplanation]:
    """``PairExplanation`` per pair of texts already encoded in ``encoded`` (text -> encoding):
    each distinct text's relevance is computed once (``text_relevances``), then
    ``R = r_a^T r_b`` per pair in float64 on the host (``pair_relevance``)."""
    _check(method, similarity, explain_input)
    texts = list(encoded)
    rels = text_relevances(
        model, [encoded[t] for t in texts], method=method, mode=mode, chunk_size=chunk_size,
        batch_size=batch_size, explain_input=explain_input, ops=ops, progress=progress,
        placement=placement, length_classes=length_classes, cache=cache, precision=precision,
    )
    by_text = dict(zip(texts, rels, strict=True))
    results = []
    for a, b in pairs:
        (rel_a, phi_a), (rel_b, phi_b) = by_text[a], by_text[b]
        relevance, score = pair_relevance(method, rel_a, rel_b, phi_a, phi_b, similarity)
        results.append(PairExplanation.from_encodings(
            method=method, model=model.name, a=encoded[a], b=encoded[b], relevance=relevance,
            similarity=score, similarity_kind=similarity, pooling=model.pooling,
        ))
    return results


def explain_pairs(
    model: Model, pairs: Iterable[tuple[str, str]], *, method: str = "bilrp", similarity: str = "dot",
    mode: str = "auto", chunk_size: int | None = None, batch_size: int = 8,
    explain_input: str = "embedding", ops: Ops | None = None, progress: bool = True,
    length_classes: str = "auto", prompt: str | None = None, precision: str = "fp32",
) -> list[PairExplanation]:
    """Explain many pairs: each distinct text's relevance is computed once, in length-classed
    batches (``length_classes``: see ``resolve_length_classes``). ``prompt``: the name of a
    sentence-transformers prompt put before both texts (e5's ``query``); its pieces are tokens of
    the explanation (the token view shows them) but no word of the text. ``precision``: ``fp32``
    (default), or ``tf32`` / ``bf16`` matmuls, faster on a GPU at a measured faithfulness cost
    (``jaxsim.models.precision``; docs/performance.md)."""
    _check(method, similarity, explain_input)
    pairs = [(a, b) for a, b in pairs]
    prefix = model.prompt_text(prompt)
    encoded: dict[str, Encoded] = {}
    for k, pair in enumerate(pairs):
        for side, text in zip("ab", pair, strict=True):
            if not isinstance(text, str) or text not in encoded:
                what = f"text {side}" if len(pairs) == 1 else f"pair {k} text {side}"
                encoded[text] = model.tokenizer.encode(text, what=what, prompt=prefix)
    return explain_encoded_pairs(
        model, pairs, encoded, method=method, similarity=similarity, mode=mode,
        chunk_size=chunk_size, batch_size=batch_size, explain_input=explain_input, ops=ops,
        progress=progress, length_classes=length_classes, precision=precision,
    )


def explain_pair(model: Model, text_a: str, text_b: str, **options) -> PairExplanation:
    """Explain one pair (see ``explain_pairs`` for the options)."""
    options.setdefault("progress", False)
    options.setdefault("batch_size", 1)
    return explain_pairs(model, [(text_a, text_b)], **options)[0]
