"""``load_model`` and the ``Model`` bundle: params, config, tokenizer and pooling together.

The bundle is a frozen record; every computation is a jitted pure function that takes the
params as an *argument* (never a closed-over constant), compiled once per (batch, bucket).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from jaxsim.convert.cache import load_params
from jaxsim.convert.source import ModelSource, resolve
from jaxsim.errors import JaxsimError
from jaxsim.models import Encoder, encoder_for, packed_pooled_embeddings, pooled_embeddings
from jaxsim.models.config import ModelConfig, load_config
from jaxsim.models.pooling import POOLINGS, init_qkv_params
from jaxsim.text import Encoded, TextTokenizer, load_tokenizer, map_encoded
from jaxsim.text.packing import packed_batches

PACK_ROW_LENGTH = 64  # tokens per packed row (texts longer than this are bucket-padded instead)
PACK_TOKENS_PER_TEXT = 16  # a packed batch of ``batch_size`` holds batch_size * 16 token slots


def packing_layout(batch_size: int) -> tuple[int, int]:
    """``(rows per packed batch, most texts per row)`` that ``Model.embed(batch_size=...)`` uses:
    ``batch_size * PACK_TOKENS_PER_TEXT`` token slots; a row holds at most ``PACK_ROW_LENGTH // 4``
    texts (the shortest text is 3 tokens: [CLS] x [SEP])."""
    return max(1, batch_size * PACK_TOKENS_PER_TEXT // PACK_ROW_LENGTH), PACK_ROW_LENGTH // 4


@dataclasses.dataclass(frozen=True)
class Model:
    """A loaded model. ``params`` is the pytree; everything else is static metadata."""

    name: str
    config: ModelConfig
    params: dict
    tokenizer: TextTokenizer
    pooling: str
    normalize: bool
    pool_params: dict | None = None
    source: ModelSource | None = None
    cache_path: Path | None = None

    @property
    def encoder(self) -> Encoder:
        return encoder_for(self.config)

    def with_pooling(self, pooling: str, pool_params: dict | None = None) -> Model:
        """The same model with another pooling (``qkv`` gets fresh params unless given)."""
        if pooling not in POOLINGS:
            raise JaxsimError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
        if pooling == "qkv" and pool_params is None:
            pool_params = init_qkv_params(self.config.hidden_size)
        return dataclasses.replace(self, pooling=pooling, pool_params=pool_params)

    def prompt_text(self, prompt: str | None) -> str:
        """The text of the sentence-transformers prompt named ``prompt`` (e5's ``query`` ->
        ``"query: "``; ``ModelSource.prompt``); ``None`` -> no prompt (the folder's
        ``default_prompt_name`` is not applied implicitly: explanations say what they explain)."""
        if prompt is None:
            return ""
        if self.source is None:
            raise JaxsimError(f"{self.name} has no sentence-transformers folder, so no prompt "
                              f"{prompt!r}: drop the prompt")
        return self.source.prompt(prompt)

    def encode(self, texts: Sequence[str], prompt: str | None = None) -> list[Encoded]:
        """Tokenise (with the empty-text and truncation checks), after the named prompt."""
        if isinstance(texts, str):
            texts = [texts]
        prefix = self.prompt_text(prompt)
        return [self.tokenizer.encode(t, what=f"text {i}", prompt=prefix) for i, t in enumerate(texts)]

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, normalize: bool | None = None,
        packing: bool = True, prompt: str | None = None,
    ) -> np.ndarray:
        """Pooled embeddings ``f32[N, h]``; L2-normalised if the model's pipeline says so
        (sentence-transformers ``Normalize``) unless ``normalize`` overrides it. ``prompt``: the
        name of a sentence-transformers prompt put before every text (e5's ``query``).

        packing: lay texts of up to 64 tokens end to end in rows of 64 (``jaxsim.text.packing``:
        per-text attention mask and positions, one compilation; each batch holds
        ``batch_size * 16`` token slots); longer texts, and all texts with ``packing=False``, are
        sorted by length and padded to their bucket, ``batch_size`` texts per batch."""
        if isinstance(texts, str):
            texts = [texts]
        encoded = self.tokenizer.encode_for_embedding(texts, prompt=self.prompt_text(prompt))
        out = np.zeros((len(encoded), self.config.hidden_size), np.float32)
        packs = [packing and len(e) <= PACK_ROW_LENGTH for e in encoded]
        packed = [i for i, p in enumerate(packs) if p]
        padded = [i for i, p in enumerate(packs) if not p]
        self._embed_packed([encoded[i] for i in packed], packed, batch_size, out)
        self._embed_bucketed([encoded[i] for i in padded], padded, batch_size, out)
        if self.normalize if normalize is None else normalize:
            out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        return out

    def _embed_bucketed(
        self, encoded: list[Encoded], where: list[int], batch_size: int, out: np.ndarray
    ) -> None:
        """Write the pooled embedding of ``encoded[j]`` to ``out[where[j]]`` (bucket padding)."""
        vectors = map_encoded(
            encoded, batch_size=batch_size, max_length=self.tokenizer.max_length,
            pad_id=self.tokenizer.pad_token_id, unpack=lambda v, row, i: v[row],
            compute=lambda batch: pooled_embeddings(
                self.params, self.pool_params, *(jnp.asarray(a) for a in batch),
                config=self.config, pooling=self.pooling,
            ),
        )
        for j, vector in enumerate(vectors):
            out[where[j]] = vector

    def _embed_packed(
        self, encoded: list[Encoded], where: list[int], batch_size: int, out: np.ndarray
    ) -> None:
        """As ``_embed_bucketed`` with packed rows (every text <= ``PACK_ROW_LENGTH`` tokens)."""
        if not encoded:
            return
        rows, max_segments = packing_layout(batch_size)
        for batch, placements in packed_batches(
            encoded, rows, PACK_ROW_LENGTH, max_segments, self.tokenizer.pad_token_id
        ):
            vectors = np.asarray(packed_pooled_embeddings(
                self.params, self.pool_params, *(jnp.asarray(a) for a in batch),
                config=self.config, pooling=self.pooling, max_segments=max_segments,
            ))
            for p in placements:
                out[where[p.text]] = vectors[p.row, p.segment - 1]

    def explain(self, text_a: str, text_b: str, method: str = "bilrp", **options):
        """Explain the pair's similarity (``jaxsim.explain.explain_pair``) -> PairExplanation."""
        from jaxsim.explain import explain_pair

        return explain_pair(self, text_a, text_b, method=method, **options)

    def explain_pairs(self, pairs, method: str = "bilrp", batch_size: int = 8, **options):
        """Explain many ``(text_a, text_b)`` pairs with a progress bar -> list[PairExplanation]."""
        from jaxsim.explain import explain_pairs

        return explain_pairs(self, pairs, method=method, batch_size=batch_size, **options)

    def similarity(self, text_a: str, text_b: str, prompt: str | None = None) -> float:
        """Cosine similarity of the two texts' pooled embeddings (after the named prompt)."""
        a, b = self.embed([text_a, text_b], batch_size=2, normalize=True, prompt=prompt)
        return float(a @ b)


def load_model(
    name_or_path: str | Path | None = None,
    *,
    pooling: str | None = None,
    allow_pickle: bool = False,
    weights_dir: str | Path | None = None,
    use_cache: bool = True,
    max_length: int | None = None,
) -> Model:
    """Load a model: the embedded all-MiniLM-L6-v2 by default, a local folder or a cached hub id.

    pooling: ``cls | mean | qkv``; default = the sentence-transformers folder's pooling, else mean.
    allow_pickle: read ``pytorch_model.bin`` checkpoints (off by default; loaded with
        ``torch.load(weights_only=True)``, which builds tensors only, but pickles stay a format
        that can carry code: trusted sources only).
    weights_dir: where converted params are cached (default ``weights/``, see README).
    """
    source = resolve(name_or_path)
    config = load_config(source.model_dir)
    params, cache_path = load_params(
        source, config, allow_pickle=allow_pickle,
        weights_root=Path(weights_dir) if weights_dir else None, use_cache=use_cache,
    )
    limit = max_length or source.max_seq_length or config.max_position_embeddings
    limit = min(limit, config.max_position_embeddings)
    model = Model(
        name=source.name, config=config, params=params,
        tokenizer=load_tokenizer(source.model_dir, limit),
        pooling=source.pooling or "mean", normalize=source.normalize, source=source,
        cache_path=cache_path,
    )
    if pooling is not None and pooling != model.pooling:
        model = model.with_pooling(pooling)
    elif pooling == "qkv":
        model = model.with_pooling("qkv")
    return model
