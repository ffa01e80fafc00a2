"""``jaxsim.Index``: open an index, search it, explain every hit from the stored factors.

A search embeds the query and, to explain, computes its BiLRP factor ``r(q): f32[h, n_q]`` once
(``bilrp.text_relevances``); ranks every document by the model's similarity with one jitted,
sharded matmul (``jaxsim.index.topk``); then forms each hit's token-pair relevance from the
stored ``r(d)`` in float64 on the host, ``R = r(q)ᵀ r(d)`` (``bilrp.pair_relevance``).

Scaling. With ``similarity == "cosine"`` (the model normalises) the explained quantity is the
cosine ``φ(q)·φ(d) / (‖φ(q)‖ ‖φ(d)‖)``, and ``R = r(q)ᵀ r(d) / (‖φ(q)‖ ‖φ(d)‖)``: the norms are
held constant (not differentiated), so R decomposes the dot product of the un-normalised
embeddings scaled by the same factor that turns that dot product into the cosine, and
``sum_relevance = R.sum()`` relates to the cosine exactly as the un-normalised sum relates to the
dot product. With ``dot`` nothing is scaled. This is ``jaxsim explain --similarity cosine`` (or
``dot``) on the same pair.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxsim.corpus import integrity, shards
from jaxsim.errors import JaxsimError
from jaxsim.explain import bilrp
from jaxsim.explain.result import PairExplanation, SearchHit, SearchResult
from jaxsim.index import store, topk
from jaxsim.index.build import embed_encoded
from jaxsim.models.placement import data_mesh
from jaxsim.text import Encoded, TruncationWarning

if TYPE_CHECKING:
    from jaxsim.model import Model

#: Queries pad to fine length classes (multiples of 4 tokens up to 64): ~1.6x less work than the
#: 16/32/64 buckets for a short query, at one compilation per class met.
QUERY_LENGTH_CLASSES = "fine"


def stored_encoding(record: dict[str, Any]) -> Encoded:
    """The ``Encoded`` of a document from its ``docs.jsonl`` record (``build.doc_record``)."""
    n = len(record["ids"])
    special = np.zeros(n, bool)
    special[record["special"]] = True
    return Encoded(text=record["text"], ids=np.asarray(record["ids"], np.int32),
                   type_ids=np.zeros(n, np.int32), tokens=list(record["tokens"]), special=special,
                   word_ids=np.asarray(record["word_ids"], np.int32), words=list(record["words"]),
                   truncated=bool(record.get("truncated", False)))


def _load_model(record: dict[str, Any], weights_dir) -> Model:
    """The model an index recorded, from its folder if it is still there, else by name; it
    keeps the recorded name (``check_model`` then compares fingerprints, not names)."""
    from jaxsim.model import load_model

    where = record.get("model_path")
    source = where if where and Path(where).is_dir() else record["model"]
    model = load_model(source, pooling=record["pooling"], weights_dir=weights_dir)
    return dataclasses.replace(model, name=record["model"])


def check_model(path: Path, record: dict[str, Any], model: Model) -> None:
    """Refuse a model other than the one the index was built with, naming both."""
    parts = integrity.model_changes(record.get("model_fingerprint"), integrity.model_fingerprint(model))
    if model.pooling != record["pooling"]:
        parts.append(f"pooling ({model.pooling}, the index has {record['pooling']})")
    if parts:
        built = record.get("model_path") or record["model"]
        raise JaxsimError(
            f"the index {path} was built with the model {record['model']!r}, not {model.name!r} "
            f"(the {' and the '.join(parts)} differ): search it with --model {built}, or build an "
            "index with this model")


class Shard:
    """One committed shard, opened: its arrays memory-mapped, its documents read on demand."""

    def __init__(self, path: Path, entry: dict[str, Any], start: int):
        files = entry["files"]
        self.start = start
        self.docs = entry["docs"]
        self.emb = np.load(path / files["emb"]["file"], allow_pickle=False)
        self.offsets = np.load(path / files["offsets"]["file"], allow_pickle=False)
        self.factors = (np.load(path / files["factors"]["file"], mmap_mode="r", allow_pickle=False)
                        if "factors" in files else None)
        self._docs_path = path / files["docs"]["file"]
        self._lines: list[bytes] | None = None

    def record(self, j: int) -> dict[str, Any]:
        if self._lines is None:
            self._lines = self._docs_path.read_bytes().split(b"\n")
        return json.loads(self._lines[j])

    def factor(self, j: int) -> np.ndarray | None:
        """Document j's ``r(d): f32[h, n]`` (None without stored factors)."""
        if self.factors is None:
            return None
        return np.asarray(self.factors[self.offsets[j]:self.offsets[j + 1]], np.float32).T


class Index:
    """A search index of embeddings and BiLRP factors (``Index.build`` / ``Index.open``)."""

    def __init__(self, path: Path, record: dict[str, Any], model: Model, devices=None):
        self.path = path
        self.record = record
        self.model = model
        self.similarity: str = record["similarity"]
        self.shards: list[Shard] = []
        start = 0
        for entry in record["shards"]:
            self.shards.append(Shard(path, entry, start))
            start += entry["docs"]
        self._starts = np.asarray([s.start for s in self.shards], np.int64)
        h = record["hidden_size"]
        #: f32[N, h] the documents' pooled embeddings φ(d), not normalised
        self.embeddings = (np.concatenate([s.emb for s in self.shards]) if self.shards
                           else np.zeros((0, h), np.float32))
        rows = topk.unit_rows(self.embeddings) if self.similarity == "cosine" else self.embeddings
        self.placed = topk.place_rows(rows, data_mesh(devices))

    # --- opening and building ---------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, model: Model | None = None, *, devices=None,
             verify: bool = False, weights_dir: str | Path | None = None) -> Index:
        """Open a complete index. model: the one it was built with (default: loaded from the
        path/name it recorded); another model is refused. verify: check every file's sha256 (else
        sizes only). devices: the local devices the embeddings are split over (default all)."""
        path = Path(path)
        record = store.read_index(path)
        if record is None:
            raise JaxsimError(f"{path} holds no jaxsim index: build one with "
                              f"`jaxsim index --input DOCS --out {path}`")
        if not record.get("complete"):
            done = len(shards.finished_shards(path))
            raise JaxsimError(f"the index {path} is half-built ({done} shards committed, not "
                              f"complete): finish it with `jaxsim index --input "
                              f"{record.get('input', 'DOCS')} --out {path} --resume`")
        for entry in record["shards"]:
            problem = store.shard_problem(path, entry, hashes=verify)
            if problem:
                raise JaxsimError(f"the index {path} is damaged: {problem}: run `jaxsim index ... "
                                  f"--out {path} --resume` to redo that shard")
        if model is None:
            model = _load_model(record, weights_dir)
        check_model(path, record, model)
        return cls(path, record, model, devices)

    @classmethod
    def build(cls, model: Model | str | None, docs, path: str | Path, *, devices=None,
              **options) -> Index:
        """Build an index of ``docs`` at ``path`` (``jaxsim.index.build.build``: factors,
        shard_size, resume, truncate, similarity, ...) and open it."""
        from jaxsim.index.build import build

        options.setdefault("progress", False)
        summary = build(docs, path, model=model, devices=devices, **options)
        if summary.record is None:  # another process of a multi-host build
            raise JaxsimError("only process 0 of a multi-host build opens the index")
        loaded = model if not isinstance(model, str | None) else None
        return cls.open(path, loaded, devices=devices, weights_dir=options.get("weights_dir"))

    # --- documents -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def factors(self) -> str:
        return self.record["factors"]

    def _locate(self, i: int) -> tuple[Shard, int]:
        s = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.shards[s], i - self.shards[s].start

    def document(self, i: int) -> dict[str, Any]:
        """Document ``i`` (0-based over the index) as stored: row, id, text (+ tokens)."""
        if not 0 <= i < len(self):
            raise JaxsimError(f"document {i} is not in the index (it has {len(self)})")
        shard, j = self._locate(i)
        return shard.record(j)

    def factor(self, i: int) -> np.ndarray | None:
        """Document ``i``'s stored ``r(d): f32[h, n]`` (None: built with ``--factors none``)."""
        shard, j = self._locate(i)
        return shard.factor(j)

    # --- search ----------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, explain: bool = False) -> SearchResult:
        """The ``k`` documents most similar to ``query`` (exact), each explained if asked."""
        return self.search_many([query], k, explain)[0]

    def search_many(self, queries: Sequence[str], k: int = 10,
                    explain: bool = False) -> list[SearchResult]:
        """``search`` for many queries: their factors in one batched call, one ranking matmul."""
        if isinstance(queries, str):
            queries = [queries]
        if k < 1:
            raise JaxsimError(f"k must be >= 1, got {k}")
        what = ["query"] if len(queries) == 1 else [f"query {i + 1}" for i in range(len(queries))]
        encoded = [self.model.tokenizer.encode(q, w) for q, w in zip(queries, what, strict=True)]
        if explain:
            factors = bilrp.text_relevances(
                self.model, encoded, method="bilrp", mode=self.record["options"]["mode"],
                batch_size=min(len(encoded), 8), length_classes=QUERY_LENGTH_CLASSES)
            phis = np.stack([phi for _, phi in factors])
        else:
            factors = None
            phis = np.stack(embed_encoded(self.model, encoded, batch_size=min(len(encoded), 32)))
        ranked = topk.unit_rows(phis) if self.similarity == "cosine" else phis
        scores, rows = topk.top_k(self.placed, ranked, k)
        return [self._result(q, encoded[n], factors[n] if factors else None, phis[n],
                             scores[n], rows[n]) for n, q in enumerate(queries)]

    def _result(self, query: str, encoded: Encoded, factor, phi: np.ndarray, scores: np.ndarray,
                rows: np.ndarray) -> SearchResult:
        records = [self.document(int(i)) for i in rows]
        explanations: list[PairExplanation | None] = [None] * len(records)
        if factor is not None:
            explanations = self.explain_hits(encoded, factor, rows, records)
        hits = [SearchHit(rank=r + 1, id=rec["id"], row=rec["row"], text=rec["text"],
                          score=float(s), explanation=e)
                for r, (rec, s, e) in enumerate(zip(records, scores, explanations, strict=True))]
        return SearchResult(query=query, model=self.model.name, similarity_kind=self.similarity,
                            pooling=self.model.pooling, hits=hits, documents=len(self))

    def explain_hits(self, query: Encoded, factor: tuple[np.ndarray, np.ndarray], rows,
                     records: list[dict[str, Any]]) -> list[PairExplanation]:
        """Each hit's ``PairExplanation`` (a = query, b = document) from the query's
        ``(r(q), φ(q))`` and the stored ``r(d)``, ``φ(d)``; an index without factors computes
        r(d) of its hits now."""
        r_q, phi_q = factor
        stored = [self.factor(int(i)) for i in rows]
        if any(r is None for r in stored):
            with warnings.catch_warnings():  # the build decided about truncation already
                warnings.simplefilter("ignore", TruncationWarning)
                docs = [self.model.tokenizer.encode(rec["text"]) for rec in records]
            fresh = bilrp.text_relevances(self.model, docs, method="bilrp",
                                          mode=self.record["options"]["mode"],
                                          batch_size=min(len(docs), 8))
            stored = [r for r, _ in fresh]
        else:
            docs = [stored_encoding(rec) for rec in records]
        out = []
        for i, r_d, doc in zip(rows, stored, docs, strict=True):
            relevance, score = bilrp.pair_relevance("bilrp", r_q, r_d, phi_q,
                                                    self.embeddings[int(i)], self.similarity)
            out.append(PairExplanation.from_encodings(
                method="bilrp", model=self.model.name, a=query, b=doc, relevance=relevance,
                similarity=score, similarity_kind=self.similarity, pooling=self.model.pooling))
        return out

    def __repr__(self) -> str:
        return (f"Index({str(self.path)!r}, {len(self)} documents, model {self.model.name!r}, "
                f"{self.similarity}, factors {self.factors})")
