"""The explanations of one input shard: tokenise and check its rows, compute each distinct
text's relevance once in length-bucketed batches split over the mesh, combine pairs on host.

Token-pair methods: ``r f32[h, n]`` (``token_relevance``; ``embedding``: ``E f32[n, d]``) per
text on the devices, then ``R = r_a^T r_b`` per pair in float64 on the host
(``bilrp.pair_relevance``), exactly as ``jaxsim.explain.bilrp.explain_pairs``. Batches have a
fixed row count (a multiple of the device count; short batches padded with empty rows) and a
bucketed length, so each bucket compiles once per run. Word-pair methods (bti and variants)
call ``jaxsim.explain.bti.explain_pairs`` on the shard's good pairs (on the default device).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
from jax.sharding import Mesh

from jaxsim.corpus.io import BadRow, Pair, Row
from jaxsim.corpus.sharding import replicate, shard_rows
from jaxsim.errors import InputTextError, JaxsimError
from jaxsim.explain import bilrp, bti
from jaxsim.explain.result import PairExplanation
from jaxsim.explain.rules import composite
from jaxsim.models import embedding_outputs, pooled_embeddings
from jaxsim.text import Encoded, TruncationWarning, batches_by_bucket


@dataclasses.dataclass(frozen=True)
class Placed:
    """A model's params and pool params replicated over ``mesh``."""

    mesh: Mesh
    params: dict
    pool_params: dict | None


def encode_checked(model, text: str, truncate: bool, need_content: bool
                   ) -> Encoded | tuple[str, str]:
    """Tokenise one text, or say why not as ``(reason, detail)``: ``empty``, ``too_long``
    (unless ``truncate``) or ``no_content`` (only special tokens, for methods that need content)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            enc = model.tokenizer.encode(text)
    except InputTextError:
        return "empty", "empty or whitespace-only"
    if enc.truncated and not truncate:
        return "too_long", (f"more than {model.tokenizer.max_length} tokens (the model maximum); "
                            "pass --truncate to cut it instead")
    if need_content and not (~enc.special).any():
        return "no_content", "no content tokens to explain"
    return enc


def check_rows(model, rows: Sequence[Row], truncate: bool, need_content: bool
               ) -> tuple[list[Pair], dict[str, Encoded], list[BadRow]]:
    """Split a shard's rows into good pairs (every distinct text encoded once) and bad rows."""
    encoded: dict[str, Encoded | tuple[str, str]] = {}
    good, bad = [], []
    for row in rows:
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        problems = []
        for side, text in (("a", row.text_a), ("b", row.text_b)):
            if text not in encoded:
                encoded[text] = encode_checked(model, text, truncate, need_content)
            if isinstance(encoded[text], tuple):
                problems.append((side, *encoded[text]))
        if problems:
            side, reason, detail = problems[0]
            bad.append(BadRow(row.row, reason, f"text {side}: {detail}"))
        else:
            good.append(row)
    return good, {t: e for t, e in encoded.items() if isinstance(e, Encoded)}, bad


def text_relevances(model, placed: Placed, encoded: Sequence[Encoded], *, method: str, mode: str,
                    batch_size: int, explain_input: str = "embedding"
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: (r f32[h, n], or E f32[n, d] for ``embedding``; phi f32[h]).

    All batches are dispatched before any result is read, so host-side padding and transfers
    overlap device compute.
    """
    h = model.config.hidden_size
    pending = []
    for idx, batch in batches_by_bucket(encoded, batch_size, model.tokenizer.max_length,
                                        model.tokenizer.pad_token_id):
        ids, types, mask = shard_rows(batch, placed.mesh)
        length = ids.shape[1]
        if method == "embedding":
            values = embedding_outputs(placed.params, ids, types, config=model.config)
            phis = pooled_embeddings(placed.params, placed.pool_params, ids, types, mask,
                                     config=model.config, pooling=model.pooling)
        else:
            run_mode = bilrp.resolve_mode(mode, length, h)
            values, phis = bilrp.token_relevance(
                placed.params, placed.pool_params, ids, types, mask, config=model.config,
                pooling=model.pooling, ops=composite(bilrp.COMPOSITE[method]),
                mode=run_mode, chunk_size=bilrp.default_chunk_size(run_mode, length, h),
                explain_input=explain_input,
            )
        pending.append((idx, values, phis))
    out: list = [None] * len(encoded)
    for idx, values, phis in pending:
        values, phis = np.asarray(values), np.asarray(phis)
        for row, i in enumerate(idx):
            n = len(encoded[i])
            out[i] = (values[row, :n] if method == "embedding" else values[row, :, :n], phis[row])
    return out


def explain_token_pairs(model, placed: Placed, pairs: Sequence[Pair], encoded: dict[str, Encoded],
                        *, method: str, similarity: str, mode: str, batch_size: int,
                        explain_input: str = "embedding") -> list[PairExplanation]:
    """``PairExplanation`` per pair (bilrp, hxp, embedding), each text's relevance computed once."""
    texts = list(encoded)
    rels = dict(zip(texts, text_relevances(model, placed, [encoded[t] for t in texts],
                                           method=method, mode=mode, batch_size=batch_size,
                                           explain_input=explain_input), strict=True))
    results = []
    for pair in pairs:
        (rel_a, phi_a), (rel_b, phi_b) = rels[pair.text_a], rels[pair.text_b]
        relevance, score = bilrp.pair_relevance(method, rel_a, rel_b, phi_a, phi_b, similarity)
        results.append(PairExplanation.from_encodings(
            method=method, model=model.name, a=encoded[pair.text_a], b=encoded[pair.text_b],
            relevance=relevance, similarity=score, similarity_kind=similarity,
            pooling=model.pooling,
        ))
    return results


def explain_shard(model, placed: Placed, pairs: Sequence[Pair], encoded: dict[str, Encoded], *,
                  method: str, options: dict, batch_size: int) -> list:
    """Explanations of a shard's good pairs, in order, for any corpus method."""
    if not pairs:
        return []
    if method in bilrp.METHODS:
        return explain_token_pairs(model, placed, pairs, encoded, method=method,
                                   batch_size=batch_size, **options)
    if method in bti.METHODS:
        with warnings.catch_warnings():  # lengths were checked by check_rows
            warnings.simplefilter("ignore", TruncationWarning)
            return bti.explain_pairs(model, [(p.text_a, p.text_b) for p in pairs], method=method,
                                     batch_size=batch_size, **options)
    raise JaxsimError(f"unknown corpus method {method!r}: choose one of "
                      f"{', '.join(bilrp.METHODS + bti.METHODS)}")


def place(model, mesh: Mesh) -> Placed:
    """Replicate the model's params over ``mesh`` once per run."""
    params, pool_params = replicate((model.params, model.pool_params), mesh)
    return Placed(mesh, params, pool_params)
