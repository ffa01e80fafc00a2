"""Explanation results: registered pytrees (tree_map, jit, orbax round trips) and the README
pair's JSON held against golden files written before the results moved to ``explain/result.py``."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import jaxsim
from jaxsim.explain import explain_pair
from jaxsim.explain.result import (
    GroupExplanation,
    PairExplanation,
    TokenExplanation,
    WordPairExplanation,
)

GOLDEN = Path(__file__).parent / "golden"
README_PAIR = ("A man is playing a guitar.", "A person plays an instrument.")


@pytest.fixture(scope="module")
def results(tiny_bert, tiny_bert_classifier_dir, weights_dir):
    clf = jaxsim.load_classifier(tiny_bert_classifier_dir, weights_dir=weights_dir)
    a, b = README_PAIR
    return {
        PairExplanation: tiny_bert.explain(a, b),
        WordPairExplanation: tiny_bert.explain(a, b, method="bti"),
        TokenExplanation: clf.explain(a, b, method="lrp"),
        GroupExplanation: explain_pair(clf, a, b, method="gmask", samples=8, steps=3),
    }


def _same(x, y) -> None:
    assert type(x) is type(y)
    assert x.to_json() == y.to_json()


@pytest.mark.parametrize("kind", [PairExplanation, WordPairExplanation, TokenExplanation, GroupExplanation],
                         ids=lambda k: k.__name__)
def test_every_result_round_trips_through_tree_map_with_arrays_as_leaves(results, kind):
    result = results[kind]
    assert type(result) is kind
    leaves = jax.tree_util.tree_leaves(result)
    assert leaves and all(isinstance(leaf, np.ndarray) for leaf in leaves)
    _same(jax.tree_util.tree_map(lambda x: x, result), result)
    doubled = jax.tree_util.tree_map(lambda x: x * 2 if x.dtype.kind == "f" else x, result)
    first = next(leaf for leaf in jax.tree_util.tree_leaves(result) if leaf.dtype.kind == "f")
    np.testing.assert_array_equal(
        next(leaf for leaf in jax.tree_util.tree_leaves(doubled) if leaf.dtype.kind == "f"), 2 * first)


@pytest.mark.parametrize("kind", [PairExplanation, TokenExplanation], ids=lambda k: k.__name__)
def test_results_cross_a_jit_boundary(results, kind):
    result = results[kind]
    through = jax.jit(lambda r: r)(result)
    assert type(through) is kind
    assert jax.tree_util.tree_structure(through) == jax.tree_util.tree_structure(result)
    for got, want in zip(jax.tree_util.tree_leaves(through), jax.tree_util.tree_leaves(result), strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)  # f64 leaves come back as f32


def test_a_result_saves_and_restores_with_orbax(results, tmp_path):
    result = results[PairExplanation]
    path = tmp_path / "result"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, result)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, target=result)
    _same(restored, result)


@pytest.mark.parametrize("method", ["bilrp", "hxp", "bti"])
def test_readme_pair_json_equals_the_golden_file_written_before_the_refactor(minilm, method):
    """Golden files: ``jaxsim explain --format json`` of the README pair on the embedded MiniLM at
    the commit before the tidy-up. Strings equal exactly; numbers to float round-off."""
    got = json.loads(minilm.explain(*README_PAIR, method=method).to_json())
    want = json.loads((GOLDEN / f"readme_pair_{method}.json").read_text(encoding="utf-8"))

    def compare(g, w, where: str) -> None:
        assert type(g) is type(w) or {type(g), type(w)} <= {int, float}, where
        if isinstance(w, dict):
            assert list(g) == list(w), where
            for key in w:
                compare(g[key], w[key], f"{where}.{key}")
        elif isinstance(w, list):
            assert len(g) == len(w), where
            for i, (x, y) in enumerate(zip(g, w, strict=True)):
                compare(x, y, f"{where}[{i}]")
        elif isinstance(w, float):
            assert g == pytest.approx(w, rel=1e-6, abs=1e-9), where
        else:
            assert g == w, where

    compare(got, want, method)
