"""``jaxsim index`` (build a search index of embeddings and BiLRP factors) and ``jaxsim search``
(rank an index for a query and explain every hit from the stored factors): ``jaxsim.index``."""

from __future__ import annotations

import argparse


def cmd_index(args: argparse.Namespace) -> int:
    from jaxsim.index import build
    from jaxsim.index.store import read_index
    from jaxsim.model import load_model

    read_index(args.out)  # a folder that is not ours is refused before the model loads
    if args.multihost:  # before load_model touches a device
        from jaxsim.corpus.sharding import initialize_multihost

        initialize_multihost(args.coordinator, args.num_processes, args.process_id)
    model = load_model(args.model, pooling=args.pooling, allow_pickle=args.allow_pickle,
                       weights_dir=args.weights_dir, use_cache=not args.multihost)
    summary = build(
        args.input, args.out, model=model, factors=args.factors, shard_size=args.shard_size,
        resume=args.resume, batch_size=args.batch_size, devices=args.devices,
        multihost=args.multihost, truncate=args.truncate, similarity=args.similarity,
        mode=args.mode, progress=not args.no_progress,
    )
    print(summary.format())
    return 0


def queries_of(args: argparse.Namespace) -> list[str]:
    from jaxsim.cli.args import read_lines
    from jaxsim.errors import JaxsimError

    if (args.query is None) == (args.queries is None):
        raise JaxsimError("give one query, or --queries FILE (one query per line), not both")
    return [args.query] if args.query is not None else read_lines(args.queries)[0]


def cmd_search(args: argparse.Namespace) -> int:
    from jaxsim.cli.args import output_file
    from jaxsim.index import Index
    from jaxsim.index.store import read_index

    queries = queries_of(args)
    out = output_file(args.out) if args.out else None  # before the slow part
    model = None
    if args.model is not None:  # another model than the one recorded: loaded, then checked
        from jaxsim.model import load_model

        record = read_index(args.index) or {}
        model = load_model(args.model, pooling=record.get("pooling"), allow_pickle=args.allow_pickle,
                           weights_dir=args.weights_dir)
    index = Index.open(args.index, model, devices=args.devices, verify=args.verify,
                       weights_dir=args.weights_dir)
    results = index.search_many(queries, k=args.top_k, explain=args.explain)
    if args.format == "json":  # one object per query, one per line
        text = "\n".join(r.to_json() for r in results)
    elif args.format == "html":
        from jaxsim.viz.search import search_html

        text = search_html(results)
    else:
        from jaxsim.viz.terminal import printable

        text = "\n\n".join(printable(r.show(), keep="\n") for r in results)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.format} results of {len(results)} quer{'y' if len(results) == 1 else 'ies'} "
              f"to {out}")
    else:
        print(text)
    return 0


def add_index_parsers(sub: argparse._SubParsersAction) -> None:
    from jaxsim.cli.args import add_model_args, positive_int
    from jaxsim.explain.bilrp import MODES
    from jaxsim.index.build import SIMILARITIES
    from jaxsim.index.store import FACTOR_DTYPES

    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "index", help="index documents: embeddings and BiLRP factors in resumable shards",
        formatter_class=raw,
        epilog="examples:\n"
               "  jaxsim index --input sentences.txt --out idx\n"
               "  jaxsim index --input docs.jsonl --out idx --factors fp32 --shard-size 512 --resume\n"
               "  XLA_FLAGS=--xla_force_host_platform_device_count=8 jaxsim index --input docs.parquet "
               "--out idx\n"
               "output: IDX/index.json, IDX/shards/part-*.{emb,factors,offsets}.npy + .docs.jsonl, "
               "IDX/errors.jsonl (docs/guide.md: Search a collection, then explain the hits)",
    )
    add_model_args(p)
    p.add_argument("--input", required=True,
                   help="documents: *.txt (one per line), *.jsonl (a 'text' field, optional 'id') or "
                        "*.parquet (a 'text' column, optional 'id')")
    p.add_argument("--out", required=True, help="index folder (new, empty, or one to --resume)")
    p.add_argument("--factors", choices=list(FACTOR_DTYPES), default="fp16",
                   help="store each document's BiLRP factor r(d) as fp16 (default: half the bytes, "
                        "R within ~1e-3), fp32 (exact), or none (embeddings only; a search then "
                        "computes its hits' factors)")
    p.add_argument("--shard-size", type=positive_int, default=1024,
                   help="documents per shard, the unit of resume (default 1024)")
    p.add_argument("--resume", action="store_true", help="finish an index in OUT, skipping committed shards")
    p.add_argument("--truncate", action="store_true",
                   help="cut documents longer than the model maximum (default: report them as bad rows)")
    p.add_argument("--pooling", choices=["mean", "cls", "qkv"], default=None,
                   help="pooling (default: the model's own, e.g. mean for MiniLM)")
    p.add_argument("--similarity", choices=SIMILARITIES, default="auto",
                   help="what search ranks by and explains: auto (cosine when the model normalises "
                        "its embeddings, else dot), dot or cosine")
    p.add_argument("--mode", choices=MODES, default="auto", help="BiLRP engine (see jaxsim explain)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="texts per device step, a multiple of the device count (default 8 per device)")
    p.add_argument("--devices", type=int, default=None, help="use the first N local devices (default all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--multihost", action="store_true",
                   help="jax.distributed.initialize() first; each process indexes its own shards")
    p.add_argument("--coordinator", default=None, help="multi-host by hand: host:port of process 0")
    p.add_argument("--num-processes", type=int, default=None)
    p.add_argument("--process-id", type=int, default=None)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "search", help="search an index and explain every hit (query word ↔ document word)",
        formatter_class=raw,
        epilog="examples:\n"
               '  jaxsim search --index idx --explain "Someone plays an instrument."\n'
               '  jaxsim search --index idx --explain --format html --out hits.html "a dog runs"\n'
               "  jaxsim search --index idx --top-k 5 --explain --format json --queries queries.txt",
    )
    p.add_argument("query", nargs="?", default=None, help="the query (or --queries FILE)")
    p.add_argument("--index", required=True, help="an index folder written by jaxsim index")
    p.add_argument("--queries", default=None, help="UTF-8 file, one query per line")
    p.add_argument("--top-k", type=positive_int, default=10, help="hits per query (default 10)")
    p.add_argument("--explain", action="store_true",
                   help="explain every hit: BiLRP relevance between query and document tokens")
    p.add_argument("--format", choices=["text", "json", "html"], default="text",
                   help="text (terminal view), json (one object per query per line) or html (one page)")
    p.add_argument("--out", default=None, help="write to this file instead of stdout")
    p.add_argument("--model", default=None,
                   help="the model (default: the one the index recorded; another one is refused)")
    p.add_argument("--allow-pickle", action="store_true", help="as for jaxsim explain")
    p.add_argument("--weights-dir", default=None, help="cache of converted params (default weights/)")
    p.add_argument("--devices", type=int, default=None,
                   help="split the embeddings over the first N local devices (default all)")
    p.add_argument("--verify", action="store_true",
                   help="check every index file's sha256 first (default: sizes only)")
    p.set_defaults(func=cmd_search)
