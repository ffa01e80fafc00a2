"""The synthetic noun-interaction task and ACS ([BiLRP] §4.3, Fig. 1; METHODS.md §1.4.2, A7).

A bi-encoder is trained to predict, from the dot product of its two pooled embeddings, the number
of distinct (lower-cased) NOUN/PROPN types that occur in both sentences of a pair. The true
interactions are then known: ``G[t, t'] = 1`` iff word piece ``t`` of text a and ``t'`` of text b
both belong to NOUN/PROPN words and have identical ids. The attribution cosine similarity

    ACS = mean over pairs of cos(vec(G), vec(R))

scores an explanation ``R f[n_a, n_b]`` (signed, raw, specials included where G is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from jaxsim.errors import JaxsimError
from jaxsim.evaluate.pos import NOUN_TAGS, TaggedToken

if TYPE_CHECKING:
    from jaxsim.model import Model


def noun_types(tagged: Sequence[TaggedToken]) -> frozenset[str]:
    """The lower-cased NOUN/PROPN token texts of one sentence."""
    return frozenset(t.text.lower() for t in tagged if t.pos in NOUN_TAGS)


def shared_noun_count(tagged_a: Sequence[TaggedToken], tagged_b: Sequence[TaggedToken]) -> int:
    """The task target: how many distinct NOUN/PROPN types occur in both sentences (A7)."""
    return len(noun_types(tagged_a) & noun_types(tagged_b))


def ground_truth_interactions(ids_a: np.ndarray, tags_a: Sequence[str], ids_b: np.ndarray,
                              tags_b: Sequence[str]) -> np.ndarray:
    """``G f64[n_a, n_b]``: 1 where both pieces are NOUN/PROPN pieces with the same id, else 0."""
    noun_a = np.array([t in NOUN_TAGS for t in tags_a])
    noun_b = np.array([t in NOUN_TAGS for t in tags_b])
    same = np.asarray(ids_a)[:, None] == np.asarray(ids_b)[None, :]
    return (same & noun_a[:, None] & noun_b[None, :]).astype(np.float64)


def matrix_cosine(g: np.ndarray, r: np.ndarray) -> float:
    """``cos(vec(g), vec(r))`` of two ``f[n_a, n_b]`` matrices; NaN if either is all zero."""
    g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
    if g.shape != r.shape:
        raise JaxsimError(f"G and R differ in shape: {g.shape} vs {r.shape}")
    g, r = g.ravel(), r.ravel()
    denom = np.linalg.norm(g) * np.linalg.norm(r)
    return float(g @ r / denom) if denom > 0 else float("nan")


def acs(ground_truths: Sequence[np.ndarray], relevances: Sequence[np.ndarray]) -> tuple[float, float, int]:
    """ACS over pairs: (mean, std, number of pairs used). Pairs whose G or R is all zero are
    skipped (their cosine is undefined)."""
    cosines = np.array([matrix_cosine(g, r) for g, r in zip(ground_truths, relevances, strict=True)])
    cosines = cosines[np.isfinite(cosines)]
    if not len(cosines):
        raise JaxsimError("no pair with a non-zero ground truth and relevance")
    return float(cosines.mean()), float(cosines.std()), int(len(cosines))


def pair_piece_tags(tokenizer, pairs: Sequence[tuple[str, str]], tagged: Sequence[Sequence[TaggedToken]]
                    ) -> list[tuple[list[str], list[str]]]:
    """Per pair the POS tag of every word piece of a and of b. ``tagged`` = spaCy tokens of
    the texts a_0, b_0, a_1, b_1, ... (``pos.tag_texts`` on the flattened pairs)."""
    from jaxsim.evaluate.pos import piece_offsets, piece_tags

    out = []
    for k, pair in enumerate(pairs):
        sides = []
        for j, text in enumerate(pair):
            enc = tokenizer.encode(text)
            sides.append(piece_tags(piece_offsets(tokenizer, text), enc.special, enc.tokens,
                                    tagged[2 * k + j]))
        out.append((sides[0], sides[1]))
    return out


def acs_for_methods(model: Model, pairs: Sequence[tuple[str, str]],
                    piece_tags_: Sequence[tuple[list[str], list[str]]],
                    methods: Sequence[str] = ("bilrp", "hxp", "embedding"), batch_size: int = 16,
                    progress: bool = False) -> dict[str, tuple[float, float, int]]:
    """ACS ``(mean, std, pairs used)`` of each token-pair method on ``pairs`` for ``model``
    (the trained bi-encoder; dot-product similarity of its pooled embeddings)."""
    from jaxsim.explain import explain_pairs

    truths = []
    for (a, b), (tags_a, tags_b) in zip(pairs, piece_tags_, strict=True):
        truths.append(ground_truth_interactions(model.tokenizer.encode(a).ids, tags_a,
                                                model.tokenizer.encode(b).ids, tags_b))
    out = {}
    for method in methods:
        results = explain_pairs(model, pairs, method=method, batch_size=batch_size, progress=progress)
        out[method] = acs(truths, [r.relevance for r in results])
    return out
