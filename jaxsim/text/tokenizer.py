"""Tokenisation with the model's own fast tokenizer, padding and truncation set explicitly.

Policy for long texts: **truncate with a warning** to the model maximum (sentence-transformers'
``max_seq_length`` when the folder declares one, else the model's position count). Empty or
whitespace-only text is refused with ``InputTextError``, and a text with no content with
``NoContentError`` (see ``has_content``).

Content: a text has content when at least one of its tokens is not a special token (neither
added by the template nor a special token's id, e.g. a literal ``[CLS]`` or ``[PAD]`` in the
text) and its source characters include one that is not a control, format (zero-width, bidi,
soft hyphen), surrogate, private-use, unassigned or separator character, nor U+FFFD. So
``"\u200b"``, ``"\x1b\x07"``, ``"\ufffd"`` and ``"[CLS] [SEP]"`` have none; an emoji (``[UNK]``
from a real symbol) has content.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from jaxsim.errors import InputTextError, ModelNotFoundError, NoContentError
from jaxsim.text.words import token_word_ids, word_spans


class TruncationWarning(UserWarning):
    """A text was longer than the model allows and was cut."""


def is_content_char(char: str) -> bool:
    """Not a control/format/surrogate/private/unassigned (C*) or separator (Z*) character,
    nor U+FFFD (what a decoder puts for bytes it could not read)."""
    return char != "\ufffd" and unicodedata.category(char)[0] not in "CZ"


def has_content(text: str, offsets, special, ids, special_ids: frozenset[int]) -> bool:
    """Whether a tokenised text has a content token (module docstring): not special by the
    template's mask nor by id, with a content character in its source span."""
    return any(
        not is_special and token_id not in special_ids
        and any(is_content_char(c) for c in text[start:end])
        for (start, end), is_special, token_id in zip(offsets, special, ids, strict=True)
    )


def _no_content(what: str) -> NoContentError:
    return NoContentError(
        f"{what} has no content (only zero-width, control or U+FFFD characters, or special "
        "tokens): pass a text with words"
    )


@dataclasses.dataclass(frozen=True)
class Encoded:
    """One tokenised text (or text pair), unpadded.

    ids, type_ids: i32[n]; tokens: the word pieces (specials included);
    word_ids: i32[n] word index per piece (-1 for specials and prompt pieces); words: the word
    strings; segment: i32[n] 0 for text a, 1 for text b (pairs), -1 for specials.
    prompt: the sentence-transformers prompt put before ``text`` (``""``: none);
    prompt_tokens: bool[n], True for the prompt's pieces (None without a prompt). They belong to
    no word of ``text``, so word-level views drop them as they drop [CLS]/[SEP].
    """

    text: str
    ids: np.ndarray
    type_ids: np.ndarray
    tokens: list[str]
    special: np.ndarray
    word_ids: np.ndarray
    words: list[str]
    truncated: bool
    prompt: str = ""
    prompt_tokens: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclasses.dataclass(frozen=True)
class TextTokenizer:
    """A fast tokenizer plus the model's maximum length."""

    tokenizer: Tokenizer
    max_length: int
    mask_token_id: int | None
    pad_token_id: int
    special_ids: frozenset[int] = frozenset()

    def check_text(self, text: object, what: str = "text") -> str:
        """The text, or ``InputTextError`` (not a string, blank) / ``NoContentError`` (no
        content character at all: the check that needs no tokens)."""
        if not isinstance(text, str):
            raise InputTextError(f"{what} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InputTextError(f"{what} is empty or whitespace-only: pass a non-empty string")
        if not any(is_content_char(c) for c in text):
            raise _no_content(what)
        return text

    def check_content(self, text: object, what: str = "text") -> str:
        """``check_text`` and the token check of ``encode`` (the text is tokenised)."""
        self.encode(text, what)
        return text  # type: ignore[return-value]

    def encode(self, text: str, what: str = "text", prompt: str = "") -> Encoded:
        """``[CLS] text [SEP]`` (or the model's own template), truncated with a warning.

        prompt: a sentence-transformers prompt (e5's ``"query: "``) tokenised in front of the
        text, as sentence-transformers does; its pieces are marked in ``prompt_tokens``."""
        text = self.check_text(text, what)
        return self._encoded(text, self.tokenizer.encode(prompt + text), what, word_map=True,
                             prompt=prompt)

    def encode_for_embedding(self, texts: Sequence[str], prompt: str = "") -> list[Encoded]:
        """Many texts at once (the Rust tokenizer's parallel ``encode_batch``) with the same checks
        and truncation warning as ``encode``, but *without* the word map (``word_ids`` all -1,
        ``words`` empty): what ``Model.embed`` needs."""
        checked = [self.check_text(t, f"text {i}") for i, t in enumerate(texts)]
        encodings = self.tokenizer.encode_batch([prompt + t for t in checked])
        out = []  # a loop, not a comprehension: the warning's stacklevel names our caller
        for i, (text, enc) in enumerate(zip(checked, encodings, strict=True)):
            out.append(self._encoded(text, enc, f"text {i}", word_map=False, prompt=prompt))
        return out

    def _encoded(self, text: str, enc, what: str, word_map: bool, prompt: str = "") -> Encoded:
        """One ``tokenizers.Encoding`` of ``prompt + text`` as an ``Encoded``, warning if it was
        truncated; ``word_map=False`` skips the word spans (``word_ids`` all -1, ``words`` empty)."""
        truncated = bool(enc.overflowing)
        if truncated:
            warnings.warn(
                f"{what} has more than {self.max_length} tokens and was truncated to "
                f"{self.max_length} (the model maximum)", TruncationWarning, stacklevel=3,
            )
        special = np.asarray(enc.special_tokens_mask, dtype=bool)
        in_prompt = prompt_token_mask(enc.offsets, special, prompt) if prompt else None
        not_text = special if in_prompt is None else special | in_prompt  # the prompt is not content
        if not has_content(prompt + text, enc.offsets, not_text, enc.ids, self.special_ids):
            raise _no_content(what)
        if word_map:
            shift = len(prompt)
            spans = word_spans(text)
            word_ids = token_word_ids(enc.offsets, list(not_text), [(s + shift, e + shift) for s, e in spans])
            words = [text[s:e] for s, e in spans]
        else:
            word_ids, words = np.full(len(enc.ids), -1, np.int32), []
        return Encoded(
            text=text,
            ids=np.asarray(enc.ids, np.int32),
            type_ids=np.asarray(enc.type_ids, np.int32),
            tokens=list(enc.tokens),
            special=special,
            word_ids=word_ids,
            words=words,
            truncated=truncated,
            prompt=prompt,
            prompt_tokens=in_prompt,
        )

    def encode_pair(self, text_a: str, text_b: str) -> tuple[Encoded, np.ndarray]:
        """``[CLS] a [SEP] b [SEP]`` with token types 0/1, for cross-encoders.

        Returns the encoding and ``segment`` i32[n] (0 for a's pieces, 1 for b's, -1 specials).
        Word ids index ``words_a + words_b``.
        """
        text_a = self.check_text(text_a, "text a")
        text_b = self.check_text(text_b, "text b")
        enc = self.tokenizer.encode(text_a, text_b)
        if enc.overflowing:
            warnings.warn(
                f"the pair has more than {self.max_length} tokens and was truncated "
                "(longest text first)", TruncationWarning, stacklevel=2,
            )
        special = np.asarray(enc.special_tokens_mask, dtype=bool)
        seq = np.asarray([-1 if s is None else s for s in enc.sequence_ids], np.int32)
        segment = np.where(special, -1, seq).astype(np.int32)
        for part, text, what in ((0, text_a, "text a"), (1, text_b, "text b")):
            rows = np.flatnonzero(segment == part)
            if not has_content(text, [enc.offsets[t] for t in rows], special[rows],
                               [enc.ids[t] for t in rows], self.special_ids):
                raise _no_content(what)
        spans_a, spans_b = word_spans(text_a), word_spans(text_b)
        word_ids = np.full(len(enc.ids), -1, np.int32)
        for part, spans, shift in ((0, spans_a, 0), (1, spans_b, len(spans_a))):
            rows = np.flatnonzero(segment == part)
            ids = token_word_ids([enc.offsets[t] for t in rows], [False] * len(rows), spans)
            word_ids[rows] = np.where(ids >= 0, ids + shift, -1)
        words = [text_a[s:e] for s, e in spans_a] + [text_b[s:e] for s, e in spans_b]
        encoded = Encoded(
            text=f"{text_a} [SEP] {text_b}", ids=np.asarray(enc.ids, np.int32),
            type_ids=np.asarray(enc.type_ids, np.int32), tokens=list(enc.tokens), special=special,
            word_ids=word_ids, words=words, truncated=bool(enc.overflowing),
        )
        return encoded, segment


def encode_pairs(tokenizer: TextTokenizer, pairs: Sequence[tuple[str, str]]) -> list[Encoded]:
    """``[CLS] a [SEP] b [SEP]`` encodings of many pairs; one warning for all truncated pairs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        encoded = [tokenizer.encode_pair(a, b)[0] for a, b in pairs]
    cut = sum(e.truncated for e in encoded)
    if cut:
        warnings.warn(f"{cut} of {len(encoded)} pairs were longer than {tokenizer.max_length} "
                      "tokens and were truncated (longest text first)", TruncationWarning, stacklevel=2)
    return encoded


def prompt_token_mask(offsets: Sequence[tuple[int, int]], special: np.ndarray, prompt: str) -> np.ndarray:
    """``bool[n]``: the non-special pieces of ``prompt + text`` that end inside the prompt, its
    trailing spaces excluded (a piece that straddles the boundary, or is the space before the
    text's first word — a lone ``▁`` or ``Ġ`` — belongs to the text, as without a prompt)."""
    ends = np.array([e for _, e in offsets], np.int64)
    starts = np.array([s for s, _ in offsets], np.int64)
    return ~special & (ends > starts) & (ends <= len(prompt.rstrip()))


def load_tokenizer(model_dir: Path, max_length: int) -> TextTokenizer:
    """The model's fast tokenizer with padding off and truncation at ``max_length``."""
    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        tokenizer = Tokenizer.from_file(str(path))
    else:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True).backend_tokenizer
        except Exception as err:
            raise ModelNotFoundError(
                f"{model_dir} has no usable tokenizer (tokenizer.json or vocab files): {err}"
            ) from err
    # tokenizer.json may carry its own settings (all-MiniLM-L6-v2 pads to 128): override them.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    mask_id = _first_known(tokenizer, MASK_TOKENS)
    pad_id = _first_known(tokenizer, PAD_TOKENS)
    # [UNK] is not a special token here: it stands for real text the vocabulary lacks (an emoji).
    unk = getattr(tokenizer.model, "unk_token", None)
    unk_id = tokenizer.token_to_id(unk) if unk else None
    special_ids = frozenset(i for i, t in tokenizer.get_added_tokens_decoder().items()
                            if t.special and i != unk_id)
    return TextTokenizer(tokenizer, max_length, mask_id, 0 if pad_id is None else pad_id,
                         special_ids)


#: Special-token spellings: WordPiece (BERT, DistilBERT, ModernBERT), then RoBERTa / XLM-R / MPNet.
MASK_TOKENS = ("[MASK]", "<mask>")
PAD_TOKENS = ("[PAD]", "<pad>")


def _first_known(tokenizer: Tokenizer, spellings: Sequence[str]) -> int | None:
    for token in spellings:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return None
