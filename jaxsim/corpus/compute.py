"""The explanations of one input shard: tokenise and check its rows, then explain the good pairs.

Token-pair methods go through ``jaxsim.explain.bilrp.explain_encoded_pairs`` with the run's
``Placement`` (params replicated over the data mesh): each distinct text's relevance once, in
length-bucketed batches split over the devices (a fixed row count, a multiple of the device
count, so each bucket compiles once per run), then ``R = r_a^T r_b`` per pair on the host —
the same engine as ``explain_pairs``. Word-pair methods (bti and variants) call
``jaxsim.explain.bti.explain_pairs`` on the shard's good pairs (on the default device).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from jax.sharding import Mesh

from jaxsim.corpus.io import BadRow, Pair, Row
from jaxsim.errors import InputTextError, JaxsimError, NoContentError
from jaxsim.explain import bilrp, bti
from jaxsim.model import Model
from jaxsim.models.placement import Placement, place_params
from jaxsim.text import BatchSize, Encoded, TruncationWarning


def encode_checked(model: Model, text: str, truncate: bool) -> Encoded | tuple[str, str]:
    """Tokenise one text, or say why not as ``(reason, detail)``: ``empty``, ``no_content`` (only
    zero-width, control or U+FFFD characters, or only special tokens: ``NoContentError``) or
    ``too_long`` (unless ``truncate``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            enc = model.tokenizer.encode(text)
    except NoContentError as err:
        return "no_content", str(err)
    except InputTextError:
        return "empty", "empty or whitespace-only"
    if enc.truncated and not truncate:
        return "too_long", (f"more than {model.tokenizer.max_length} tokens (the model maximum); "
                            "pass --truncate to cut it instead")
    return enc


def check_rows(model: Model, rows: Sequence[Row], truncate: bool
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
                encoded[text] = encode_checked(model, text, truncate)
            if isinstance(encoded[text], tuple):
                problems.append((side, *encoded[text]))
        if problems:
            side, reason, detail = problems[0]
            bad.append(BadRow(row.row, reason, f"text {side}: {detail}"))
        else:
            good.append(row)
    return good, {t: e for t, e in encoded.items() if isinstance(e, Encoded)}, bad


def explain_shard(model: Model, placement: Placement | None, pairs: Sequence[Pair],
                  encoded: dict[str, Encoded], *, method: str, options: dict, batch_size: BatchSize,
                  cache: bilrp.FactorCache | None = None) -> list:
    """Explanations of a shard's good pairs, in order, for any corpus method. ``cache``: the
    run's factors, so a text repeated across shards is computed once (token-pair methods)."""
    if not pairs:
        return []
    if method in bilrp.METHODS:
        return bilrp.explain_encoded_pairs(
            model, [(p.text_a, p.text_b) for p in pairs], encoded, method=method,
            batch_size=batch_size, placement=placement, progress=False, cache=cache, **options,
        )
    if method in bti.METHODS:
        with warnings.catch_warnings():  # lengths were checked by check_rows
            warnings.simplefilter("ignore", TruncationWarning)
            return bti.explain_pairs(model, [(p.text_a, p.text_b) for p in pairs], method=method,
                                     batch_size=batch_size, **options)
    raise JaxsimError(f"unknown corpus method {method!r}: choose one of "
                      f"{', '.join(bilrp.METHODS + bti.METHODS)}")


def place(model: Model, mesh: Mesh) -> Placement:
    """Replicate the model's params over ``mesh`` once per run."""
    return place_params(model.params, model.pool_params, mesh)
