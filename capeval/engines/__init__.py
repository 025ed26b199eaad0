"""Scoring beyond one process: ``stream`` (bounded memory on one machine) and ``dask`` (a cluster).

Both give the numbers of :func:`capeval.evaluate` (corpus scores within 1e-12, per-item scores
equal) on inputs read lazily from JSONL, CSV or Parquet shards::

    from capeval.engines import stream_evaluate, dask_evaluate
    result = stream_evaluate("refs-*.jsonl", "preds-*.jsonl", per_item="scores.csv")
    result = dask_evaluate("refs-*.jsonl", "preds-*.jsonl", workers=4)        # a local cluster
    result = dask_evaluate(refs, preds, scheduler="tcp://scheduler:8786")      # an existing one

See docs/scale.md for when to use which.
"""

from ._output import ScaleResult
from .stream import DEFAULT_CHUNK_SIZE, stream_evaluate

ENGINES = ("memory", "stream", "dask")


def dask_evaluate(*args, **kwargs) -> ScaleResult:
    """See :func:`capeval.engines.dask_engine.dask_evaluate` (imported on use: dask is optional)."""
    from .dask_engine import dask_evaluate as run

    return run(*args, **kwargs)


__all__ = ["DEFAULT_CHUNK_SIZE", "ENGINES", "ScaleResult", "dask_evaluate", "stream_evaluate"]
