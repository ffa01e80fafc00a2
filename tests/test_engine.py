"""The corpus engine's exact rewrites: fine length classes, the run-wide factor cache, and no Q/K
tangent matmuls in the compiled forward engine. Each must leave R unchanged (≤ 1e-5 relative)."""

from __future__ import annotations

import bisect
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim.explain import bilrp, cost
from jaxsim.explain.rules import composite
from jaxsim.text import adaptive_lengths, bucket_length, fine_length, pad_batch, plan_batches

WORDS = "the cat sat on a warm mat while rain fell over quiet green hills near an old stone town".split()


def _texts(lengths_in_words: list[int]) -> list[str]:
    return [" ".join(WORDS[(3 * i) % 5:][:k] + WORDS[:max(0, k - len(WORDS[(3 * i) % 5:]))])
            for i, k in enumerate(lengths_in_words)]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def test_fine_length_classes_are_multiples_of_4_8_16_then_buckets():
    assert [fine_length(n) for n in (3, 9, 12, 13, 64, 65, 128, 129, 256, 257)] == [
        4, 12, 12, 16, 64, 72, 128, 144, 256, 512]
    assert fine_length(185, max_length=190) == 190  # capped at the model maximum like buckets
    for n in range(1, 600):
        assert n <= fine_length(n) <= bucket_length(n)


def test_plan_batches_with_fine_classes_pads_less_and_keeps_every_item_once():
    lengths = [5, 9, 12, 13, 20, 33, 40, 70]
    coarse = plan_batches(lengths, 2, length_classes="buckets", fill=False)
    fine = plan_batches(lengths, 2, length_classes="fine", fill=False)
    assert sorted(i for p in fine for i in p.indices) == list(range(len(lengths)))
    assert sum(p.length * len(p.indices) for p in fine) < sum(p.length * len(p.indices) for p in coarse)
    assert all(p.length >= max(lengths[i] for i in p.indices) for p in fine)


def _brute_force(lengths: list[int], cost: float, known: set[int]) -> float:
    """The best total over every choice of class ends among the lengths and known classes."""
    ends = sorted(set(lengths) | {k for k in known if k >= min(lengths)})
    best = float("inf")
    for r in range(1, len(ends) + 1):
        for classes in itertools.combinations(ends, r):
            if classes[-1] < max(lengths):
                continue
            total = sum(classes[bisect.bisect_left(classes, n)] ** 2 for n in lengths)
            best = min(best, total + cost * sum(c not in known for c in classes))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_adaptive_lengths_find_the_cheapest_classes(seed):
    """The dynamic programme against brute force over all class choices: padded work (n²) plus
    one price per class that is not yet compiled."""
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(3, 15, int(rng.integers(5, 40)))]
    known = {int(k) for k in rng.integers(3, 18, int(rng.integers(0, 3)))}
    cost = float(rng.choice([0.0, 30.0, 300.0, 3000.0]))
    mapping = adaptive_lengths(lengths, new_class_cost=cost, known=known)
    assert set(mapping) == set(lengths)
    assert all(mapping[n] >= n for n in lengths)
    classes = set(mapping.values())
    got = sum(mapping[n] ** 2 for n in lengths) + cost * len(classes - known)
    assert got == pytest.approx(_brute_force(lengths, cost, known))


def test_adaptive_lengths_limits_free_classes_and_dear_ones():
    lengths = [5, 5, 6, 9, 9, 9, 12]
    assert adaptive_lengths(lengths, new_class_cost=0.0) == {5: 5, 6: 6, 9: 9, 12: 12}
    assert set(adaptive_lengths(lengths, new_class_cost=1e9).values()) == {12}
    # a compiled class costs nothing: 5 and 6 pad to the known 8 rather than open a class
    assert adaptive_lengths(lengths, new_class_cost=1e9, known={8}) == {5: 8, 6: 8, 9: 12, 12: 12}
    assert adaptive_lengths([], new_class_cost=1.0) == {}


def test_a_corpus_shard_prices_a_compile_at_its_share_of_the_run():
    """One compilation serves this shard and every later one: a call pays its share."""
    from jaxsim.models.config import BertConfig

    config = BertConfig(vocab_size=10, hidden_size=384, num_layers=6, num_heads=12,
                        intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
                        layer_norm_eps=1e-12, gelu_approximate=False, pad_token_id=0)
    one = cost.class_cost(config, peak_gflops=100.0)
    assert one == pytest.approx(cost.COMPILE_SECONDS * 100e9 / (2 * 8_847_360))
    cache = bilrp.FactorCache(class_cost=one, calls=34)
    assert cache.call_price == pytest.approx(one / 34)
    cache.calls_left = 0  # past the planned calls: the whole price
    assert cache.call_price == pytest.approx(one)
    assert cost.text_work(10, hidden=384) == 100 and cost.text_work(500, hidden=384) == 500 * 384


def test_adaptive_classes_learn_the_compiled_lengths_across_calls(tiny_bert):
    cache = bilrp.FactorCache(class_cost=1e9)  # compiling is dear: reuse what exists
    first = [len(e) for e in tiny_bert.encode(_texts([2] * 40 + [9] * 40))]
    policy = bilrp.length_policy(tiny_bert, first, "auto", cache)
    assert callable(policy)
    assert cache.known_lengths == {max(first)}  # one class for all
    policy = bilrp.length_policy(tiny_bert, [3] * 70, "auto", cache)
    assert policy(3) == max(first)  # the compiled class, not a new one
    assert bilrp.length_policy(tiny_bert, [3] * 10, "auto", cache) == "buckets"  # a small request
    assert bilrp.length_policy(tiny_bert, [3] * 70, "auto", None) == "fine"  # no run: no price
    assert bilrp.length_policy(tiny_bert, [3] * 70, "auto", cache, method="embedding") == "fine"


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt_neo"])
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_fine_length_classes_give_the_same_relevance_as_buckets(fixture, mode, request):
    model = request.getfixturevalue(fixture)
    texts = _texts([2, 5, 9, 13, 17])  # several classes, mixed in batches of 2 (padding inside)
    encoded = model.encode(texts)
    options = dict(method="bilrp", mode=mode, batch_size=2)
    coarse = bilrp.text_relevances(model, encoded, length_classes="buckets", **options)
    fine = bilrp.text_relevances(model, encoded, length_classes="fine", **options)
    exact = bilrp.text_relevances(model, encoded, length_classes="adaptive",
                                  cache=bilrp.FactorCache(class_cost=0.0), **options)  # n each
    for (r_c, phi_c), (r_f, phi_f), (r_e, phi_e), enc in zip(coarse, fine, exact, encoded, strict=True):
        assert r_f.shape == r_c.shape == r_e.shape == (model.config.hidden_size, len(enc))
        assert _relative(r_f, r_c) <= 1e-5 and _relative(r_e, r_c) <= 1e-5
        assert _relative(phi_f, phi_c) <= 1e-5 and _relative(phi_e, phi_c) <= 1e-5


def test_the_factor_cache_computes_each_text_once_across_calls_and_changes_nothing(tiny_bert):
    pairs_1 = [("a cat sat", "the warm mat"), ("rain fell", "a cat sat")]
    pairs_2 = [("a cat sat", "rain fell"), ("quiet green hills", "the warm mat")]
    cache = bilrp.FactorCache()
    results = []
    for pairs in (pairs_1, pairs_2):
        encoded = {t: tiny_bert.tokenizer.encode(t) for pair in pairs for t in pair}
        results += bilrp.explain_encoded_pairs(tiny_bert, pairs, encoded, cache=cache, batch_size=2)
    assert cache.computed == 4 and cache.hits == 3  # 4 distinct texts; 3 of them again in call 2
    plain = bilrp.explain_pairs(tiny_bert, pairs_1 + pairs_2, progress=False)
    for got, want in zip(results, plain, strict=True):
        assert _relative(got.relevance, want.relevance) <= 1e-5
        assert got.similarity == pytest.approx(want.similarity, rel=1e-6)


def test_the_factor_cache_keeps_to_its_byte_budget(tiny_bert):
    encoded = tiny_bert.encode(_texts([3, 4, 5, 6]))
    values = bilrp.text_relevances(tiny_bert, encoded)
    one = sum(v.nbytes for v in values[0])
    cache = bilrp.FactorCache(max_bytes=2 * one + one // 2)
    for enc, value in zip(encoded, values, strict=True):
        cache.put(cache.key(enc), value)
    assert cache.bytes <= cache.max_bytes
    assert cache.key(encoded[-1]) in cache and cache.key(encoded[0]) not in cache  # oldest out first


def _dot_count(model, ops_name: str, length: int = 16) -> int:
    batch = pad_batch(model.encode(["the cat sat on a warm mat"]), length)
    ids, types, mask = (jnp.asarray(a) for a in batch)
    lowered = bilrp.token_relevance.lower(
        model.params, None, ids, types, mask, config=model.config, pooling="mean",
        ops=composite(ops_name), mode="forward", chunk_size=length, explain_input="embedding")
    return len(re.findall(r"\bdot_general\b", lowered.as_text()))


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt_neo"])
def test_the_forward_engine_has_no_query_or_key_tangent_matmuls(fixture, request):
    """Per layer the primal pass has 8 matmuls (Q, K, V, O, scores, mixing, 2 MLP); under the
    detached softmax the tangents need only 5 (V, mixing, O, 2 MLP). The plain composite keeps the
    Q, K and score tangents (5 more). The lowered program must have exactly 13 per layer."""
    model = request.getfixturevalue(fixture)
    layers = model.config.num_layers
    assert _dot_count(model, "lrp") == 13 * layers
    assert _dot_count(model, "plain") == 18 * layers


def test_useful_flops_count_the_tangent_carrying_weights():
    from jaxsim.models.config import BertConfig

    minilm_shape = BertConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12,
                              intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
                              layer_norm_eps=1e-12, gelu_approximate=False, pad_token_id=0)
    assert cost.tangent_params(minilm_shape) == 6 * (2 * 384 * 384 + 2 * 384 * 1536) == 8_847_360
    assert cost.useful_flops(minilm_shape, 15) == 2 * 15 * 15 * 8_847_360


def test_a_corpus_run_computes_each_distinct_text_once_and_accounts_its_work(tiny_bert, tmp_path):
    from jaxsim.corpus import iter_records, run

    pairs = [("a cat sat", "the warm mat"), ("rain fell", "a cat sat"), ("a cat sat", "rain fell"),
             ("the warm mat", "quiet hills"), ("rain fell", "the warm mat"), ("quiet hills", "a cat sat")]
    source = tmp_path / "pairs.tsv"
    source.write_text("sentence1\tsentence2\n" + "".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    once = run(source, tmp_path / "once", model=tiny_bert, store="full", shard_size=2, progress=False)
    per_shard = run(source, tmp_path / "per_shard", model=tiny_bert, store="full", shard_size=2,
                    progress=False, factor_cache_bytes=0, length_classes="buckets")
    assert once.work.texts == 4 and once.work.reused > 0  # 4 distinct texts over 3 shards
    assert per_shard.work.texts > once.work.texts       # recomputed in every shard they appear in
    assert "useful work" in once.format() and "GEMM peak" in once.format()
    expected = sum(cost.useful_flops(tiny_bert.config, len(tiny_bert.tokenizer.encode(t)))
                   for t in {t for pair in pairs for t in pair})
    assert once.work.flops == pytest.approx(expected)
    a = {r["id"]: np.asarray(r["relevance"]) for r in iter_records(tmp_path / "once")}
    b = {r["id"]: np.asarray(r["relevance"]) for r in iter_records(tmp_path / "per_shard")}
    assert a.keys() == b.keys() and all(_relative(a[k], b[k]) <= 1e-5 for k in a)


class _FakeAccelerator:
    """A device with 16 GiB of memory, as ``memory_stats`` reports it on a GPU."""

    platform = "gpu"

    def memory_stats(self):
        return {"bytes_limit": 16 * 2**30}


def test_the_batch_size_comes_from_the_device_memory_per_length_class():
    from jaxsim.models.config import BertConfig

    minilm = BertConfig(vocab_size=10, hidden_size=384, num_layers=6, num_heads=12,
                        intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
                        layer_norm_eps=1e-12, gelu_approximate=False, pad_token_id=0)
    texts = bilrp.memory_batch_size(minilm, _FakeAccelerator(), devices=2)
    sizes = [texts(n) for n in (8, 32, 64, 128, 256, 512)]
    assert sizes[0] == 2 * bilrp.MAX_BATCH  # short texts: the cap
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] >= 2 and all(s % 2 == 0 for s in sizes)
    row_bytes = 4 * (2 * 1536 + 8 * 384)  # a 128-token text: 128 passes x 128 positions
    assert texts(128) == 2 * int(bilrp.MEMORY_FRACTION * 16 * 2**30 // (128 * 128 * row_bytes))
    assert bilrp.memory_batch_size(minilm, jax.devices("cpu")[0], devices=3) == 3 * bilrp.CPU_BATCH


def test_plans_with_a_batch_size_per_length_class_keep_every_item_once():
    lengths = [3, 30, 4, 31, 5, 29, 6, 7, 8, 9, 10, 11]
    plans = plan_batches(lengths, lambda length: 2 if length > 16 else 4, fill=False,
                         length_classes="fine")
    assert sorted(i for p in plans for i in p.indices) == list(range(len(lengths)))
    assert [len(p.indices) for p in plans] == [4, 4, 2, 2]  # cut from the longest down
    assert all(len(p.indices) <= (2 if p.length > 16 else 4) for p in plans)
    assert plans == plan_batches(lengths, lambda length: 2 if length > 16 else 4, fill=False,
                                 length_classes="fine")


def test_a_batch_size_per_length_class_gives_the_same_relevance(tiny_bert):
    encoded = tiny_bert.encode(_texts([2, 5, 9, 13, 17, 3, 4]))
    fixed = bilrp.text_relevances(tiny_bert, encoded, batch_size=2, length_classes="fine")
    varied = bilrp.text_relevances(tiny_bert, encoded, batch_size=lambda n: 3 if n <= 8 else 1,
                                   length_classes="fine")
    for (r_a, phi_a), (r_b, phi_b) in zip(fixed, varied, strict=True):
        assert _relative(r_b, r_a) <= 1e-5 and _relative(phi_b, phi_a) <= 1e-5
