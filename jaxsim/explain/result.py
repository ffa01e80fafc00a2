"""Every explanation result, in one place: typed, JSON-able, viewable, and registered pytrees.

- ``PairExplanation``: token-pair relevance ``R f64[n_a, n_b]`` of a similarity (BiLRP, H×P,
  Embeddings), raw (never normalised), with tokens and the word map.
- ``WordPairExplanation``: BTI's word saliencies and matched word pairs.
- ``TokenExplanation``: first-order token scores of a pair classifier (GS, GI, LRP, LAT).
- ``GroupExplanation``: GMASK / IMASK word-piece groups of a pair classifier.

Results are data: word-level aggregation and rankings live here; every view (terminal text, HTML
page, figures) lives in ``jaxsim.viz`` and is reached through the shared ``Explanation`` methods
``show``, ``to_html``, ``_repr_html_`` and ``save_png`` (a call that imports the view: ``viz``
sits above ``explain``). Each result is a registered pytree: its arrays are the leaves, its names
and scalars static data, so results pass through ``jax.tree_util``, ``jit`` boundaries and orbax.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxsim.errors import OptionError
from jaxsim.text import Encoded, aggregate

#: Piece -> word aggregation per method: sums keep conservation; GS takes the max; GMASK's θ max.
WORD_AGGREGATION = {"gs": "max", "gi": "sum", "lrp": "sum", "lrp_eps": "sum", "lrp_ab": "sum",
                    "lat": "sum", "lat_mix": "sum", "gmask": "max", "imask": "max"}


class Explanation(abc.ABC):
    """The shared base: JSON from ``to_dict``; views from ``jaxsim.viz``."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of the result (every subclass defines its own)."""

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def show(self, k: int | None = None) -> str:
        """A compact terminal view (``jaxsim.viz.terminal.render``); ``k`` top items."""
        from jaxsim.viz.terminal import render

        return render(self, k)

    def to_html(self) -> str:
        """One self-contained HTML page (``jaxsim.viz.html.explanation_html``)."""
        from jaxsim.viz.html import explanation_html

        return explanation_html(self)

    def _repr_html_(self) -> str:  # Jupyter
        from jaxsim.viz.html import notebook_html

        return notebook_html(self.to_html())

    def save_png(self, path: str | Path, kind: str = "both") -> Path:
        """A PNG figure (``jaxsim.viz.figures.save_png``): pair results draw the heatmap
        (``matrix``), the paper-style lines (``lines``) or ``both``; token results a bar chart."""
        from jaxsim.viz.figures import save_png

        return save_png(self, Path(path), kind)


# --- pytree registration -------------------------------------------------------------------------

def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, jax.Array))


def _frozen(value: Any) -> Any:
    """A hashable stand-in of static data (lists, dicts, arrays inside extras' static part)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, value.dtype.str, value.tobytes())
    return value


class _Static:
    """The static (non-array) fields of a result: compared and hashed by content, so equal results
    share a treedef (jit caches) while the fields keep their Python types (lists stay lists)."""

    __slots__ = ("fields",)

    def __init__(self, fields: tuple[tuple[str, Any], ...]):
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and _frozen(self.fields) == _frozen(other.fields)

    def __hash__(self) -> int:
        return hash(_frozen(self.fields))


def _register(cls: type, leaves: tuple[str, ...]) -> type:
    """Register a result dataclass as a pytree: ``leaves`` (array fields) and the array values of
    ``extras`` are children; every other field is static."""
    names = [f.name for f in dataclasses.fields(cls)]
    static = tuple(n for n in names if n not in leaves and n != "extras")
    has_extras = "extras" in names

    def flatten(result):
        extras = result.extras if has_extras else {}
        array_keys = tuple(k for k, v in extras.items() if _is_array(v))
        rest = {k: v for k, v in extras.items() if k not in array_keys}
        fields = tuple((n, getattr(result, n)) for n in static) + ((("extras", rest),) if has_extras else ())
        children = tuple(getattr(result, n) for n in leaves) + tuple(extras[k] for k in array_keys)
        return children, _Static(fields + (("__extras_arrays__", array_keys),))

    def unflatten(aux: _Static, children):
        fields = dict(aux.fields)
        array_keys = fields.pop("__extras_arrays__")
        fields.update(zip(leaves, children[: len(leaves)], strict=True))
        if has_extras:
            fields["extras"] = {**fields["extras"],
                                **dict(zip(array_keys, children[len(leaves):], strict=True))}
        return cls(**fields)

    jax.tree_util.register_pytree_node(cls, flatten, unflatten)
    return cls


def result_pytree(*leaves: str) -> Callable[[type], type]:
    """Class decorator: ``_register(cls, leaves)``."""
    return lambda cls: _register(cls, leaves)


# --- word aggregation ----------------------------------------------------------------------------

def word_groups(
    tokens: list[str], word_ids: np.ndarray, words: list[str], special: np.ndarray,
    drop_special: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Labels of the word-level axis and ``i32[n]`` group per token (-1 = dropped).

    With ``drop_special=False`` each special token ([CLS], [SEP]) is a group of its own, in
    token order among the words.
    """
    if drop_special:
        return list(words), np.asarray(word_ids, np.int32)
    labels: list[str] = []
    groups = np.full(len(tokens), -1, np.int32)
    seen: dict[int, int] = {}
    for t, (w, is_special) in enumerate(zip(word_ids, special, strict=True)):
        if is_special:
            groups[t] = len(labels)
            labels.append(tokens[t])
        elif w >= 0:
            if w not in seen:
                seen[w] = len(labels)
                labels.append(words[w])
            groups[t] = seen[w]
    return labels, groups


# --- the results ---------------------------------------------------------------------------------

@result_pytree("relevance", "word_ids_a", "word_ids_b", "special_a", "special_b")
@dataclasses.dataclass(frozen=True)
class PairExplanation(Explanation):
    """Token-pair relevance for one text pair.

    relevance: f64[n_a, n_b] raw; ``relevance.sum()`` is what the similarity decomposes into
    (exactly the similarity for BiLRP on a bias-free model). tokens_*: word pieces incl. specials.
    """

    method: str
    model: str
    tokens_a: list[str]
    tokens_b: list[str]
    relevance: np.ndarray
    similarity: float
    similarity_kind: str
    pooling: str
    words_a: list[str]
    words_b: list[str]
    word_ids_a: np.ndarray
    word_ids_b: np.ndarray
    special_a: np.ndarray
    special_b: np.ndarray
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_encodings(
        cls, *, method: str, model: str, a: Encoded, b: Encoded, relevance: np.ndarray,
        similarity: float, similarity_kind: str, pooling: str, extras: dict | None = None,
    ) -> PairExplanation:
        extras = dict(extras or {})
        if a.prompt or b.prompt:  # the prompts' pieces are tokens of R, words of no text
            extras.update(prompt_a=a.prompt, prompt_b=b.prompt)
        return cls(
            method=method, model=model, tokens_a=a.tokens, tokens_b=b.tokens,
            relevance=np.asarray(relevance), similarity=similarity,
            similarity_kind=similarity_kind, pooling=pooling, words_a=a.words, words_b=b.words,
            word_ids_a=a.word_ids, word_ids_b=b.word_ids, special_a=a.special,
            special_b=b.special, extras=extras,
        )

    @property
    def sum_relevance(self) -> float:
        return float(self.relevance.sum())

    def word_relevance(self, drop_special: bool = True) -> tuple[list[str], list[str], np.ndarray]:
        """Relevance summed over word pieces: (labels_a, labels_b, f64[w_a, w_b])."""
        labels_a, groups_a = word_groups(self.tokens_a, self.word_ids_a, self.words_a,
                                         self.special_a, drop_special)
        labels_b, groups_b = word_groups(self.tokens_b, self.word_ids_b, self.words_b,
                                         self.special_b, drop_special)
        rows = aggregate(self.relevance, groups_a, len(labels_a), axis=0)
        return labels_a, labels_b, aggregate(rows, groups_b, len(labels_b), axis=1)

    def top_pairs(self, k: int = 10, level: str = "word") -> list[tuple[str, str, float]]:
        """The k pairs with the largest |relevance| (signed values), word or token level."""
        if level == "word":
            labels_a, labels_b, matrix = self.word_relevance()
        elif level == "token":
            labels_a, labels_b, matrix = self.tokens_a, self.tokens_b, self.relevance
        else:
            raise OptionError(f"level must be 'word' or 'token', got {level!r}")
        flat = np.argsort(-np.abs(matrix), axis=None)[:k]
        return [(labels_a[i], labels_b[j], float(matrix[i, j]))
                for i, j in zip(*np.unravel_index(flat, matrix.shape), strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON contract (see README): raw relevance as a list of rows."""
        words_a, words_b, word_matrix = self.word_relevance()
        out = {
            "method": self.method,
            "model": self.model,
            "tokens_a": list(self.tokens_a),
            "tokens_b": list(self.tokens_b),
            "relevance": self.relevance.tolist(),
            "similarity": self.similarity,
            "sum_relevance": self.sum_relevance,
            "words_a": words_a,
            "words_b": words_b,
            "word_relevance": word_matrix.tolist(),
        }
        out.update({k: v for k, v in self.extras.items() if k in ("word_pairs", "prompt_a", "prompt_b")})
        return out


@result_pytree("token_saliency_a", "token_saliency_b", "word_saliency_a", "word_saliency_b")
@dataclasses.dataclass(frozen=True)
class WordPairExplanation(Explanation):
    """Word saliencies of both texts and the selected matched word pairs (BTI and baselines).

    token_saliency_*: f32[n] per word piece (special tokens 0); word_saliency_*: f32[w].
    word_pairs: [{"word_a", "word_b", "score", "cosine", "saliency_a", "saliency_b"}], ranked.
    all_pairs: every matched pair before MeanShift selection, same format.
    """

    method: str
    model: str
    tokens_a: list[str]
    tokens_b: list[str]
    similarity: float
    words_a: list[str]
    words_b: list[str]
    token_saliency_a: np.ndarray
    token_saliency_b: np.ndarray
    word_saliency_a: np.ndarray
    word_saliency_b: np.ndarray
    word_pairs: list[dict[str, Any]]
    all_pairs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The BiLRP JSON keys that apply, plus ``word_pairs`` and the saliencies."""
        return {
            "method": self.method, "model": self.model,
            "tokens_a": list(self.tokens_a), "tokens_b": list(self.tokens_b),
            "similarity": self.similarity, "words_a": list(self.words_a),
            "words_b": list(self.words_b), "word_pairs": self.word_pairs,
            "token_saliency_a": self.token_saliency_a.tolist(),
            "token_saliency_b": self.token_saliency_b.tolist(),
            "word_saliency_a": self.word_saliency_a.tolist(),
            "word_saliency_b": self.word_saliency_b.tolist(),
        }


@result_pytree("segment", "scores", "signed", "word_ids", "special", "logits")
@dataclasses.dataclass(frozen=True)
class TokenExplanation(Explanation):
    """Token attributions for one sentence pair under a classifier.

    tokens: the word pieces of ``[CLS] a [SEP] b [SEP]``; segment: i32[n] 0 (a), 1 (b), -1
    (specials); scores: f32[n] per-token scores as the method defines them (all ≥ 0);
    signed: f32[n] signed per-token sums (see module doc); word_ids index ``words`` (a's then b's).
    """

    method: str
    model: str
    tokens: list[str]
    segment: np.ndarray
    scores: np.ndarray
    signed: np.ndarray
    words: list[str]
    word_ids: np.ndarray
    special: np.ndarray
    labels: tuple[str, ...]
    logits: np.ndarray
    target: int
    output: str
    explained_value: float
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def probabilities(self) -> np.ndarray:
        e = np.exp(self.logits - self.logits.max())
        return e / e.sum()

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))

    @property
    def target_label(self) -> str:
        return self.labels[self.target]

    def word_scores(self, how: str | None = None) -> tuple[list[str], np.ndarray]:
        """Scores aggregated over each word's pieces (sum, or max for GS; specials dropped)."""
        how = how or WORD_AGGREGATION.get(self.method, "sum")
        return list(self.words), aggregate(self.scores, self.word_ids, len(self.words), reduce=how)

    def top_words(self, k: int = 8) -> list[tuple[str, str, float]]:
        """``[(side, word, score)]`` with the k largest word scores; side "a" or "b"."""
        words, values = self.word_scores()
        sides = np.full(len(words), "a", dtype=object)
        for t, w in enumerate(self.word_ids):
            if w >= 0:
                sides[w] = "a" if self.segment[t] == 0 else "b"
        order = np.argsort(-values, kind="stable")[:k]
        return [(str(sides[i]), words[i], float(values[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of first-order methods (README)."""
        words, word_values = self.word_scores()
        return {
            "method": self.method, "model": self.model, "labels": list(self.labels),
            "logits": self.logits.tolist(), "probabilities": self.probabilities.tolist(),
            "predicted": self.labels[self.predicted], "target": self.target_label,
            "explained": self.output, "explained_value": self.explained_value,
            "tokens": list(self.tokens), "segment": self.segment.tolist(),
            "scores": self.scores.tolist(), "signed": self.signed.tolist(),
            "sum_signed": float(self.signed.sum()), "words": words,
            "word_scores": word_values.tolist(),
        }


@result_pytree("segment", "scores", "signed", "word_ids", "special", "logits")
@dataclasses.dataclass(frozen=True)
class GroupExplanation(TokenExplanation):
    """A ``TokenExplanation`` whose ``scores`` are GMASK θ (Eq. 8) on the selected pieces, 0
    elsewhere (``method="gmask"``), or IMASK keep probabilities (``"imask"``); ``signed`` equals
    ``scores``. ``explained_value`` is p(ŷ). Extras: ``ranking`` (content positions, best first),
    ``groups`` i32[n] most probable group of each selected piece (-1 otherwise), ``group_probs``
    f32[G] (ψ), ``token_group_probs`` f32[n, G], ``imask`` f32[n], ``losses``."""

    @property
    def ranking(self) -> np.ndarray:
        return np.asarray(self.extras["ranking"])

    @property
    def groups(self) -> np.ndarray:
        return np.asarray(self.extras["groups"])

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({
            "ranking": self.ranking.tolist(), "groups": self.groups.tolist(),
            "group_probs": np.asarray(self.extras["group_probs"]).tolist(),
            "imask": np.asarray(self.extras["imask"]).tolist(),
            "settings": self.extras.get("settings", {}),
        })
        return out


# --- search results ------------------------------------------------------------------------------

@result_pytree("explanation")
@dataclasses.dataclass(frozen=True)
class SearchHit:
    """One document a search returned: ``rank`` (1 = best), the document's ``id``, ``text`` and
    ``row`` (its line/row in the indexed file), ``score`` (the model's similarity to the query,
    as ranked), and, when the search explained it, ``explanation``: the BiLRP
    ``PairExplanation`` of (a = query, b = document)."""

    rank: int
    id: Any
    row: int
    text: str
    score: float
    explanation: PairExplanation | None = None

    def _explained(self) -> PairExplanation:
        if self.explanation is None:
            raise OptionError("this hit was not explained: search with explain=True (--explain)")
        return self.explanation

    def top_pairs(self, k: int = 10, level: str = "word") -> list[tuple[str, str, float]]:
        """The explanation's top (query word, document word, relevance) pairs."""
        return self._explained().top_pairs(k, level)

    def show(self, k: int | None = None) -> str:
        return self._explained().show(k)

    def to_html(self) -> str:
        return self._explained().to_html()

    def to_dict(self) -> dict[str, Any]:
        """``rank``, ``id``, ``text``, ``score`` and, when explained, the keys of
        ``PairExplanation.to_dict`` (a = query, b = document)."""
        out = {"rank": self.rank, "id": self.id, "text": self.text, "score": self.score}
        if self.explanation is not None:
            out.update(self.explanation.to_dict())
        return out


@result_pytree("hits")
@dataclasses.dataclass(frozen=True)
class SearchResult(Explanation):
    """The ranked hits of one query over an index (``jaxsim.Index.search``): iterate it, index
    it, or read ``hits``. ``similarity_kind``: ``cosine`` or ``dot``, what ``score`` is and what
    the explanations decompose."""

    query: str
    model: str
    similarity_kind: str
    pooling: str
    hits: list[SearchHit]
    documents: int = 0

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)

    def __getitem__(self, i: int) -> SearchHit:
        return self.hits[i]

    @property
    def explained(self) -> bool:
        return any(h.explanation is not None for h in self.hits)

    def to_dict(self) -> dict[str, Any]:
        """``{"query", "model", "similarity_kind", "pooling", "hits": [SearchHit.to_dict()]}``."""
        return {"query": self.query, "model": self.model, "similarity_kind": self.similarity_kind,
                "pooling": self.pooling, "hits": [h.to_dict() for h in self.hits]}

    def save_png(self, path: str | Path, kind: str = "both") -> Path:
        raise OptionError("a search result has no figure: save one hit's, "
                          "result[0].explanation.save_png(path)")
