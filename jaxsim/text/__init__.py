"""Tokenisation, length buckets and the word-piece -> word map."""

from jaxsim.text.buckets import (
    BUCKETS,
    LENGTH_CLASSES,
    Batch,
    BatchPlan,
    BatchSize,
    LengthClasses,
    adaptive_lengths,
    batches_by_bucket,
    bucket_length,
    fine_length,
    map_batches,
    map_encoded,
    pad_batch,
    plan_batches,
)
from jaxsim.text.tokenizer import Encoded, TextTokenizer, TruncationWarning, encode_pairs, load_tokenizer
from jaxsim.text.words import aggregate, token_word_ids, word_spans

__all__ = [
    "BUCKETS", "LENGTH_CLASSES", "Batch", "BatchPlan", "BatchSize", "Encoded", "LengthClasses",
    "TextTokenizer", "TruncationWarning", "adaptive_lengths", "aggregate", "batches_by_bucket",
    "bucket_length", "encode_pairs", "fine_length", "load_tokenizer", "map_batches", "map_encoded",
    "pad_batch", "plan_batches", "token_word_ids", "word_spans",
]
