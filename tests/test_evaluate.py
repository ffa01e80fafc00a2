"""Evaluation metrics on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from jaxsim.errors import JaxsimError
from jaxsim.evaluate import perturbation as pt
from jaxsim.evaluate.sts import read_scored_pairs, sts_spearman


def test_aupc_is_the_trapezoid_area_with_step_0_04():
    d = np.linspace(1.0, 0.0, 26)  # a straight line from 1 to 0 over [0, 1]
    assert pt.aupc(d) == pytest.approx(0.5)
    assert pt.aupc(np.ones(26)) == pytest.approx(1.0)


def test_reveal_counts_follow_rounded_steps_of_4_percent():
    counts = pt.reveal_counts(10)
    assert counts[0] == 0 and counts[-1] == 10 and len(counts) == 26
    assert list(counts[:6]) == [0, 0, 1, 1, 2, 2]


def test_perturbed_ids_mask_content_and_reveal_the_ranking(minilm):
    enc = minilm.tokenizer.encode("a b c d")
    ranking = np.array([3, 1, 4, 2])
    rows = pt.perturbed_ids(enc, ranking, mask_id=103)
    assert (rows[0, 1:-1] == 103).all() and rows[0, 0] == enc.ids[0] and rows[0, -1] == enc.ids[-1]
    np.testing.assert_array_equal(rows[-1], enc.ids)
    first = int(np.argmax(pt.reveal_counts(4) >= 1))
    assert rows[first, 3] == enc.ids[3] and (rows[first, [1, 2, 4]] == 103).all()
    with pytest.raises(JaxsimError):
        pt.perturbed_ids(enc, np.array([0, 1, 2, 3]), mask_id=103)


def test_a_perfect_ranking_beats_the_reverse_ranking(minilm):
    """On a sentence whose representation hinges on few words, revealing the tokens that move
    the embedding most first (greedy by leave-one-out) gives a lower AUPC than the reverse."""
    enc = minilm.tokenizer.encode("the violinist played a concerto in the old church")
    content = np.flatnonzero(~enc.special)
    full = pt.perturbation_curve(minilm, enc, content)  # any ranking: d_K = 0
    assert full[-1] == pytest.approx(0.0, abs=1e-5) and full[0] > 0
    # Single-token importance: distance when only that token is revealed.
    single = []
    for t in content:
        order = np.r_[t, content[content != t]]
        single.append(pt.perturbation_curve(minilm, enc, order)[int(np.argmax(
            pt.reveal_counts(len(content)) >= 1))])
    good = content[np.argsort(single)]           # smallest distance first = most restoring
    bad = good[::-1]
    assert pt.aupc(pt.perturbation_curve(minilm, enc, good)) < pt.aupc(
        pt.perturbation_curve(minilm, enc, bad))


def test_sts_spearman_matches_scipy_on_the_model_cosines(minilm, tmp_path):
    path = tmp_path / "toy.tsv"
    rows = [("A cat sits.", "A cat is sitting.", 4.8), ("A cat sits.", "Stocks fell.", 0.2),
            ("A man cooks.", "Someone is cooking.", 4.0), ("A man cooks.", "A dog runs.", 1.0)]
    path.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows))
    pairs = read_scored_pairs(path)
    assert pairs == rows
    cos = [minilm.similarity(a, b) for a, b, _ in rows]
    expected = 100 * spearmanr(cos, [s for *_, s in rows]).statistic
    assert sts_spearman(minilm, pairs) == pytest.approx(expected)
