"""Search explanations: an index of embeddings and BiLRP factors, every hit explained at query
time from the stored factors (``R(q, d) = r(q)ᵀ r(d)``).

``Index.build(model, docs, path)`` (and ``jaxsim index``) stores each document's embedding and
factor in resumable shards; ``Index.open(path).search(query, k, explain=True)`` (and
``jaxsim search``) ranks exactly by the model's similarity and explains each hit. See
docs/guide.md, "Search a collection, then explain the hits".
"""

from jaxsim.explain.result import SearchHit, SearchResult
from jaxsim.index.build import BuildSummary, build
from jaxsim.index.docs import Doc, iter_docs
from jaxsim.index.search import Index

__all__ = ["BuildSummary", "Doc", "Index", "SearchHit", "SearchResult", "build", "iter_docs"]
