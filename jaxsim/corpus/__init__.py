"""Corpus-scale explanation: streamed input, sharded devices, resumable shard output.

``run(input, out, ...)`` (and ``jaxsim corpus``) explains every pair of a TSV/JSONL/Parquet
file; ``iter_records(out)`` reads the committed results back. See README "Corpus runs".
"""

from jaxsim.corpus.progress import CorpusSummary
from jaxsim.corpus.runner import METHODS, run
from jaxsim.corpus.shards import iter_records
from jaxsim.corpus.store import Store, parse_store

__all__ = ["METHODS", "CorpusSummary", "Store", "iter_records", "parse_store", "run"]
