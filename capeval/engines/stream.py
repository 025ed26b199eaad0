"""``stream_evaluate``: score inputs larger than memory, chunk by chunk, with evaluate()'s numbers.

Two passes when CIDEr / CIDEr-D need the corpus document frequencies (the default ``df=None``):

1. read, validate and tokenize the inputs chunk by chunk (with the tokenizer's look-ahead across
   chunk boundaries); count each chunk's reference n-grams into bucket files on disk (exact n-gram
   rows; :mod:`capeval.engines._spill`), reduce them bucket by bucket; spool the tokenized chunks to
   a temporary file;
2. read the spool back chunk by chunk and score it against the frequencies of *all* references
   (``ref_len = log(total items)``), summing each metric's sufficient statistics and writing
   per-item scores as they are produced (committed atomically at the end).

Without corpus document frequencies (no CIDEr, or ``df=`` given) one pass suffices. Peak memory is
one chunk, one bucket of the document frequencies, the vocabulary and 8 bytes per id (duplicate
detection), not the corpus.
"""

from __future__ import annotations

import pickle
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .._corpus import ScoringCorpus
from ..metrics import SIGMA
from . import _adapter as adapter
from ._output import PerItemSink, ScaleResult
from ._source import Chunk, IdRegistry, ItemSource, tokenize_chunk, with_lookahead
from ._spill import FrequencySpill

DEFAULT_CHUNK_SIZE = 20_000


class _Spool:
    """Tokenized chunks written once and read back once, in order (a file of the job's temporary directory)."""

    def __init__(self, directory):
        self._fh = open(Path(directory) / "chunks.spool", "w+b")  # noqa: SIM115 - closed by close()

    def write(self, chunk: Chunk) -> None:
        pickle.dump(chunk, self._fh, protocol=pickle.HIGHEST_PROTOCOL)

    def read(self) -> Iterator[Chunk]:
        self._fh.flush()
        self._fh.seek(0)
        while True:
            try:
                yield pickle.load(self._fh)
            except EOFError:
                return

    def close(self) -> None:
        self._fh.close()


def stream_evaluate(
    refs,
    preds,
    metrics=None,
    *,
    tokenizer: str = "ptb",
    df=None,
    n: int = 4,
    sigma: float = SIGMA,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    per_item=None,
    collect_per_item: bool = False,
    refs_format: str = "auto",
    preds_format: str = "auto",
    split: str | None = None,
    meteor_options=None,
    allow_df_mismatch: bool = False,
    spool_dir=None,
) -> ScaleResult:
    """Score ``preds`` against ``refs`` chunk by chunk; the numbers of :func:`capeval.evaluate`.

    ``refs`` / ``preds``: a path, a glob (``"refs-*.jsonl"``) or a list of them (JSONL, CSV, Parquet
    read lazily; other formats of :mod:`capeval.formats` read whole), or in-memory mappings as for
    ``evaluate``. Both sides must list the same ids in the same order. ``per_item``: a ``.csv``,
    ``.jsonl`` or ``.json`` path for per-item scores (written as produced, renamed into place at the
    end); ``collect_per_item=True`` also returns them as ``result.per_item``. ``metrics``,
    ``tokenizer``, ``df``, ``n``, ``sigma``, ``meteor_options``, ``allow_df_mismatch``: as for ``evaluate``.
    """
    plan = adapter.MetricPlan.build(metrics, tokenizer=tokenizer, n=n, sigma=sigma, df=df, meteor_options=meteor_options, allow_df_mismatch=allow_df_mismatch)
    source = ItemSource(refs, preds, refs_format=refs_format, preds_format=preds_format, split=split)
    started = time.perf_counter()
    ids_seen = IdRegistry(source)
    tokenized = (tokenize_chunk(c, ra, pa, plan.tokenizer) for c, ra, pa in with_lookahead(source.chunks(chunk_size, ids_seen)))
    handles: dict = {}
    spool = workdir = None
    try:
        handles, skipped = adapter.start(plan, chunk_size)
        with PerItemSink(per_item, collect_per_item) as sink:
            state = None
            if plan.needs_corpus_state:  # pass 1: document frequencies of all references
                workdir = tempfile.TemporaryDirectory(dir=spool_dir, prefix="capeval-stream-")
                spool, spill = _Spool(workdir.name), FrequencySpill(workdir.name, plan.n)
                for chunk in tokenized:
                    spill.add(chunk.references)
                    spool.write(chunk)
                ids_seen.check()
                state = spill.finish()
                tokenized = spool.read()
            totals = adapter.RunningTotals(plan, sink)
            for chunk in tokenized:  # pass 2 (or the only pass): statistics chunk by chunk
                totals.add(adapter.score_chunk(ScoringCorpus(chunk.predictions, chunk.references, chunk.ids), state, plan, handles))
            if not plan.needs_corpus_state:
                ids_seen.check()
            result = totals.result("stream", skipped, {"chunks": totals.n_chunks, "chunk_size": chunk_size})
    finally:
        if spool is not None:
            spool.close()
        if workdir is not None:
            workdir.cleanup()
        adapter.end(plan, handles)
    result.details["seconds"] = time.perf_counter() - started
    return result
