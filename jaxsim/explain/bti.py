"""BTI: BERT-based text-similarity interpretation (Malkiel et al. 2022; METHODS.md §2).

Each text is encoded alone as ``[CLS] p [SEP]``. With ``F_p`` the mean of the last hidden
states over the content tokens (Eq. 1) and ``E = T[ids] + O[positions]`` the token + position
embeddings before the LayerNorm (Eq. 2; the segment embedding is still added in the forward):

    g   = d cos(F_anchor, F_target(E)) / d E_target         (Eq. 3, F_anchor constant)
    s_i = minmax_i( sum_k ReLU(E_ik * g_ik) )                 (Eq. 4, content tokens only)

Words: latent = mean of their pieces' last hidden states, saliency = max over pieces. Each word
of one text is matched to the other text's word of highest latent cosine (Eq. 5, both
directions, ties to the later index); pair score ``U = c * s_a * s_b`` (Eq. 6); scikit-learn
``MeanShift`` on the 1-D U values keeps the pairs of the ``top_k`` highest clusters (Alg. 1).

Variants (``method``): ``bti`` (the paper), ``bti_last_layer`` / ``bti_activations`` /
``bti_gradients`` (ablations, §4.2), ``vg`` (vanilla gradient norm), ``ig`` (integrated
gradients, zero baseline, left Riemann sum as AllenNLP Interpret), ``tfidf`` (TF-IDF-weighted
static word vectors; see ``tfidf_pairs``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.explain.result import WordPairExplanation
from jaxsim.models import encoder_for
from jaxsim.models.config import ModelConfig
from jaxsim.models.ops import PLAIN_OPS
from jaxsim.models.pooling import mean_pool
from jaxsim.text import Batch, BatchPlan, Encoded, aggregate, map_batches, pad_batch
from jaxsim.types import Array

if TYPE_CHECKING:
    from jaxsim.model import Model

METHODS = ("bti", "bti_last_layer", "bti_activations", "bti_gradients", "vg", "ig")


# --- model side (jitted, batched) ------------------------------------------------------------

def _features_from_sum(params: dict, config: ModelConfig, summed: Array, mask: Array,
                       content: Array) -> tuple[Array, Array]:
    """Pre-LN embedding sum -> (F f32[B, d] (Eq. 1), last hidden f32[B, n, d])."""
    enc = encoder_for(config)
    hidden = enc.encode_embeddings(params, config, PLAIN_OPS,
                                   enc.embedding_norm(params, config, PLAIN_OPS, summed), mask)
    return mean_pool(hidden, content), hidden


def _segment_embedding(params: dict) -> Array:
    """Token type 0, added in the forward but not part of E (B1)."""
    token_type = params["embeddings"].get("token_type")
    return 0.0 if token_type is None else token_type[0]


def _cosine(u: Array, v: Array) -> Array:
    return (u * v).sum(-1) / (jnp.linalg.norm(u, axis=-1) * jnp.linalg.norm(v, axis=-1))


@functools.partial(jax.jit, static_argnames=("config",))
def bti_features(params: dict, ids: Array, mask: Array, content: Array, *,
                 config: ModelConfig) -> tuple[Array, Array, Array]:
    """(E f32[B, n, d], F f32[B, d], last hidden f32[B, n, d]) for texts encoded alone."""
    emb = params["embeddings"]
    E = emb["word"][ids] + emb["position"][jnp.arange(ids.shape[-1])]
    F, hidden = _features_from_sum(params, config, E + _segment_embedding(params), mask, content)
    return E, F, hidden


IG_RULES = ("left", "midpoint", "gauss_legendre")


def ig_nodes(steps: int, rule: str = "left") -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes alpha in [0, 1] and weights (summing to 1) for the IG path integral.

    ``left``: ``alpha = k / steps``, k = 0..steps-1, equal weights (AllenNLP Interpret, the
    paper's baseline); ``midpoint``; ``gauss_legendre`` (accurate with few steps: the path is
    steep near alpha = 0, where the LayerNorm input is small).
    """
    if rule == "left":
        return np.arange(steps) / steps, np.full(steps, 1.0 / steps)
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if rule == "gauss_legendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return (x + 1) / 2, w / 2
    raise JaxsimError(f"unknown IG rule {rule!r}: choose one of {', '.join(IG_RULES)}")


@functools.partial(jax.jit, static_argnames=("config", "ig_steps", "ig_rule"))
def bti_gradients(params: dict, E: Array, mask: Array, content: Array, anchor: Array, *,
                  config: ModelConfig, ig_steps: int = 0, ig_rule: str = "left"
                  ) -> tuple[Array, Array]:
    """Eq. 3 for a batch of targets: ``g = d cos(anchor, F(E)) / d E`` f32[B, n, d], and the
    gradient at the last layer ``d cos / d B(p)`` f32[B, n, d] (ablation (i)).

    With ``ig_steps > 0`` the first output is the integrated-gradients path average
    ``sum_k w_k grad(alpha_k E)`` (zero baseline; nodes from ``ig_nodes``), so that
    ``sum(g * E)`` approximates ``f(E) - f(0)``.
    """
    segment = _segment_embedding(params)

    def score(e, mask, content, anchor):  # one text: f32[n, d] -> scalar
        F, _ = _features_from_sum(params, config, (e + segment)[None], mask[None], content[None])
        return _cosine(jax.lax.stop_gradient(anchor), F[0])

    def last_layer_score(hidden, content, anchor):
        return _cosine(anchor, mean_pool(hidden[None], content[None])[0])

    grad = jax.grad(score)
    if ig_steps:
        nodes, weights = (jnp.asarray(v, E.dtype) for v in ig_nodes(ig_steps, ig_rule))
        def path_grad(e, m, c, a):
            grads = jax.vmap(lambda alpha: grad(alpha * e, m, c, a))(nodes)
            return jnp.tensordot(weights, grads, axes=1)
        g = jax.vmap(path_grad)(E, mask, content, anchor)
    else:
        g = jax.vmap(grad)(E, mask, content, anchor)
    _, hidden = _features_from_sum(params, config, E + segment, mask, content)
    g_last = jax.vmap(jax.grad(last_layer_score))(hidden, content, anchor)
    return g, g_last


# --- scores, words, matching (numpy; small) --------------------------------------------------

def minmax(values: np.ndarray) -> np.ndarray:
    """NRM of Eq. 4 over the given (content) tokens; a flat input gives ones if its value is
    positive, else zeros (B9, as the pseudo-code)."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 0:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)


def token_scores(method: str, E: np.ndarray, g: np.ndarray, hidden: np.ndarray,
                 g_last: np.ndarray) -> np.ndarray:
    """Per content token score f32[q] from activations/gradients f32[q, d] (Eq. 4 and variants)."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    if method == "bti":
        return minmax(relu(E * g).sum(-1))
    if method == "bti_last_layer":
        return minmax(relu(hidden * g_last).sum(-1))
    if method == "bti_activations":
        return minmax(relu(E).sum(-1))
    if method == "bti_gradients":
        return minmax(relu(g).sum(-1))
    if method == "vg":
        return np.linalg.norm(g, axis=-1)
    if method == "ig":
        score = np.abs((g * E).sum(-1))
        return score / max(float(score.sum()), 1e-12)
    raise JaxsimError(f"unknown BTI method {method!r}: choose one of {', '.join(METHODS)}")


def last_argmax(row: np.ndarray) -> int:
    """Alg. 1's ``if c <= c_hat`` scan: ties go to the later index."""
    return int(len(row) - 1 - np.argmax(row[::-1]))


def match_words(latents_a: np.ndarray, latents_b: np.ndarray) -> tuple[list[tuple[int, int]],
                                                                       np.ndarray]:
    """Eq. 5 in both directions (B3): the set union of (i, argmax_j C[i, j]) and
    (argmax_i C[i, j], j). Returns (sorted pairs, cosine matrix f64[w_a, w_b])."""
    na = latents_a / np.maximum(np.linalg.norm(latents_a, axis=-1, keepdims=True), 1e-12)
    nb = latents_b / np.maximum(np.linalg.norm(latents_b, axis=-1, keepdims=True), 1e-12)
    cos = na.astype(np.float64) @ nb.astype(np.float64).T
    pairs = {(i, last_argmax(cos[i])) for i in range(cos.shape[0])}
    pairs |= {(last_argmax(cos[:, j]), j) for j in range(cos.shape[1])}
    return sorted(pairs), cos


def _distance(a, b):
    """|a - b| computed as scikit-learn's trees do (sqrt of the squared difference), so that
    points exactly one bandwidth apart fall on the same side of the boundary."""
    return np.sqrt(np.square(a - b))


def estimate_bandwidth_1d(values: np.ndarray, quantile: float = 0.3) -> float:
    """``sklearn.cluster.estimate_bandwidth`` for 1-D data: the mean over points of the
    distance to their ``int(n * quantile)``-th nearest neighbour (the point itself included)."""
    k = max(1, int(len(values) * quantile))
    distances = np.sort(_distance(values[:, None], values[None, :]), axis=1)
    return float(distances[:, k - 1].mean())


def meanshift_1d(values: np.ndarray, bandwidth: float, max_iter: int = 300
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.cluster.MeanShift(bandwidth).fit`` for 1-D data, step for step (flat kernel,
    every point a seed, stop at 1e-3 * bandwidth, near-duplicate centres merged by intensity,
    points labelled by the nearest centre) without the per-seed neighbour-tree queries that
    make scikit-learn's take ~0.2 s per call. Returns (centres f64[c], labels i64[n]).
    ``tests/test_bti.py`` checks it against scikit-learn."""
    intensity: dict[float, int] = {}
    for seed in values:
        mean, iterations = float(seed), 0
        while True:
            within = values[_distance(values, mean) <= bandwidth]
            if len(within) == 0:
                break
            old, mean = mean, float(within.mean())
            if abs(mean - old) <= 1e-3 * bandwidth or iterations == max_iter:
                break
            iterations += 1
        if len(within):
            intensity[mean] = len(within)
    ranked = np.array([c for c, _ in sorted(intensity.items(), key=lambda t: (t[1], t[0]),
                                                reverse=True)])
    unique = np.ones(len(ranked), bool)
    for i, centre in enumerate(ranked):
        if unique[i]:
            unique[_distance(ranked, centre) <= bandwidth] = False
            unique[i] = True
    centres = ranked[unique]
    return centres, np.argmin(_distance(values[:, None], centres[None, :]), axis=1)


def select_top_pairs(scores: np.ndarray, top_k: int = 2, backend: str = "numpy") -> np.ndarray:
    """Alg. 1 TopWords: MeanShift on the 1-D scores (scikit-learn's defaults: bandwidth from
    ``estimate_bandwidth`` with quantile 0.3), clusters ranked by centroid, descending; keep the
    members of clusters with rank < top_k (B4). Fewer than 2 distinct values or a zero
    bandwidth: keep all. ``backend="sklearn"`` runs ``sklearn.cluster.MeanShift`` itself; the
    default ``numpy`` is the same algorithm for 1-D data, ~100x faster.
    Returns a bool[len(scores)] mask."""
    values = np.asarray(scores, np.float64).reshape(-1)
    if len(np.unique(values)) < 2:
        return np.ones(len(values), bool)
    if backend == "sklearn":
        from sklearn.cluster import MeanShift, estimate_bandwidth

        bandwidth = estimate_bandwidth(values[:, None])
        if not bandwidth > 0:
            return np.ones(len(values), bool)
        ms = MeanShift(bandwidth=bandwidth).fit(values[:, None])
        centres, labels = ms.cluster_centers_[:, 0], ms.labels_
    elif backend == "numpy":
        bandwidth = estimate_bandwidth_1d(values)
        if not bandwidth > 0:
            return np.ones(len(values), bool)
        centres, labels = meanshift_1d(values, bandwidth)
    else:
        raise JaxsimError(f"unknown MeanShift backend {backend!r}: numpy or sklearn")
    rank = np.empty(len(centres), int)
    rank[np.argsort(-centres)] = np.arange(len(rank))
    return rank[labels] < top_k


def _pair_dicts(pairs, scores, cos, sal_a, sal_b, words_a, words_b) -> list[dict[str, Any]]:
    out = [{"word_a": words_a[i], "word_b": words_b[j], "a": int(i), "b": int(j), "score": float(s),
            "cosine": float(cos[i, j]), "saliency_a": float(sal_a[i]),
            "saliency_b": float(sal_b[j])} for (i, j), s in zip(pairs, scores, strict=True)]
    return sorted(out, key=lambda p: -p["score"])


def words_from_tokens(enc: Encoded, token_values: np.ndarray, hidden: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(word saliency f32[w] = max over pieces, word latents f32[w, d] = mean over pieces)."""
    n_words = len(enc.words)
    return (aggregate(token_values, enc.word_ids, n_words, reduce="max"),
            aggregate(hidden, enc.word_ids, n_words, reduce="mean"))


def assemble(method: str, model_name: str, enc_a: Encoded, enc_b: Encoded, tok_a: np.ndarray,
             tok_b: np.ndarray, hid_a: np.ndarray, hid_b: np.ndarray, similarity: float,
             top_k: int) -> WordPairExplanation:
    """Alg. 1 after the token scores: words, matching, Eq. 6, MeanShift selection."""
    sal_a, lat_a = words_from_tokens(enc_a, tok_a, hid_a)
    sal_b, lat_b = words_from_tokens(enc_b, tok_b, hid_b)
    pairs, cos = match_words(lat_a, lat_b)
    scores = np.array([cos[i, j] * sal_a[i] * sal_b[j] for i, j in pairs])
    keep = select_top_pairs(scores, top_k)
    args = (cos, sal_a, sal_b, enc_a.words, enc_b.words)
    return WordPairExplanation(
        method=method, model=model_name, tokens_a=enc_a.tokens, tokens_b=enc_b.tokens,
        similarity=similarity, words_a=enc_a.words, words_b=enc_b.words,
        token_saliency_a=tok_a, token_saliency_b=tok_b, word_saliency_a=sal_a,
        word_saliency_b=sal_b,
        word_pairs=_pair_dicts([p for p, k in zip(pairs, keep, strict=True) if k],
                               scores[keep], *args),
        all_pairs=_pair_dicts(pairs, scores, *args),
    )


# --- public API ------------------------------------------------------------------------------

def _content(enc: Encoded) -> np.ndarray:
    return ~enc.special


def _padded_with_content(encoded: Sequence[Encoded], plan: BatchPlan, pad_id: int
                         ) -> tuple[Batch, np.ndarray]:
    """A batch of ``plan`` and its content mask ``bool[rows, length]`` (no specials, no pad)."""
    batch = pad_batch([encoded[i] for i in plan.indices], plan.length, plan.rows, pad_id)
    content = np.zeros_like(batch.mask)
    for r, i in enumerate(plan.indices):
        content[r, : len(encoded[i])] = _content(encoded[i])
    return batch, content


def _run_side(model: Model, targets: list[Encoded], anchors: np.ndarray, method: str, batch_size: int,
              ig_steps: int, ig_rule: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Token scores (f32[n], 0 on specials), last hidden f32[n, d] and F for each target."""
    def pad(plan: BatchPlan):
        batch, content = _padded_with_content(targets, plan, model.tokenizer.pad_token_id)
        anchor = np.zeros((plan.rows, model.config.hidden_size), np.float32)
        anchor[: len(plan.indices)] = anchors[plan.indices]
        return batch, content, anchor

    def compute(args):
        batch, content, anchor = args
        E, F, hidden = bti_features(model.params, batch.ids, batch.mask, content, config=model.config)
        g, g_last = bti_gradients(model.params, E, batch.mask, content, anchor,
                                  config=model.config, ig_steps=ig_steps if method == "ig" else 0,
                                  ig_rule=ig_rule)
        return E, g, hidden, g_last, F

    def unpack(host, r: int, i: int):
        E, g, hidden, g_last, F = host
        keep = _content(targets[i])
        n = len(targets[i])
        scores = np.zeros(n, np.float32)
        scores[keep] = token_scores(method, E[r, :n][keep], g[r, :n][keep],
                                    hidden[r, :n][keep], g_last[r, :n][keep])
        return scores, hidden[r, :n], np.asarray(F[r])

    return map_batches(targets, [len(t) for t in targets], batch_size=batch_size,
                       max_length=model.tokenizer.max_length, pad=pad, compute=compute,
                       unpack=unpack, fill=False)


def features(model: Model, encoded: Sequence[Encoded], batch_size: int = 32) -> np.ndarray:
    """F (Eq. 1) f32[N, d] for encoded texts."""
    def compute(args):
        batch, content = args
        return bti_features(model.params, batch.ids, batch.mask, content, config=model.config)[1]

    rows = map_batches(
        encoded, [len(e) for e in encoded], batch_size=batch_size,
        max_length=model.tokenizer.max_length, fill=False, compute=compute,
        pad=lambda plan: _padded_with_content(encoded, plan, model.tokenizer.pad_token_id),
        unpack=lambda F, r, i: F[r],
    )
    return np.stack(rows) if rows else np.zeros((0, model.config.hidden_size), np.float32)


def explain_pairs(model: Model, pairs: Iterable[tuple[str, str]], *, method: str = "bti",
                  top_k: int = 2, batch_size: int = 16, ig_steps: int = 10,
                  ig_rule: str = "left", progress: bool = False) -> list[WordPairExplanation]:
    """BTI (or a variant/baseline) for many pairs; both directions batched together.

    top_k: MeanShift clusters kept (paper: 2). ig_steps / ig_rule: IG quadrature (``ig``
    only; default = AllenNLP's 10 left-Riemann steps).
    """
    if method not in METHODS:
        raise JaxsimError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    pairs = list(pairs)
    enc_a = [model.tokenizer.encode(a, what="text a") for a, _ in pairs]
    enc_b = [model.tokenizer.encode(b, what="text b") for _, b in pairs]
    for enc in enc_a + enc_b:
        if not _content(enc).any():
            raise JaxsimError(f"{enc.text!r} has no content tokens to explain")
    F = features(model, enc_a + enc_b, batch_size)
    F_a, F_b = F[: len(pairs)], F[len(pairs):]
    # Direction a <- b explains a with F_b fixed (S1), and b <- a explains b (S2).
    sides = _run_side(model, enc_a + enc_b, np.concatenate([F_b, F_a]), method, batch_size,
                      ig_steps, ig_rule)
    results = []
    for k, (ea, eb) in enumerate(zip(enc_a, enc_b, strict=True)):
        (tok_a, hid_a, fa), (tok_b, hid_b, fb) = sides[k], sides[len(pairs) + k]
        similarity = float(fa @ fb / (np.linalg.norm(fa) * np.linalg.norm(fb)))
        results.append(assemble(method, model.name, ea, eb, tok_a, tok_b, hid_a, hid_b,
                                similarity, top_k))
    return results


def explain_pair(model: Model, text_a: str, text_b: str, **options) -> WordPairExplanation:
    return explain_pairs(model, [(text_a, text_b)], **options)[0]


# --- TF-IDF-W2V baseline -------------------------------------------------------------------

def tfidf_pairs(model: Model, text_a: str, text_b: str, corpus: Sequence[str], top_k: int = 2
                ) -> WordPairExplanation:
    """TF-IDF-weighted word vectors: ``score = T(w_a) T(w_b) cos(W(w_a), W(w_b))``.

    T: scikit-learn TF-IDF fitted on ``corpus`` (the user's texts), words as jaxsim's word map,
    lower-cased. W: the model's static token embeddings averaged over a word's pieces (no
    external word2vec is available offline). Matching and MeanShift selection as BTI.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    from jaxsim.text import word_spans

    def analyzer(text: str) -> list[str]:
        return [text[s:e].lower() for s, e in word_spans(text)]

    vectorizer = TfidfVectorizer(analyzer=analyzer).fit(list(corpus) + [text_a, text_b])
    vocab = vectorizer.vocabulary_
    encs = [model.tokenizer.encode(t, what=w) for t, w in ((text_a, "text a"), (text_b, "text b"))]
    table = np.asarray(model.params["embeddings"]["word"])
    weights, vectors = [], []
    for enc, text in zip(encs, (text_a, text_b), strict=True):
        row = vectorizer.transform([text])
        weights.append(np.array([row[0, vocab[w.lower()]] if w.lower() in vocab else 0.0
                                 for w in enc.words]))
        vectors.append(aggregate(table[enc.ids], enc.word_ids, len(enc.words), reduce="mean"))
    pairs, cos = match_words(vectors[0], vectors[1])
    scores = np.array([weights[0][i] * weights[1][j] * cos[i, j] for i, j in pairs])
    keep = select_top_pairs(scores, top_k)
    args = (cos, weights[0], weights[1], encs[0].words, encs[1].words)
    zeros = [np.zeros(len(e), np.float32) for e in encs]
    return WordPairExplanation(
        method="tfidf", model=model.name, tokens_a=encs[0].tokens, tokens_b=encs[1].tokens,
        similarity=float(model.similarity(text_a, text_b)), words_a=encs[0].words,
        words_b=encs[1].words, token_saliency_a=zeros[0], token_saliency_b=zeros[1],
        word_saliency_a=weights[0], word_saliency_b=weights[1],
        word_pairs=_pair_dicts([p for p, k in zip(pairs, keep, strict=True) if k],
                               scores[keep], *args),
        all_pairs=_pair_dicts(pairs, scores, *args),
    )
