"""Explainers: functions of ``(model, inputs, options) -> Result``.

``explain_pair`` / ``explain_pairs`` dispatch on ``method``:

- ``bilrp``: second-order LRP relevance (Vasileiou & Eberle 2024), ``jaxsim.explain.bilrp``;
- ``hxp``: Hessian x product (same computation, plain gradients);
- ``embedding``: ``(E_a E_b^T)^2`` on the embedding outputs.
"""

from __future__ import annotations

from jaxsim.explain.bilrp import METHODS as BILRP_METHODS
from jaxsim.explain.bilrp import explain_pair as _bilrp_pair
from jaxsim.explain.bilrp import explain_pairs as _bilrp_pairs
from jaxsim.explain.result import PairExplanation

METHODS: tuple[str, ...] = BILRP_METHODS


def _unknown(method: str):
    from jaxsim.errors import JaxsimError

    return JaxsimError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")


def explain_pair(model, text_a: str, text_b: str, method: str = "bilrp", **options) -> PairExplanation:
    """Explain why ``model`` finds ``text_a`` and ``text_b`` similar."""
    if method in BILRP_METHODS:
        return _bilrp_pair(model, text_a, text_b, method=method, **options)
    raise _unknown(method)


def explain_pairs(model, pairs, method: str = "bilrp", **options) -> list[PairExplanation]:
    """Explain many pairs in bucketed batches (each distinct text computed once)."""
    if method in BILRP_METHODS:
        return _bilrp_pairs(model, pairs, method=method, **options)
    raise _unknown(method)


__all__ = ["METHODS", "PairExplanation", "explain_pair", "explain_pairs"]
