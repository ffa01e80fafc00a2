"""GMASK / IMASK ([GMASK]; METHODS.md §3) and the faithfulness metrics of its §5.1.

Hand computations for the Gumbel-softmax, both losses, the lr schedule and the three metrics;
the mask reaching the model (zero embedding, not attended, specials kept); determinism by key;
batched == one-by-one; and a rule-based classifier whose decision depends on one word pair only.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim.classifier import as_classifier
from jaxsim.errors import JaxsimError
from jaxsim.evaluate import faithfulness as fm
from jaxsim.explain import gmask as gm
from jaxsim.models import encoder_for, pair_logits
from jaxsim.models.heads import classify
from jaxsim.models.ops import PLAIN_OPS

#: Small settings shared by every test that runs the tiny classifier (one compilation per batch size).
SMALL = gm.GmaskSettings(k=6, steps=6, samples=8)
LENGTH = 16
PAIRS = [("A cat sits on the mat.", "It is sleeping!"), ("Dogs bark loudly.", "The dog is loud.")]


@pytest.fixture(scope="module")
def tiny_classifier(tiny_bert_classifier_dir, weights_dir):
    # Converted and cached params are placed alike (convert.cache.on_local_device), so the CLI
    # tests, which load from the cache, reuse the jitted GMASK compiled here.
    return as_classifier(jaxsim.load_model(tiny_bert_classifier_dir, weights_dir=weights_dir))


def _arrays(clf, pairs, rows=None):
    encoded = [clf.model.tokenizer.encode_pair(a, b) for a, b in pairs]
    return encoded, tuple(jnp.asarray(a) for a in gm.pad_pairs(encoded, LENGTH, rows or len(pairs)))


# --- Gumbel-softmax and losses by hand ---------------------------------------------------------------

def test_gumbel_softmax_matches_hand_computation_and_hard_is_exactly_one_hot():
    logits, noise, tau = jnp.array([0.5, 0.2, -0.1]), jnp.array([0.1, 0.6, -0.3]), 0.5
    scores = [(0.5 + 0.1) / tau, (0.2 + 0.6) / tau, (-0.1 - 0.3) / tau]
    expected = np.exp(scores) / np.exp(scores).sum()
    np.testing.assert_allclose(gm.gumbel_softmax(logits, noise, tau, hard=False), expected, rtol=1e-6)
    hard = gm.gumbel_softmax(logits, noise, tau, hard=True)
    assert hard.tolist() == [0.0, 1.0, 0.0]
    masked = gm.gumbel_softmax(logits, noise, tau, hard=True, valid=jnp.array([True, False, True]))
    assert masked.tolist() == [1.0, 0.0, 0.0]


def test_straight_through_gradient_is_the_soft_gradient_finite_and_nonzero():
    noise = jnp.array([0.1, 0.6, -0.3])
    weights = jnp.array([1.0, 2.0, 3.0])
    hard_grad = jax.grad(lambda z: gm.gumbel_softmax(z, noise, 0.5) @ weights)(jnp.array([0.5, 0.2, -0.1]))
    soft_grad = jax.grad(lambda z: gm.gumbel_softmax(z, noise, 0.5, hard=False) @ weights)(
        jnp.array([0.5, 0.2, -0.1]))
    assert np.all(np.isfinite(hard_grad)) and np.abs(hard_grad).sum() > 1e-3
    np.testing.assert_allclose(hard_grad, soft_grad, rtol=1e-6)


def test_imask_loss_matches_hand_computation_on_three_tokens():
    r = np.array([[1.0, 1.5], [0.2, -0.4], [1.0, 1.0]])        # 3 pieces x (drop, keep) logits
    sig = 1 / (1 + np.exp(-r))
    keep = [math.exp(sig[i, 1]) / (math.exp(sig[i, 0]) + math.exp(sig[i, 1])) for i in range(3)]
    sample_logits = np.array([[2.0, -1.0], [0.5, 0.3]])         # the model on 2 masked samples
    y = 0
    ce = np.mean([-(z[y] - math.log(sum(math.exp(v) for v in z))) for z in sample_logits])
    content = np.array([True, True, False])                      # the third is a special
    hand = ce + 0.1 * sum(p * math.log(p + 1e-8) for p, c in zip(keep, content, strict=True) if c)
    keep_prob = jax.nn.softmax(jax.nn.sigmoid(jnp.asarray(r)), -1)[:, 1]
    got = gm.imask_loss(gm.cross_entropy(jnp.asarray(sample_logits), y), keep_prob, jnp.asarray(content), 0.1)
    assert float(got) == pytest.approx(hand, rel=1e-6)


def test_gmask_loss_matches_hand_computation_reference_and_paper_variants():
    z_prob = np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8], [0.5, 0.5]])   # 4 rows x 2 groups
    t_prob = np.array([0.35, 0.65])
    side = np.array([0, 0, 1, -1])                                        # last row: a special
    ce = 0.9

    def nent(p):
        return sum(v * math.log(v + 1e-8) for v in p)

    def softmax(v):
        e = np.exp(v - v.max())
        return e / e.sum()

    q1, q2 = softmax(z_prob[:2].sum(0)), softmax(z_prob[2:3].sum(0))
    hand = ce + 10 * (nent(q1) + nent(q2)) - nent(t_prob)
    args = (jnp.asarray(ce), jnp.asarray(z_prob), jnp.asarray(t_prob), jnp.asarray(side),
            jnp.array([True, True]))
    assert float(gm.gmask_loss(*args, 10.0, 1.0)) == pytest.approx(hand, rel=1e-6)
    p1, p2 = z_prob[:2].mean(0), z_prob[2:3].mean(0)
    paper = ce + 10 * (nent(p1) + nent(p2)) - nent(t_prob)
    assert float(gm.gmask_loss(*args, 10.0, 1.0, variant="paper")) == pytest.approx(paper, rel=1e-6)


def test_lr_schedule_is_pytorch_cosine_annealing():
    torch = pytest.importorskip("torch")
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([w], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    expected = []
    for _ in range(35):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    schedule = gm.cosine_annealing(0.1, 10)
    np.testing.assert_allclose([float(schedule(t)) for t in range(35)], expected, atol=1e-7)


# --- the mask reaches the model ----------------------------------------------------------------------

def test_masked_piece_gets_zero_embedding_and_no_attention(tiny_classifier):
    clf = tiny_classifier
    params, config = clf.params, clf.config
    (enc, _), = [clf.model.tokenizer.encode_pair(*PAIRS[0])]
    ids, types = jnp.asarray(enc.ids), jnp.asarray(enc.type_ids)
    n = len(enc)
    emb = gm._embed_one(params, config, ids, types)
    mask = jnp.ones(n, bool)
    ones = gm.masked_logits(params, config, emb, mask, jnp.ones((1, n)))
    np.testing.assert_allclose(ones, pair_logits(params, ids[None], types[None], mask[None], config=config),
                               atol=1e-5)
    t = 3
    keep = jnp.ones((1, n)).at[0, t].set(0.0)
    got = gm.masked_logits(params, config, emb, mask, keep)
    # by hand: zero row t of the embedding output and drop t from the attention mask
    enc_fns = encoder_for(config)
    x = emb.at[t].set(0.0)[None]
    hidden = enc_fns.encode_embeddings(params, config, PLAIN_OPS, x, mask.at[t].set(False)[None])
    np.testing.assert_allclose(got, classify(params["head"], hidden, PLAIN_OPS), atol=1e-5)
    assert np.abs(np.asarray(got) - np.asarray(ones)).max() > 1e-4


def test_select_short_keeps_imask_order_and_falls_back_when_one_side_is_empty():
    segment = jnp.array([-1, 0, 0, 0, -1, 1, 1, -1])
    content = segment >= 0
    imp = jnp.array([0.0, 0.2, 0.9, 0.5, 0.0, 0.3, 0.8, 0.0])
    s1, c1, s2, c2, order = gm.select_short(imp, content, segment, k=4)
    assert order[:5].tolist() == [2, 6, 3, 5, 1]
    assert (s1[:int(c1)].tolist(), s2[:int(c2)].tolist()) == ([2, 3], [6, 5])
    # top 2 both in sentence a -> fallback: top k//2 = 1 of each sentence
    imp = jnp.array([0.0, 0.2, 0.9, 0.8, 0.0, 0.3, 0.1, 0.0])
    s1, c1, s2, c2, _ = gm.select_short(imp, content, segment, k=2)
    assert (s1[:int(c1)].tolist(), s2[:int(c2)].tolist()) == ([2], [5])
    src, types, side, mask = gm.short_input(jnp.arange(8), 4, 7, jnp.array([2, 3]), 2, jnp.array([6, 5]), 2,
                                            length=9)
    assert src.tolist() == [0, 2, 3, 4, 6, 5, 7, -1, -1]
    assert types.tolist()[:7] == [0, 0, 0, 0, 1, 1, 1] and side.tolist()[:7] == [-1, 0, 0, -1, 1, 1, -1]
    assert mask.tolist() == [True] * 7 + [False] * 2


# --- determinism and batching ------------------------------------------------------------------------

def test_same_key_gives_bit_identical_results_and_batched_equals_one_by_one(tiny_classifier):
    clf = tiny_classifier
    _, arrays = _arrays(clf, PAIRS)
    keys = jnp.stack([jax.random.key(42), jax.random.key(7)])
    run = lambda a, k: gm.gmask_batch(clf.params, *a, k, config=clf.config, settings=SMALL)  # noqa: E731
    first, again = jax.device_get(run(arrays, keys)), jax.device_get(run(arrays, keys))
    for name, value in first._asdict().items():
        np.testing.assert_array_equal(value, getattr(again, name), err_msg=name)
    for i in range(2):
        one = jax.device_get(run(tuple(a[i:i + 1] for a in arrays), keys[i:i + 1]))
        for name, value in one._asdict().items():
            np.testing.assert_allclose(value[0], getattr(first, name)[i], atol=1e-5, err_msg=name)
    other = jax.device_get(run(tuple(a[:1] for a in arrays), jnp.stack([jax.random.key(1)])))
    assert not np.array_equal(other.losses[0], first.losses[0])
    # the outputs are well formed
    assert np.all((first.theta > 0) | (first.short_side < 0)) and np.all(first.theta < 1)
    ranked = first.ranking[0][: int((np.asarray(arrays[3][0]) >= 0).sum())]
    assert sorted(ranked.tolist()) == np.flatnonzero(np.asarray(arrays[3][0]) >= 0).tolist()


def test_chunked_samples_give_the_autodiff_loss_and_gradient(tiny_classifier):
    # ce_and_keep_grad (each chunk's forward and backward together, padding rows weighted 0) against
    # jax.value_and_grad of the plain mean cross-entropy over all samples at once.
    clf = tiny_classifier
    encoded, (ids, types, mask, _) = _arrays(clf, PAIRS[:1])
    emb = gm._embed_one(clf.params, clf.config, ids[0], types[0])
    keep = jax.random.uniform(jax.random.key(3), (7, LENGTH))             # 7 samples: chunks pad
    y_hat = jnp.asarray(1)

    def plain(keep):
        return gm.cross_entropy(gm.masked_logits(clf.params, clf.config, emb, mask[0], keep), y_hat)

    want_ce, want_grad = jax.value_and_grad(plain)(keep)
    for chunk_rows in (None, 3 * LENGTH, LENGTH, 1):                      # 1, 3 (padded), 7 chunks
        ce, grad = gm.ce_and_keep_grad(gm.masked_logits, clf.params, clf.config, emb, mask[0], keep,
                                       y_hat, chunk_rows)
        np.testing.assert_allclose(ce, want_ce, rtol=1e-6, err_msg=str(chunk_rows))
        np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7, err_msg=str(chunk_rows))
        assert np.abs(np.asarray(grad)).max() > 0


def test_chunking_changes_no_result(tiny_classifier):
    clf = tiny_classifier
    _, arrays = _arrays(clf, PAIRS)
    keys = jnp.stack([jax.random.key(42), jax.random.key(7)])
    whole = jax.device_get(gm.gmask_batch(clf.params, *arrays, keys, config=clf.config, settings=SMALL))
    parts = jax.device_get(gm.gmask_batch(clf.params, *arrays, keys, config=clf.config, settings=SMALL,
                                          chunk_rows=3 * LENGTH))
    for name, value in whole._asdict().items():
        np.testing.assert_allclose(getattr(parts, name), value, atol=1e-5, err_msg=name)


def _rule_model(record: list):
    """A rule-based pair 'classifier' on the embedding output: class 1 iff the pieces "cat" (in a)
    and "dog" (in b) are both kept (each seen through its masked embedding row), else class 0.
    Records every (keep, masked embedding) it is called with."""
    def model_fn(params, config, emb, mask, keep):
        x = emb[None] * keep[..., None]                                        # f32[S, n, d]
        target = params["targets"]                                             # f32[2, d]
        near = jnp.exp(-jnp.sum((x[:, :, None] - target[None, None]) ** 2, -1) / 4.0)   # [S, n, 2]
        present = jnp.sum(near * mask[None, :, None], 1)                       # [S, 2]
        jax.debug.callback(lambda k, xx: record.append((np.asarray(k), np.asarray(xx))), keep, x)
        score = 8.0 * present[:, 0] * present[:, 1]
        return jnp.stack([jnp.full_like(score, 4.0), score], -1)
    return model_fn


def test_gmask_ranks_the_decisive_word_pair_first_and_never_masks_specials(tiny_classifier):
    clf = tiny_classifier
    tok = clf.model.tokenizer
    pair = ("the cat sat here", "a dog ran")
    (enc, segment), = [tok.encode_pair(*pair)]
    emb_params = dict(clf.params)
    emb_params["embeddings"] = dict(clf.params["embeddings"])
    # position and token-type embeddings off: a piece's embedding output depends on its id only
    emb_params["embeddings"]["position"] = jnp.zeros_like(clf.params["embeddings"]["position"])
    emb_params["embeddings"]["token_type"] = jnp.zeros_like(clf.params["embeddings"]["token_type"])
    cat, dog = (int(tok.tokenizer.token_to_id(w)) for w in ("cat", "dog"))
    ids = jnp.asarray([cat, dog])
    emb_params["targets"] = gm._embed_one(emb_params, clf.config, ids, jnp.zeros_like(ids))
    record: list = []
    settings = gm.GmaskSettings(k=10, steps=100, samples=64)
    arrays = tuple(jnp.asarray(a) for a in gm.pad_pairs([(enc, segment)], LENGTH, 1))
    out = jax.device_get(gm.gmask_batch(emb_params, *arrays, jnp.stack([jax.random.key(0)]),
                                        config=clf.config, settings=settings, model_fn=_rule_model(record)))
    assert int(out.predicted[0]) == 1
    top2 = sorted(enc.tokens[t] for t in out.ranking[0][:2])
    assert top2 == ["cat", "dog"], ([enc.tokens[t] for t in out.ranking[0][:len(enc)]], out.theta, out.imask)
    imask_top2 = np.argsort(-out.imask[0])[:2]
    assert sorted(enc.tokens[t] for t in imask_top2) == ["cat", "dog"]
    # every mask the model saw: values in {0, 1}, specials kept, masked rows exactly zero
    n = len(enc)
    specials_full = [0, *np.flatnonzero(segment[1:] < 0) + 1]
    short_specials = np.flatnonzero((out.short_side[0] < 0) & (out.short_source[0] >= 0))
    assert len(record) > 30
    for keep, x in record:
        assert set(np.unique(keep)) <= {0.0, 1.0}
        specials = specials_full if keep.shape[1] == LENGTH else short_specials
        assert np.all(keep[:, specials] == 1.0)
        assert np.all(x[keep == 0.0] == 0.0)
    assert any((keep[:, :n] == 0).any() for keep, _ in record)


def test_explain_pair_result_groups_json_and_bad_input(tiny_classifier):
    result = gm.explain_pair(tiny_classifier, *PAIRS[0], k=SMALL.k, steps=SMALL.steps, samples=SMALL.samples)
    data = json.loads(result.to_json())
    assert data["method"] == "gmask" and len(data["groups"]) == len(result.tokens)
    selected = np.flatnonzero(result.groups >= 0)
    assert len(selected) == SMALL.k and np.all(result.special[selected] == 0)
    assert sorted(data["ranking"]) == np.flatnonzero(result.segment >= 0).tolist()
    assert "word groups" in result.show() and "group" in result.to_html()
    # terminal view: rank 1 is the piece with the largest theta; unselected pieces show "-"
    tokens_line = result.show().split("tokens (GMASK rank; - = not selected):\n  ")[1].split("\n")[0]
    shown = tokens_line.split(" ")
    assert len(shown) == len(result.tokens)
    assert shown[int(np.argmax(result.scores))].endswith(":1")
    assert all(item.endswith(":-") for t, item in enumerate(shown) if result.groups[t] < 0)
    with pytest.raises(JaxsimError, match="unknown GMASK options"):
        gm.explain_pair(tiny_classifier, *PAIRS[0], sample=3)
    with pytest.raises(JaxsimError, match="k >= 2"):
        gm.GmaskSettings(k=1)
    with pytest.raises(JaxsimError, match="predicted class"):
        gm.explain_pair(tiny_classifier, *PAIRS[0], target="last")


def test_cli_explain_gmask_writes_json(tiny_bert_classifier_dir, weights_dir, tmp_path, capsys):
    from jaxsim.cli import main

    out = tmp_path / "gmask.json"
    code = main(["explain", "--method", "gmask", "--model", str(tiny_bert_classifier_dir),
                 "--weights-dir", str(weights_dir), "--k", str(SMALL.k), "--steps", str(SMALL.steps),
                 "--samples", str(SMALL.samples), "--format", "json", "--out", str(out), *PAIRS[0]])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["method"] == "gmask" and "group_probs" in data


# --- metrics by hand ---------------------------------------------------------------------------------

def test_aopc_post_hoc_and_degradation_match_hand_computation():
    p_full = np.array([0.9, 0.6])
    removed = np.array([[0.5, 0.3], [0.6, 0.7]])
    # pair 1: (0.4 + 0.6); pair 2: (0 - 0.1); mean 0.45; / (U + 1 = 3)
    assert fm.aopc(p_full, removed) == pytest.approx(0.45 / 3)
    acc = fm.post_hoc_accuracy(np.array([1, 0, 1]), np.array([[1, 1], [1, 0], [0, 1]]))
    np.testing.assert_allclose(acc, [1 / 3, 1.0])
    percents = (0, 50, 100)
    morf = np.array([[0.8, 0.2, 0.1], [0.6, 0.4, 0.3]])
    lerf = np.array([[0.8, 0.7, 0.1], [0.6, 0.6, 0.3]])
    score, s_m, s_l = fm.degradation(percents, morf, lerf)
    # means: morf 0.7, 0.3, 0.2; lerf 0.7, 0.65, 0.2 -> S^M = 1, 0.2, 0; S^L = 1, 0.9, 0
    np.testing.assert_allclose(s_m, [1.0, 0.2, 0.0])
    np.testing.assert_allclose(s_l, [1.0, 0.9, 0.0])
    assert score == pytest.approx(0.5 * (0 + 0.7) / 2 + 0.5 * (0.7 + 0) / 2)
    with pytest.raises(JaxsimError):
        fm.degradation((10, 100), morf[:, :2], lerf[:, :2])


def test_perturbations_delete_and_keep_pieces_by_ranking():
    @dataclasses.dataclass
    class Enc:
        ids: np.ndarray
        type_ids: np.ndarray
        special: np.ndarray

    enc = Enc(np.array([101, 11, 12, 13, 102, 21, 22, 102]), np.array([0, 0, 0, 0, 0, 1, 1, 1]),
              np.array([1, 0, 0, 0, 1, 0, 0, 1], bool))
    ranking = np.array([6, 2, 1, 5, 3])
    rows = fm.perturbations(enc, ranking, aopc_steps=(1, 2, 9), post_hoc_steps=(1, 2), percents=(0, 40, 100))
    assert [r[0].tolist() for r in rows["aopc"]] == [
        [101, 11, 12, 13, 102, 21, 102], [101, 11, 13, 102, 21, 102], [101, 102, 102]]  # G8: all at u=9
    assert [r[0].tolist() for r in rows["post_hoc"]] == [[101, 102, 22, 102], [101, 12, 102, 22, 102]]
    assert rows["post_hoc"][1][1].tolist() == [0, 0, 0, 1, 1]
    assert [r[0].tolist() for r in rows["morf"]] == [
        [101, 11, 12, 13, 102, 21, 22, 102], [101, 11, 13, 102, 21, 102], [101, 102, 102]]
    assert [r[0].tolist() for r in rows["lerf"]][1] == [101, 11, 12, 102, 22, 102]   # 3 and 5 removed


def test_evaluate_rankings_runs_every_metric_on_the_tiny_classifier(tiny_classifier):
    encoded = [tiny_classifier.model.tokenizer.encode_pair(a, b) for a, b in PAIRS]
    segs = [s for _, s in encoded]
    rankings = fm.first_order_rankings(tiny_classifier, [e for e, _ in encoded], segs, ("gi", "random"))
    result = fm.evaluate_rankings(tiny_classifier, [e for e, _ in encoded], rankings, batch_size=8)
    assert set(result.aopc) == {"gi", "random"} and result.post_hoc["gi"].shape == (10,)
    assert result.s_morf["gi"][0] == pytest.approx(1.0) and result.s_morf["gi"][-1] == pytest.approx(0.0)
    assert "| gi |" in result.to_markdown()


def test_cli_evaluate_gmask_writes_the_tables(tiny_bert_classifier_dir, weights_dir, tmp_path):
    from jaxsim.cli import main

    data = tmp_path / "pairs.tsv"
    data.write_text("sentence1\tsentence2\tlabel\n" + "".join(f"{a}\t{b}\tLABEL_0\n" for a, b in PAIRS))
    out = tmp_path / "eval"
    code = main(["evaluate", "gmask", "--model", str(tiny_bert_classifier_dir), "--weights-dir",
                 str(weights_dir), "--data", str(data), "--out", str(out), "--methods", "gmask,imask,random",
                 "--k", str(SMALL.k), "--steps", str(SMALL.steps), "--samples", str(SMALL.samples),
                 "--no-progress"])
    assert code == 0
    report = json.loads((out / "faithfulness.json").read_text())
    assert report["methods"] == ["gmask", "imask", "random"] and report["n_pairs"] == 2
    assert "| gmask |" in (out / "faithfulness.md").read_text()
