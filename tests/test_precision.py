"""``--precision fp32|tf32|bf16``: the rounding is the tensor cores' (checked against a numpy
bit-level round-to-nearest-even), fp32 changes nothing, and the reduced precisions cost a small,
ordered amount of faithfulness (tf32 < bf16) while conservation still holds closely."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsim
from jaxsim.errors import OptionError
from jaxsim.explain import bilrp, explain_pair
from jaxsim.explain.rules import composite
from jaxsim.models import PLAIN_OPS, pooled_embeddings
from jaxsim.models.precision import matmul_precision, precision_ops
from jaxsim.text import pad_batch
from tests import tiny_models

PAIRS = [("a cat sat on the warm mat", "the dog slept near a fire"),
         ("rain fell over quiet green hills", "an old stone town in the rain")]


def _round_numpy(x: np.ndarray, mantissa_bits: int) -> np.ndarray:
    """float32 -> nearest (ties to even) float with ``mantissa_bits`` kept, by integer bit
    arithmetic: an independent reference for ``lax.reduce_precision``."""
    drop = 23 - mantissa_bits
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    half = (1 << (drop - 1)) - 1
    u = (u + half + ((u >> drop) & 1)) & ~np.uint64((1 << drop) - 1)
    return u.astype(np.uint32).view(np.float32)


def test_fp32_leaves_the_ops_alone_and_unknown_names_are_refused():
    ops = composite("lrp")
    assert precision_ops(ops, "fp32", "cpu") is ops
    assert precision_ops(ops, "bf16", "gpu") is ops  # the hardware preset does it there
    assert precision_ops(ops, "bf16", "cpu") is precision_ops(ops, "bf16", "cpu")  # jit stays warm
    with pytest.raises(OptionError, match="fp32, tf32, bf16"):
        precision_ops(ops, "fp16", "cpu")


@pytest.mark.parametrize(("precision", "bits"), [("tf32", 10), ("bf16", 7)])
def test_reduced_precision_matmuls_round_both_operands_and_accumulate_in_float32(precision, bits):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 64)).astype(np.float32)
    kernel = rng.normal(size=(64, 7)).astype(np.float32)
    bias = rng.normal(size=7).astype(np.float32)
    ops = precision_ops(PLAIN_OPS, precision, "cpu")
    with matmul_precision(precision, "cpu"):
        got = np.asarray(jax.jit(ops.dense)(x, kernel, bias))
        scores = np.asarray(ops.einsum("qd,kd->qk", x, x))
    rx, rk = _round_numpy(x, bits).astype(np.float64), _round_numpy(kernel, bits).astype(np.float64)
    np.testing.assert_allclose(got, rx @ rk + bias, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, rx @ rx.T, rtol=1e-5, atol=1e-4)
    assert np.abs(got - (x.astype(np.float64) @ kernel + bias)).max() > 1e-4  # it did round


def test_the_accelerator_presets_are_set_while_tracing():
    seen = {}
    for precision in ("fp32", "tf32", "bf16"):
        with matmul_precision(precision, "gpu"):
            seen[precision] = jax.config.jax_default_matmul_precision
    assert seen == {"fp32": "highest", "tf32": "TF32_TF32_F32", "bf16": "BF16_BF16_F32"}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_reduced_precision_costs_a_little_faithfulness_in_order(tiny_bert):
    texts = [t for pair in PAIRS for t in pair]
    encoded = tiny_bert.encode(texts)
    reference = bilrp.text_relevances(tiny_bert, encoded, precision="fp32")
    errors = {}
    for precision in ("fp32", "tf32", "bf16"):
        got = bilrp.text_relevances(tiny_bert, encoded, precision=precision)
        errors[precision] = max(_relative(r, r_ref)
                                for (r, _), (r_ref, _) in zip(got, reference, strict=True))
    assert errors["fp32"] == 0.0
    assert 0.0 < errors["tf32"] < errors["bf16"] < 0.1, errors


def test_conservation_holds_closely_at_bf16_on_a_bias_free_model(tmp_path):
    model = jaxsim.load_model(tiny_models.build_bert(tmp_path / "bert", no_bias=True), use_cache=False)
    for a, b in PAIRS:
        batch = pad_batch(model.encode([a, b]), 16)
        phi = np.asarray(pooled_embeddings(model.params, None, *(jnp.asarray(v) for v in batch),
                                           config=model.config, pooling="mean"))
        y = float(phi[0] @ phi[1])
        exact = explain_pair(model, a, b)
        rounded = explain_pair(model, a, b, precision="bf16")
        assert abs(exact.sum_relevance - y) / abs(y) <= 1e-4
        assert 0.0 < abs(rounded.sum_relevance - y) / abs(y) <= 5e-2


def test_the_corpus_records_a_reduced_precision_and_refuses_it_for_bti(tiny_bert, tmp_path):
    from jaxsim.corpus import run

    source = tmp_path / "pairs.tsv"
    source.write_text("text_a\ttext_b\n" + "".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")
    run(source, tmp_path / "bf16", model=tiny_bert, precision="bf16", progress=False)
    settings = json.loads((tmp_path / "bf16" / "run.json").read_text())
    assert settings["options"]["precision"] == "bf16"
    run(source, tmp_path / "fp32", model=tiny_bert, progress=False)
    assert "precision" not in json.loads((tmp_path / "fp32" / "run.json").read_text())["options"]
    with pytest.raises(jaxsim.JaxsimError, match="token-pair methods"):
        run(source, tmp_path / "bti", model=tiny_bert, method="bti", precision="bf16", progress=False)


def test_the_cli_takes_the_precision_for_similarity_methods_only(tiny_bert_dir, weights_dir, capsys):
    from jaxsim.cli import main

    model = ["--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir)]
    assert main(["explain", *model, "--precision", "bf16", "--format", "json", *PAIRS[0]]) == 0
    rounded = json.loads(capsys.readouterr().out)
    assert main(["explain", *model, "--format", "json", *PAIRS[0]]) == 0
    exact = json.loads(capsys.readouterr().out)
    difference = np.abs(np.asarray(rounded["relevance"]) - np.asarray(exact["relevance"])).max()
    assert 0.0 < difference <= 0.1 * np.abs(np.asarray(exact["relevance"])).max()
    assert main(["explain", *model, "--method", "bti", "--precision", "bf16", *PAIRS[0]]) == 2
    assert "--precision applies to the similarity methods" in capsys.readouterr().err
