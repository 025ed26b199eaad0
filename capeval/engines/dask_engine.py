"""``dask_evaluate``: the streaming algorithm as a Dask graph, on a local cluster or any scheduler.

The driver reads and validates the inputs lazily (as the stream engine does) and submits one
partition at a time, each with the look-ahead captions its tokenization needs. On the workers:

1. ``tokenize`` each partition (kept in worker memory) and ``fit`` its document-frequency part;
2. merge the parts by a tree reduction (fan-in ``fan_in``), finish the corpus document frequencies
   (``ref_len = log(total items)``) and replicate them to every worker (broadcast: they fit);
3. ``score`` each partition against them: per-item scores and the sums of the sufficient statistics.

The driver gathers the partition results in order, writes per-item rows as they come and adds the
sums. Every task is a pure function of its inputs, and the partitions' raw captions are part of the
graph, so a worker lost in the middle of a job only costs recomputation: the scheduler reruns what
it held (``retries`` more attempts on task errors), and the numbers are those of an undisturbed run.

Needs the ``dask`` extra: ``pip install 'capeval[dask]'`` (dask, distributed). Workers of an
existing cluster need capeval installed (the same version) and, for file inputs, nothing else: the
driver reads the files.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings

from .._corpus import ScoringCorpus
from ..errors import CapevalError
from ..metrics import SIGMA
from . import _adapter as adapter
from ._output import PerItemSink, ScaleResult
from ._source import Chunk, IdRegistry, ItemSource, tokenize_chunk, with_lookahead

DEFAULT_PARTITION_SIZE = 20_000


class DaskUnavailableError(CapevalError, ImportError):
    """The dask engine was asked for without dask and distributed installed."""


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise DaskUnavailableError("the dask engine needs dask and distributed: pip install 'capeval[dask]'") from None
    return distributed


# -- tasks (module-level functions: workers import them by name) -------------------------------------
def _tokenize_task(chunk: Chunk, refs_after: list[str], preds_after: list[str], tokenizer: str) -> Chunk:
    return tokenize_chunk(chunk, refs_after, preds_after, tokenizer)


def _fit_task(chunk: Chunk, plan: adapter.MetricPlan) -> adapter.DfPart:
    return adapter.fit_part(chunk.references, plan)


def _merge_task(*parts: adapter.DfPart) -> adapter.DfPart:
    return adapter.merge_parts(parts)


def _finish_task(part: adapter.DfPart):
    return adapter.finish_state(part)


_WORKER_HANDLES: dict = {}


def _worker_handles(plan: adapter.MetricPlan) -> dict:
    """What the metrics start (METEOR's engine), once per worker process and kept for later partitions."""
    key = repr((plan.metrics, sorted(plan.meteor_options.items())))
    if key not in _WORKER_HANDLES:
        _WORKER_HANDLES[key] = adapter.start(plan, 0)[0]
    return _WORKER_HANDLES[key]


def _score_task(chunk: Chunk, state, plan: adapter.MetricPlan) -> dict:
    corpus = ScoringCorpus(chunk.predictions, chunk.references, chunk.ids)
    return adapter.score_chunk(corpus, state, plan, _worker_handles(plan))


# -- the client ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _connect(client, scheduler: str | None, workers: int | None):
    """The given client; a client of the scheduler at ``scheduler``; or a local cluster of ``workers``
    worker processes (one thread each, loopback only), closed at the end."""
    if client is not None:
        yield client
        return
    distributed = _import_distributed()
    if scheduler:
        with distributed.Client(scheduler) as own:
            yield own
        return
    n_workers = workers or max(1, os.cpu_count() or 1)
    with distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster, distributed.Client(cluster) as own:
        yield own


def _runnable_plan(plan: adapter.MetricPlan) -> tuple[adapter.MetricPlan, dict]:
    """The plan the workers run (metrics that cannot run here left out, as evaluate does) and the
    skipped keys; checked here once rather than failing on every worker."""
    from ..errors import MetricUnavailableError
    from ..evaluate import MetricUnavailableWarning

    reasons = adapter.unavailable(plan)
    if not reasons:
        return plan, {}
    if plan.explicit:  # the metric's own typed error (begin raises it where the metric cannot run)
        name, why = next(iter(reasons.items()))
        metric = adapter.get(name)
        metric.end(metric.begin(plan.options, 0))
        raise MetricUnavailableError(why)
    for name, why in reasons.items():
        warnings.warn(f"{name} skipped: {why}", MetricUnavailableWarning, stacklevel=3)
    return plan.without(reasons), adapter.skipped_keys(plan, reasons)


def dask_evaluate(
    refs,
    preds,
    metrics=None,
    *,
    tokenizer: str = "ptb",
    df=None,
    n: int = 4,
    sigma: float = SIGMA,
    partition_size: int = DEFAULT_PARTITION_SIZE,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    per_item=None,
    collect_per_item: bool = False,
    refs_format: str = "auto",
    preds_format: str = "auto",
    split: str | None = None,
    meteor_options=None,
    allow_df_mismatch: bool = False,
    fan_in: int = 8,
    retries: int = 2,
) -> ScaleResult:
    """Score ``preds`` against ``refs`` on a Dask cluster; the numbers of :func:`capeval.evaluate`.

    Inputs and ``per_item`` / ``collect_per_item`` as for :func:`capeval.engines.stream_evaluate`.
    The cluster: ``client`` (a ``distributed.Client``), else ``scheduler`` (an address such as
    ``"tcp://10.0.0.5:8786"``: dask-jobqueue, Kubernetes or cloud clusters alike), else a local
    cluster of ``workers`` processes (default: one per CPU core). ``partition_size``: items per task.
    """
    _import_distributed()
    plan = adapter.MetricPlan.build(metrics, tokenizer=tokenizer, n=n, sigma=sigma, df=df, meteor_options=meteor_options, allow_df_mismatch=allow_df_mismatch)
    plan, skipped = _runnable_plan(plan)
    source = ItemSource(refs, preds, refs_format=refs_format, preds_format=preds_format, split=split)
    worker_plan = plan.without_df()  # a given df travels once, as a replicated future
    job = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    ids_seen = IdRegistry(source)
    with _connect(client, scheduler, workers) as dask_client, PerItemSink(per_item, collect_per_item) as sink:
        tokenized, parts = [], []
        chunks = with_lookahead(source.chunks(partition_size, ids_seen))
        for i, (chunk, refs_after, preds_after) in enumerate(chunks):
            tok = dask_client.submit(_tokenize_task, chunk, refs_after, preds_after, plan.tokenizer, key=f"capeval-tokenize-{job}-{i}", retries=retries)
            tokenized.append(tok)
            if plan.needs_corpus_state:
                parts.append(dask_client.submit(_fit_task, tok, worker_plan, key=f"capeval-fit-{job}-{i}", retries=retries))
        ids_seen.check()
        if plan.needs_corpus_state:
            level = 0
            while len(parts) > 1:  # tree reduction of the document-frequency parts
                parts = [
                    dask_client.submit(_merge_task, *parts[k : k + fan_in], key=f"capeval-merge-{job}-{level}-{k}", retries=retries)
                    for k in range(0, len(parts), fan_in)
                ]
                level += 1
            state = dask_client.submit(_finish_task, parts[0], key=f"capeval-df-{job}", retries=retries)
            del parts
        else:
            state = dask_client.scatter(plan.df, broadcast=True) if plan.df is not None else None
        if state is not None and plan.needs_corpus_state:
            _import_distributed().wait(state)
            # broadcast: a copy on every worker (they fit), so scoring tasks need no transfer and a lost
            # worker does not lose them; a failed replication only costs transfers later
            with contextlib.suppress(Exception):
                dask_client.replicate([state])
        scores = [
            dask_client.submit(_score_task, tok, state, worker_plan, key=f"capeval-score-{job}-{i}", retries=retries)
            for i, tok in enumerate(tokenized)
        ]
        totals = adapter.RunningTotals(plan, sink)
        for i in range(len(scores)):  # in order: per-item rows keep the input order
            contribution = scores[i].result()
            scores[i] = tokenized[i] = None  # release the partition on the workers
            totals.add(contribution)
        n_workers = len(dask_client.scheduler_info().get("workers", {}))
        details = {"partitions": totals.n_chunks, "partition_size": partition_size, "workers": n_workers}
        result = totals.result("dask", skipped, details)
    result.details["seconds"] = time.perf_counter() - started
    return result
