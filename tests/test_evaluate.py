"""Evaluation metrics on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from jaxsim.errors import JaxsimError
from jaxsim.evaluate import bi_encoder as be
from jaxsim.evaluate import perturbation as pt
from jaxsim.evaluate.interaction import acs, ground_truth_interactions, matrix_cosine, shared_noun_count
from jaxsim.evaluate.pos import TaggedToken, piece_tags, pos_pair_sums
from jaxsim.evaluate.sts import read_scored_pairs, spearman, sts_spearman


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


# --- Spearman ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 50).astype(float)  # many ties, like STS gold scores
    y = x + rng.normal(0, 2, 50)
    y[::7] = y[0]  # ties in y too
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_spearman_is_one_for_monotone_and_minus_one_for_reversed():
    x = np.arange(10.0)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, -x**3) == pytest.approx(-1.0)
    # By hand: ranks of x are [3.5, 1, 3.5, 2] (a tie shares 3 and 4), of y [1, 2, 3, 4]; centred
    # [1, -1.5, 1, -0.5] and [-1.5, -0.5, 0.5, 1.5]: rho = -1 / sqrt(4.5 * 5).
    assert spearman(np.array([3.0, 1.0, 3.0, 2.0]), np.arange(4.0)) == pytest.approx(-1 / np.sqrt(22.5))


# --- AUPC ---------------------------------------------------------------------------------------


def test_a_perfect_ranking_beats_random_rankings(minilm):
    """Greedy ranking (the token that alone restores the embedding most, first) vs 5 seeded
    random rankings: the greedy AUPC is lower than every random one."""
    enc = minilm.tokenizer.encode("a violinist played a concerto in the church")
    content = np.flatnonzero(~enc.special)
    first = int(np.argmax(pt.reveal_counts(len(content)) >= 1))
    single = [pt.perturbation_curve(minilm, enc, np.r_[t, content[content != t]])[first] for t in content]
    perfect = pt.aupc(pt.perturbation_curve(minilm, enc, content[np.argsort(single)]))
    randoms = [pt.aupc(pt.perturbation_curve(minilm, enc, pt.random_ranking(enc, np.random.default_rng(s))))
               for s in range(5)]
    assert perfect < min(randoms)


def test_compare_methods_reports_a_significant_wilcoxon_when_the_reference_is_always_lower():
    rng = np.random.default_rng(0)
    ref = rng.normal(5, 1, 40)
    scores = {"bilrp": ref, "random": ref + rng.uniform(0.5, 1.0, 40), "same": ref + rng.normal(0, 1e-3, 40)}
    rows = {r["method"]: r for r in pt.compare_methods(scores)}
    assert rows["bilrp"]["p_reference_lower"] is None
    assert rows["random"]["p_reference_lower"] < 1e-6
    assert rows["same"]["p_reference_lower"] > 0.01
    assert [r["method"] for r in pt.compare_methods(scores)][-1] == "random"


def test_ranking_from_scores_orders_content_tokens_and_skips_specials(minilm):
    enc = minilm.tokenizer.encode("x y z")  # [CLS] x y z [SEP]
    ranking = pt.ranking_from_scores(enc, np.array([100.0, 1.0, 3.0, 2.0, 100.0]))
    np.testing.assert_array_equal(ranking, [2, 3, 1])


# --- ACS and POS --------------------------------------------------------------------------------


def _tagged(spec):
    """[(text, pos)] -> TaggedToken list with spans of the texts joined by single spaces."""
    out, start = [], 0
    for text, tag in spec:
        out.append(TaggedToken(start, start + len(text), text, tag))
        start += len(text) + 1
    return out


def test_shared_noun_count_counts_distinct_lowercased_noun_types():
    a = _tagged([("A", "DET"), ("Dog", "NOUN"), ("sees", "VERB"), ("a", "DET"), ("dog", "NOUN"),
                 ("in", "ADP"), ("Paris", "PROPN")])
    b = _tagged([("The", "DET"), ("dog", "NOUN"), ("left", "VERB"), ("paris", "PROPN"), ("cat", "NOUN")])
    assert shared_noun_count(a, b) == 2
    assert shared_noun_count(a, _tagged([("Dog", "VERB")])) == 0


def test_ground_truth_marks_identical_noun_pieces_only():
    ids_a, tags_a = np.array([101, 7, 8, 9, 102]), ["[CLS]", "DET", "NOUN", "NOUN", "[SEP]"]
    ids_b, tags_b = np.array([101, 8, 9, 7, 102]), ["[CLS]", "NOUN", "VERB", "DET", "[SEP]"]
    g = ground_truth_interactions(ids_a, tags_a, ids_b, tags_b)
    expected = np.zeros((5, 5))
    expected[2, 1] = 1.0  # 8 is a noun on both sides; 9 is a verb in b; 7 is a DET; specials 0
    np.testing.assert_array_equal(g, expected)


def test_acs_on_a_toy_with_known_answer():
    g = np.zeros((4, 5))
    g[1, 2] = g[3, 0] = 1.0
    noise = np.zeros((4, 5))
    noise[0, 0] = 1.0  # orthogonal to G
    assert acs([g], [g])[0] == pytest.approx(1.0)
    assert acs([g], [-2 * g])[0] == pytest.approx(-1.0)
    assert acs([g], [noise])[0] == pytest.approx(0.0)
    # R = G + c * noise: cos = |G|^2 / (|G| sqrt(|G|^2 + c^2)) = sqrt(2) / sqrt(2 + c^2)
    mean, std, used = acs([g, g, np.zeros((2, 2))], [g + noise, g, np.ones((2, 2))])
    assert used == 2  # the all-zero G is skipped
    assert mean == pytest.approx((np.sqrt(2 / 3) + 1.0) / 2)
    with pytest.raises(JaxsimError):
        matrix_cosine(g, np.zeros((5, 4)))


def test_piece_tags_follow_character_offsets():
    tagged = _tagged([("Playing", "VERB"), ("violins", "NOUN"), (".", "PUNCT")])  # "Playing violins ."
    offsets = [(0, 0), (0, 4), (4, 7), (8, 14), (14, 15), (16, 17), (0, 0)]
    special = np.array([True, False, False, False, False, False, True])
    tokens = ["[CLS]", "play", "##ing", "violin", "##s", ".", "[SEP]"]
    assert piece_tags(offsets, special, tokens, tagged) == [
        "[CLS]", "VERB", "VERB", "NOUN", "NOUN", "PUNCT", "[SEP]"]


def test_pos_pair_sums_split_signs_and_symmetrise():
    r = np.array([[1.0, -2.0], [3.0, 0.5]])
    sums = pos_pair_sums([r], [["NOUN", "VERB"]], [["NOUN", "DET"]], ["NOUN", "VERB", "DET"])
    # a-b token pairs: NOUN-NOUN 1, NOUN-DET -2, VERB-NOUN 3, VERB-DET 0.5; symmetrised (M + M^T) / 2
    np.testing.assert_allclose(sums["positive"], [[1, 1.5, 0], [1.5, 0, 0.25], [0, 0.25, 0]])
    np.testing.assert_allclose(sums["negative"], [[0, 0, -1], [0, 0, 0], [-1, 0, 0]])
    assert sums["count"].sum() == 4


def test_spacy_tagger_tags_pieces_of_the_model_tokenizer(minilm):
    pos = pytest.importorskip("jaxsim.evaluate.pos")
    pytest.importorskip("spacy")
    try:
        nlp = pos.load_tagger()
    except JaxsimError:
        pytest.skip("no spaCy English pipeline installed (extra 'eval')")
    text = "A man plays the flute in London."
    enc = minilm.tokenizer.encode(text)
    tags = piece_tags(pos.piece_offsets(minilm.tokenizer, text), enc.special, enc.tokens,
                      pos.tag_texts(nlp, [text])[0])
    by_token = dict(zip(enc.tokens, tags, strict=True))
    assert by_token["man"] == "NOUN" and by_token["flute"] == "NOUN" and by_token["london"] == "PROPN"
    assert tags[0] == "[CLS]" and tags[-1] == "[SEP]"


# --- bi-encoder regression ----------------------------------------------------------------------


def test_bi_encoder_training_lowers_the_mse_and_reloads_identically(tiny_bert, tmp_path):
    pairs = [("a b c", "a b"), ("c d", "e f"), ("a a", "a"), ("f e d", "d e f")]
    targets = np.array([2.0, 0.0, 1.0, 3.0])
    before = np.mean((be.predict(tiny_bert.with_pooling("qkv"), pairs, batch_size=4) - targets) ** 2)
    cfg = be.BiEncoderConfig(epochs=6, batch_size=4, learning_rate=3e-3, warmup_ratio=0.0, seed=0)
    trained, history = be.train_bi_encoder(tiny_bert, pairs, targets, cfg, tmp_path, progress=False)
    after = np.mean((be.predict(trained, pairs, batch_size=4) - targets) ** 2)
    assert after < 0.5 * before
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    reloaded, _ = be.load_bi_encoder(tiny_bert, tmp_path)
    np.testing.assert_allclose(be.predict(reloaded, pairs, batch_size=4),
                               be.predict(trained, pairs, batch_size=4), rtol=1e-6)


# --- CLI ----------------------------------------------------------------------------------------


def test_evaluate_sts_and_aupc_commands_write_their_json(tiny_bert_dir, weights_dir, tmp_path, capsys):
    import json

    from jaxsim.cli import main

    data = tmp_path / "pairs.tsv"
    rows = [("a b c", "a b", 4.0), ("c d", "e f", 0.5), ("a a b", "a", 3.0), ("f e d", "d e", 2.0)]
    data.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows))
    common = ["--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir)]
    assert main(["evaluate", "sts", *common, "--data", str(data), "--pooling", "mean,qkv",
                 "--out", str(tmp_path / "sts.json")]) == 0
    sts = json.loads((tmp_path / "sts.json").read_text())["spearman_x100"]
    assert set(sts) == {"mean", "qkv"} and -100 <= sts["mean"][f"{tmp_path.name}/pairs"] <= 100
    assert main(["evaluate", "aupc", *common, "--data", str(data), "--n", "2", "--methods",
                 "embedding,random", "--reference", "embedding", "--no-progress",
                 "--out", str(tmp_path / "aupc.json")]) == 0
    aupc = json.loads((tmp_path / "aupc.json").read_text())
    assert aupc["pairs"] == 2 and all(len(v) == 4 for v in aupc["aupc"].values())
    assert "| random |" in capsys.readouterr().out
