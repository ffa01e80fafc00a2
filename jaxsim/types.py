"""The two type aliases every module uses: ``Array`` (a ``jax.Array``) and ``Params`` (a params
pytree of nested dicts/tuples of arrays)."""

from __future__ import annotations

import jax

Array = jax.Array
Params = dict

__all__ = ["Array", "Params"]
