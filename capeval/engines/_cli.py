"""The ``capeval score --engine {memory,stream,dask}`` options (cli.py adds them and runs the engines)."""

from __future__ import annotations

from . import ENGINES
from .stream import DEFAULT_CHUNK_SIZE


def add_arguments(parser) -> None:
    group = parser.add_argument_group("engines (inputs beyond memory, see docs/scale.md)")
    group.add_argument("--engine", choices=ENGINES, default="memory", help="memory (default), stream (bounded memory) or dask (a cluster); REFS and PREDS may then be globs of JSONL/CSV/Parquet shards")
    group.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, metavar="N", help=f"items per chunk (stream) or partition (dask); default {DEFAULT_CHUNK_SIZE}")
    group.add_argument("--workers", type=int, metavar="N", help="dask: a local cluster of N worker processes (default: one per core)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="dask: the scheduler of an existing cluster, e.g. tcp://10.0.0.5:8786")
    group.add_argument("--spool-dir", metavar="DIR", help="stream: where the tokenized spool and the document-frequency buckets go (about the size of the inputs); default: the system temporary directory ($TMPDIR)")
