"""Deletion-curve mechanics, attribution agreement, and (slow) the MRPC fine-tune's curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxsim.evaluate.deletion import (
    attribution_correlation,
    deleted_ids,
    deletion_counts,
    pearson,
    ranking,
)

ROOT = Path(__file__).resolve().parents[1]
MRPC_MODEL = ROOT / "out" / "mrpc-minilm"
MRPC_TEST = ROOT.parent / "shared" / "data" / "mrpc" / "test.tsv"


def test_deletion_counts_rank_and_delete_by_position():
    assert deletion_counts(20, (0, 5, 10, 50, 100), "percent").tolist() == [0, 1, 2, 10, 20]
    assert deletion_counts(3, (0, 1, 2, 5), "tokens").tolist() == [0, 1, 2, 3]
    scores = np.asarray([0.1, 0.9, 0.5, 0.9, 0.0])
    order = ranking(scores, np.arange(5))
    assert order.tolist() == [1, 3, 2, 0, 4]  # ties keep position order
    assert ranking(scores, np.asarray([0, 2, 4])).tolist() == [2, 0, 4]
    rows = deleted_ids(np.asarray([101, 7, 8, 9, 102]), order, np.asarray([0, 1, 3]))
    assert rows.tolist() == [[101, 7, 8, 9, 102], [101, 0, 8, 9, 102], [101, 0, 0, 0, 102]]


def test_attribution_correlation_is_the_mean_pearson_over_pairs():
    a = [np.asarray([1.0, 2.0, 3.0]), np.asarray([0.0, 1.0]), np.asarray([5.0, 5.0])]
    b = [np.asarray([2.0, 4.0, 6.5]), np.asarray([1.0, 0.0]), np.asarray([1.0, 2.0])]
    assert pearson(a[0], a[0]) == pytest.approx(1.0)
    assert np.isnan(pearson(a[2], b[2]))  # constant: undefined, skipped in the mean
    expected = (pearson(a[0], b[0]) + -1.0) / 2
    assert attribution_correlation(a, b) == pytest.approx(expected)


@pytest.mark.slow
@pytest.mark.skipif(not (MRPC_MODEL / "model.safetensors").is_file(),
                    reason="run benchmarks/train_recipe.py --task mrpc first")
def test_deletion_by_gi_beats_random_on_the_fine_tuned_mrpc_model():
    from jaxsim.classifier import load_classifier
    from jaxsim.evaluate.deletion import deletion_curves
    from jaxsim.train import read_pairs

    clf = load_classifier(MRPC_MODEL, max_length=128)
    result = deletion_curves(clf, read_pairs(MRPC_TEST), methods=("gi", "random"), max_pairs=200,
                             steps=(0, 5, 10, 20), progress=False)
    print("\n" + result.to_markdown())
    assert result.area("gi") < result.area("random")
    assert result.accuracy["gi"][1] < result.accuracy["random"][1]  # 5 % deleted
