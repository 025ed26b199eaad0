"""The ``capeval score --engine {memory,stream,dask}`` options (kept here: cli.py only calls in)."""

from __future__ import annotations

from . import ENGINES
from .stream import DEFAULT_CHUNK_SIZE


def add_arguments(parser) -> None:
    group = parser.add_argument_group("engines (inputs beyond memory, see docs/scale.md)")
    group.add_argument("--engine", choices=ENGINES, default="memory", help="memory (default), stream (bounded memory) or dask (a cluster); REFS and PREDS may then be globs of JSONL/CSV/Parquet shards")
    group.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="N", help=f"items per chunk (stream) or partition (dask); default {DEFAULT_CHUNK_SIZE}")
    group.add_argument("--workers", type=int, metavar="N", help="dask: a local cluster of N worker processes (default: one per core)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="dask: the scheduler of an existing cluster, e.g. tcp://10.0.0.5:8786")


def score(args, metrics):
    """Run ``capeval score`` on the stream or dask engine; the per-item file is written by the engine."""
    from ..cli import UsageError

    if args.ci:
        raise UsageError(f"--ci needs --engine memory (the bootstrap resamples per-item statistics held in memory), not {args.engine}")
    if args.lenient:
        raise UsageError(f"--lenient needs --engine memory: the {args.engine} engine reads both sides in the same id order")
    if args.engine != "dask" and (args.workers or args.scheduler):
        raise UsageError("--workers and --scheduler go with --engine dask")
    if args.chunk_size < 1:
        raise UsageError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    common = dict(
        tokenizer=args.tokenizer,
        df=args.df,
        n=args.n,
        sigma=args.sigma,
        per_item=args.per_item,
        refs_format=args.refs_format,
        preds_format=args.preds_format,
        split=args.split,
    )
    if args.engine == "stream":
        from .stream import stream_evaluate

        return stream_evaluate(args.refs, args.preds, metrics, chunk_size=args.chunk_size, **common)
    from .dask_engine import dask_evaluate

    return dask_evaluate(args.refs, args.preds, metrics, partition_size=args.chunk_size, workers=args.workers, scheduler=args.scheduler, **common)
