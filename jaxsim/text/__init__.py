"""Tokenisation, length buckets and the word-piece -> word map."""

from jaxsim.text.buckets import BUCKETS, Batch, batches_by_bucket, bucket_length, pad_batch
from jaxsim.text.tokenizer import Encoded, TextTokenizer, TruncationWarning, encode_pairs, load_tokenizer
from jaxsim.text.words import aggregate, token_word_ids, word_spans

__all__ = [
    "BUCKETS", "Batch", "Encoded", "TextTokenizer", "TruncationWarning", "aggregate",
    "batches_by_bucket", "bucket_length", "encode_pairs", "load_tokenizer", "pad_batch", "token_word_ids",
    "word_spans",
]
