"""The search results page: ranked hits with the document words shaded by their relevance to the
query, each hit's word matrix and line view on click, and a contrastive view of two hits.

Page data (``kind: "search"``, drawn by ``assets/search.js`` with the renderers of
``assets/jaxsim.js``)::

    {"kind": "search", "title", "meta", "notes",
     "queries": [{"query", "words": [query words] | None, "explained", "similarity_kind",
                  "hits": [{"rank", "id", "text", "score", "words": [document words] | None,
                            "doc_relevance": [per document word], "query_relevance": [per query
                            word], "query_special", "sum_relevance", "similarity",
                            "view": pair page data (``html.pair_data``) | None}]}]}

``doc_relevance[j]`` is R summed over every query token (special tokens included) and document
word j's pieces; ``query_relevance[i]`` is R summed over every document token and query word i's
pieces, ``query_special`` the rows of the query's special tokens; so for each hit
``sum(query_relevance) + query_special == sum_relevance``, and the contrastive bars of hits A and
B, ``query_relevance(A) - query_relevance(B)``, add up to ``sum_relevance(A) - sum_relevance(B)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxsim.explain.result import SearchHit, SearchResult
from jaxsim.text import aggregate
from jaxsim.viz.html import Data, page, pair_data


def hit_data(hit: SearchHit) -> Data:
    """One hit's entry: its text and score, and (when explained) its relevance marginals and
    pair view."""
    out: dict[str, Any] = {"rank": hit.rank, "id": hit.id, "text": hit.text, "score": hit.score,
                           "words": None, "view": None}
    e = hit.explanation
    if e is None:
        return out
    rows, columns = e.relevance.sum(1), e.relevance.sum(0)  # f64[n_q], f64[n_d]
    view = pair_data(e)
    view["title"] = f"hit {hit.rank}: {hit.text}"
    out.update(
        words=list(e.words_b),
        doc_relevance=aggregate(columns, np.asarray(e.word_ids_b), len(e.words_b)).tolist(),
        query_relevance=aggregate(rows, np.asarray(e.word_ids_a), len(e.words_a)).tolist(),
        query_special=float(rows[np.asarray(e.special_a, bool)].sum()),
        sum_relevance=e.sum_relevance, similarity=e.similarity, view=view,
    )
    return out


def query_data(result: SearchResult) -> Data:
    explained = [h for h in result.hits if h.explanation is not None]
    return {"query": result.query, "similarity_kind": result.similarity_kind,
            "explained": bool(explained),
            "words": list(explained[0].explanation.words_a) if explained else None,
            "hits": [hit_data(h) for h in result.hits]}


def search_data(results: Sequence[SearchResult]) -> Data:
    """Page data of one or more searches over the same index."""
    if not results:
        from jaxsim.errors import JaxsimError

        raise JaxsimError("no search results to draw: pass at least one query")
    first = results[0]
    meta = [["model", first.model], ["pooling", first.pooling],
            ["similarity", first.similarity_kind], ["documents", str(first.documents)],
            ["hits per query", str(max(len(r.hits) for r in results))]]
    if len(results) > 1:
        meta.append(["queries", str(len(results))])
    scaled = ("R = r(q)ᵀ r(d) / (‖φ(q)‖ ‖φ(d)‖), the norms held constant"
              if first.similarity_kind == "cosine" else "R = r(q)ᵀ r(d)")
    return {
        "kind": "search", "title": f"search · {first.model}", "meta": meta,
        "queries": [query_data(r) for r in results],
        "notes": [f"Relevance is BiLRP's token-pair relevance between the query and each hit, "
                  f"{scaled}; a document word's shade is its relevance summed over the whole "
                  "query (red: raises the similarity, blue: lowers it). Click a hit for its word "
                  "matrix and line view."],
    }


def search_html(results: Sequence[SearchResult]) -> str:
    """One self-contained page for one or more searches (``search_data``)."""
    return page(search_data(list(results)))
