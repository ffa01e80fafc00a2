"""jaxsim BiLRP / H×P against the independent PyTorch twin (``benchmarks/torch_reference.py``).

On the real all-MiniLM-L6-v2: the twin's plain forward reproduces Hugging Face; jaxsim's BiLRP
(rules on) and H×P (rules off) token-pair relevance agree with the twin to 1e-4 relative
Frobenius error; the twin's reference-style loop equals its vectorised engines.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from benchmarks import torch_reference as tr  # noqa: E402
from jaxsim.explain import explain_pair  # noqa: E402

PAIRS = [
    ("A man is playing a guitar.", "A person plays an instrument."),
    ("The cat sat on the mat.", "A dog is lying on the rug near the fireplace."),
    ("Stocks fell sharply on Monday after weak earnings reports.", "Markets dropped."),
]
SHORT_PAIR = ("A man sings.", "A woman is singing.")
TOLERANCE = 1e-4


def rel_frobenius(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Short texts: one thread is faster, and immune to OpenMP stalls on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hf(minilm_dir):
    return tr.load_hf(str(minilm_dir))


@pytest.fixture(scope="module")
def weights(hf):
    return tr.BertWeights.from_hf(hf[0])


@pytest.mark.parametrize("text", [PAIRS[0][0], PAIRS[1][1], PAIRS[2][0]])
def test_twin_reproduces_hugging_face(hf, weights, text):
    model, tokenizer = hf
    ids = tr.tokenize(tokenizer, text)
    expected = tr.hf_last_hidden_state(model, ids)
    for rules in (tr.PLAIN, tr.LRP):  # the rules change gradients only, never values
        err = (tr.twin_last_hidden_state(weights, ids, rules) - expected).abs().max().item()
        kind = "rules" if rules.attention else "plain"
        print(f"twin vs HF last hidden state ({kind}): {err:.2e}")
        assert err <= 1e-5


@pytest.mark.parametrize("pair", PAIRS, ids=["guitar", "cat", "stocks"])
def test_bilrp_matches_torch_twin(minilm, hf, weights, pair):
    twin = tr.vectorised_jvp(weights, hf[1], *pair, rules=tr.LRP)
    ours = explain_pair(minilm, *pair, method="bilrp", mode="forward")
    assert ours.relevance.shape == twin.relevance.shape
    err = rel_frobenius(ours.relevance, twin.relevance)
    print(f"BiLRP jaxsim vs torch twin {pair[0][:20]!r}: rel. Frobenius error {err:.2e}")
    assert err <= TOLERANCE
    assert ours.similarity == pytest.approx(twin.similarity, rel=1e-5)


def test_bilrp_reverse_matches_torch_twin(minilm, hf, weights):
    twin = tr.vectorised_jvp(weights, hf[1], *PAIRS[0], rules=tr.LRP)
    ours = explain_pair(minilm, *PAIRS[0], method="bilrp", mode="reverse")
    err = rel_frobenius(ours.relevance, twin.relevance)
    print(f"BiLRP jaxsim reverse vs torch twin: rel. Frobenius error {err:.2e}")
    assert err <= TOLERANCE


@pytest.mark.parametrize("pair", PAIRS[:2], ids=["guitar", "cat"])
def test_hxp_matches_torch_twin_without_rules(minilm, hf, weights, pair):
    twin = tr.vectorised_jvp(weights, hf[1], *pair, rules=tr.PLAIN)
    ours = explain_pair(minilm, *pair, method="hxp", mode="auto")
    err = rel_frobenius(ours.relevance, twin.relevance)
    print(f"H×P jaxsim vs torch twin (rules off) {pair[0][:20]!r}: rel. Frobenius error {err:.2e}")
    assert err <= TOLERANCE
    bilrp = tr.vectorised_jvp(weights, hf[1], *pair, rules=tr.LRP)
    assert rel_frobenius(bilrp.relevance, twin.relevance) > 1e-2  # the rules matter


def test_reference_loop_equals_vectorised(hf, weights):
    """The loop with the published ``.detach()`` spelling vs torch.func with detached inputs."""
    loop = tr.reference_loop(weights, hf[1], *SHORT_PAIR, rules=tr.LRP_PUBLISHED)
    vjp = tr.vectorised_vjp(weights, hf[1], *SHORT_PAIR, rules=tr.LRP)
    jvp = tr.vectorised_jvp(weights, hf[1], *SHORT_PAIR, rules=tr.LRP)
    err_vjp = rel_frobenius(vjp.relevance, loop.relevance)
    err_jvp = rel_frobenius(jvp.relevance, loop.relevance)
    print(f"torch loop vs vmap(vjp) {err_vjp:.2e}, vs vmap(jvp) {err_jvp:.2e}")
    assert err_vjp <= 1e-5 and err_jvp <= 1e-5
    np.testing.assert_allclose(loop.phi_a, vjp.phi_a, rtol=1e-6, atol=1e-7)
