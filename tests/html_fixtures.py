"""Hand-made explanation results for the HTML tests (no model needed)."""

from __future__ import annotations

import numpy as np

from jaxsim.explain.bti import WordPairExplanation
from jaxsim.explain.first_order import TokenExplanation
from jaxsim.explain.result import PairExplanation, SearchHit, SearchResult


def pair_result(seed: int = 0) -> PairExplanation:
    """``[CLS] a man plays gu ##itar [SEP]`` x ``[CLS] a person plays music [SEP]`` with random R."""
    tokens_a = ["[CLS]", "a", "man", "plays", "gu", "##itar", "[SEP]"]
    tokens_b = ["[CLS]", "a", "person", "plays", "music", "[SEP]"]
    relevance = np.random.default_rng(seed).normal(size=(len(tokens_a), len(tokens_b)))
    return PairExplanation(
        method="bilrp", model="hand-made", tokens_a=tokens_a, tokens_b=tokens_b,
        relevance=relevance, similarity=float(relevance.sum()), similarity_kind="dot",
        pooling="mean", words_a=["a", "man", "plays", "guitar"], words_b=["a", "person", "plays", "music"],
        word_ids_a=np.array([-1, 0, 1, 2, 3, 3, -1]), word_ids_b=np.array([-1, 0, 1, 2, 3, -1]),
        special_a=np.array([1, 0, 0, 0, 0, 0, 1], bool), special_b=np.array([1, 0, 0, 0, 0, 1], bool),
    )


def search_result(hits: int = 3) -> SearchResult:
    """A query ``a man plays guitar`` with ``hits`` explained hits (``pair_result(k)``)."""
    return SearchResult(
        query="a man plays guitar", model="hand-made", similarity_kind="dot", pooling="mean",
        documents=10, hits=[SearchHit(rank=k + 1, id=f"doc-{k}", row=k, text="a person plays music",
                                      score=float(fx.similarity), explanation=fx)
                            for k, fx in ((k, pair_result(k)) for k in range(hits))])


def _pair(i: int, j: int, score: float, words_a, words_b) -> dict:
    return {"word_a": words_a[i], "word_b": words_b[j], "score": score, "cosine": 0.5,
            "saliency_a": 0.5, "saliency_b": 0.5}


def word_pair_result() -> WordPairExplanation:
    words_a, words_b = ["a", "red", "dress"], ["a", "crimson", "gown"]
    all_pairs = [_pair(2, 2, 0.9, words_a, words_b), _pair(1, 1, 0.7, words_a, words_b),
                 _pair(0, 0, 0.1, words_a, words_b), _pair(1, 2, 0.05, words_a, words_b)]
    return WordPairExplanation(
        method="bti", model="hand-made", tokens_a=["[CLS]", "a", "red", "dress", "[SEP]"],
        tokens_b=["[CLS]", "a", "crim", "##son", "gown", "[SEP]"], similarity=0.8,
        words_a=words_a, words_b=words_b,
        token_saliency_a=np.array([0, 0.1, 0.7, 1.0, 0]),
        token_saliency_b=np.array([0, 0.1, 0.6, 0.8, 1.0, 0]),
        word_saliency_a=np.array([0.1, 0.7, 1.0]), word_saliency_b=np.array([0.1, 0.8, 1.0]),
        word_pairs=all_pairs[:2], all_pairs=all_pairs,
    )


def token_result() -> TokenExplanation:
    tokens = ["[CLS]", "a", "cat", "[SEP]", "a", "kit", "##ten", "[SEP]"]
    scores = np.array([0.05, 0.1, 0.9, 0.02, 0.1, 0.5, 0.4, 0.03])
    return TokenExplanation(
        method="gi", model="hand-made", tokens=tokens, segment=np.array([-1, 0, 0, -1, 1, 1, 1, -1]),
        scores=scores, signed=scores - 0.1, words=["a", "cat", "a", "kitten"],
        word_ids=np.array([-1, 0, 1, -1, 2, 3, 3, -1]), special=np.array([1, 0, 0, 1, 0, 0, 0, 1], bool),
        labels=("different", "same"), logits=np.array([-1.0, 2.0]), target=1, output="logit",
        explained_value=2.0,
    )


GROUP_WORDS = (["the", "cat", "sat", "on", "the", "mat"], ["a", "kitten", "was", "sitting", "on", "a", "rug"])
# group per word, a's words then b's (-1: in no group)
GROUP_IDS = [-1, 0, 1, 2, -1, 3, -1, 0, -1, 1, 2, -1, 3]
GROUP_IMPORTANCE = [0.8, 0.5, -0.2, 0.3]
