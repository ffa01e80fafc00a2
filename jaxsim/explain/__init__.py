"""Explainers: functions of ``(model, inputs, options) -> Result``.

``explain_pair`` / ``explain_pairs`` dispatch on ``method``:

- ``bilrp``: second-order LRP relevance (Vasileiou & Eberle 2024), ``jaxsim.explain.bilrp``;
  ``hxp`` (Hessian x product) and ``embedding`` (``(E_a E_b^T)^2``) baselines
  -> ``PairExplanation`` (token-pair matrix).
- ``bti``: saliency x activation with word matching (Malkiel et al. 2022),
  ``jaxsim.explain.bti``; ablations ``bti_last_layer``, ``bti_activations``,
  ``bti_gradients``; baselines ``vg``, ``ig`` -> ``WordPairExplanation`` (matched word pairs).
- ``gs``, ``gi``, ``lrp``, ``lrp_eps``, ``lrp_ab``, ``lat``, ``lat_mix``: first-order token
  attributions of a pair *classifier* (Wu & Ong 2021), ``jaxsim.explain.first_order``
  -> ``TokenExplanation``.
- ``gmask``, ``imask``: learned word-group masks of a pair *classifier* (Chen et al. 2021),
  ``jaxsim.explain.gmask`` -> ``GroupExplanation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxsim.errors import JaxsimError
from jaxsim.explain import bilrp, bti, first_order, gmask
from jaxsim.explain.bti import WordPairExplanation
from jaxsim.explain.result import PairExplanation

if TYPE_CHECKING:
    from jaxsim.classifier import Classifier
    from jaxsim.model import Model

METHODS: tuple[str, ...] = bilrp.METHODS + bti.METHODS + first_order.METHODS + gmask.METHODS


def _module(method: str):
    if method in bilrp.METHODS:
        return bilrp
    if method in bti.METHODS:
        return bti
    if method in first_order.METHODS:
        return first_order
    if method in gmask.METHODS:
        return gmask
    raise JaxsimError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")


def explain_pair(model: Model | Classifier, text_a: str, text_b: str, method: str = "bilrp", **options):
    """Explain why ``model`` finds ``text_a`` and ``text_b`` similar."""
    return _module(method).explain_pair(model, text_a, text_b, method=method, **options)


def explain_pairs(model: Model | Classifier, pairs, method: str = "bilrp", **options):
    """Explain many pairs in bucketed batches."""
    return _module(method).explain_pairs(model, pairs, method=method, **options)


__all__ = ["METHODS", "PairExplanation", "WordPairExplanation", "explain_pair", "explain_pairs"]
