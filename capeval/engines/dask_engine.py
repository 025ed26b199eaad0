"""``dask_evaluate``: the streaming algorithm as a Dask graph, on a local cluster or any scheduler.

The driver cuts the inputs into partitions and submits one at a time. JSONL files of one record per
image (a list of references per line) are cut as whole lines of bytes, which the workers parse and
validate (``parse``; the driver only splits lines and then checks the ids of all partitions for
duplicates); any other input is read and validated by the driver, item by item, as the stream engine
reads it (and so is a JSONL input that does not fit the cut: the job starts again that way, before
any row is written). Each partition is tokenized with the look-ahead captions of the partitions
after it. On the workers:

1. ``tokenize`` each partition (kept in worker memory) and ``fit`` its document-frequency part;
2. merge the parts by a tree reduction (fan-in ``fan_in``), finish the corpus document frequencies
   (``ref_len = log(total items)``) and replicate them to every worker (broadcast: they fit);
3. ``score`` each partition against them: per-item scores (also as rows of the per-item file) and
   the sums of the sufficient statistics.

The driver gathers the partition results in order, writes the per-item rows as they come and adds
the sums. Every task is a pure function of its inputs, and the partitions' raw captions are part of the
graph, so a worker lost in the middle of a job only costs recomputation: the scheduler reruns what
it held (``retries`` more attempts on task errors), and the numbers are those of an undisturbed run.

Needs the ``dask`` extra: ``pip install 'capeval[dask]'`` (dask, distributed). Workers of an
existing cluster need capeval installed (the same version) and, for file inputs, nothing else: the
driver reads the files and sends their contents.
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
from ._output import PerItemSink, ScaleResult, format_rows
from ._source import (
    Chunk,
    IdRegistry,
    ItemSource,
    RawChunk,
    RawLayoutError,
    chunk_summary,
    lookahead_from_heads,
    parse_raw_chunk,
    tokenize_chunk,
    with_lookahead,
)

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
def _parse_task(raw: RawChunk) -> Chunk:
    return parse_raw_chunk(raw)


def _summary_task(chunk: Chunk):
    return chunk_summary(chunk)


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


def _score_task(chunk: Chunk, state, plan: adapter.MetricPlan, rows: tuple[str, bool] | None) -> dict:
    """``rows``: the per-item file's layout and whether this is its first partition; the partition's
    rows are formatted here, beside the other partitions' (the driver only writes them)."""
    corpus = ScoringCorpus(chunk.predictions, chunk.references, chunk.ids)
    contribution = adapter.score_chunk(corpus, state, plan, _worker_handles(plan))
    if rows is not None:
        contribution["per_item_text"] = format_rows(rows[0], contribution["ids"], contribution["per_item"], rows[1])
    return contribution


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
    started = time.perf_counter()
    with _connect(client, scheduler, workers) as dask_client:
        job = _Job(dask_client, plan, partition_size, fan_in, retries)
        result = None
        if source.reads_raw:
            try:
                with PerItemSink(per_item, collect_per_item) as sink:
                    result = job.run(source, sink, skipped, raw=True)
            except RawLayoutError:  # raised before any row is written: read item by item (exact items and errors)
                pass
        if result is None:
            with PerItemSink(per_item, collect_per_item) as sink:
                result = job.run(source, sink, skipped, raw=False)
    result.details["seconds"] = time.perf_counter() - started
    return result


class _Job:
    """One scoring job on a client: partitions submitted, document frequencies reduced, scores gathered."""

    def __init__(self, client, plan: adapter.MetricPlan, partition_size: int, fan_in: int, retries: int):
        self.client, self.plan, self.partition_size, self.fan_in, self.retries = client, plan, partition_size, fan_in, retries
        self.worker_plan = plan.without_df()  # a given df travels once, as a replicated future

    def submit(self, task, *args, name: str, priority: int = 0):
        return self.client.submit(task, *args, key=f"capeval-{name}-{self.job}", retries=self.retries, priority=priority)

    def run(self, source: ItemSource, sink: PerItemSink, skipped: dict, raw: bool):
        self.job = uuid.uuid4().hex[:8]
        self.tokenized, self.parts = [], []
        ids_seen = IdRegistry(source)
        if raw:
            self._submit_from_lines(source, ids_seen)
        else:
            self._submit_from_items(source, ids_seen)
        ids_seen.check()
        state = self._corpus_state()
        tokenized, self.tokenized = self.tokenized, None
        scores = []
        for i, tok in enumerate(tokenized):
            rows = (sink.kind, i == 0) if sink.kind else None  # the file's layout; its first partition?
            scores.append(self.submit(_score_task, tok, state, self.worker_plan, rows, name=f"score-{i}"))
        totals = adapter.RunningTotals(self.plan, sink)
        for i in range(len(scores)):  # in order: per-item rows keep the input order
            contribution = scores[i].result()
            scores[i] = tokenized[i] = None  # release the partition on the workers
            totals.add(contribution)
        n_workers = len(self.client.scheduler_info().get("workers", {}))
        details = {"partitions": totals.n_chunks, "partition_size": self.partition_size, "workers": n_workers, "read_by": "workers" if raw else "driver"}
        return totals.result("dask", skipped, details)

    def _submit_partition(self, chunk, refs_after: list[str], preds_after: list[str], priority: int = 0) -> None:
        """Tokenize the next partition (``chunk``: a Chunk, or the future of one) and fit its part."""
        i = len(self.tokenized)
        tok = self.submit(_tokenize_task, chunk, refs_after, preds_after, self.plan.tokenizer, name=f"tokenize-{i}", priority=priority)
        self.tokenized.append(tok)
        if self.plan.needs_corpus_state:
            self.parts.append(self.submit(_fit_task, tok, self.worker_plan, name=f"fit-{i}", priority=priority))

    def _submit_from_items(self, source: ItemSource, ids_seen: IdRegistry) -> None:
        """The driver reads and validates the items; each partition goes with its look-ahead."""
        for chunk, refs_after, preds_after in with_lookahead(source.chunks(self.partition_size, ids_seen)):
            self._submit_partition(chunk, refs_after, preds_after)

    def _submit_from_lines(self, source: ItemSource, ids_seen: IdRegistry) -> None:
        """The driver splits lines; workers parse them, and each partition is tokenized once the heads of
        the partitions after it (:func:`chunk_summary`) give its look-ahead."""
        parsed, summaries = [], []
        for i, raw in enumerate(source.raw_chunks(self.partition_size)):
            parsed.append(self.submit(_parse_task, raw, name=f"parse-{i}"))
            summaries.append(self.submit(_summary_task, parsed[i], name=f"summary-{i}"))
        ref_heads, pred_heads = [], []

        def submit_ready(last: bool) -> None:
            while len(self.tokenized) < len(ref_heads):
                k = len(self.tokenized)
                refs_after = lookahead_from_heads(ref_heads[k + 1 :], last)
                preds_after = lookahead_from_heads(pred_heads[k + 1 :], last)
                if refs_after is None or preds_after is None:
                    return
                # before later partitions are parsed: a parsed partition is released once tokenized
                self._submit_partition(parsed[k], refs_after, preds_after, priority=1)
                parsed[k] = None

        for i in range(len(summaries)):  # in order: the first error in the input is the one raised
            fingerprints, ref_head, pred_head = summaries[i].result()
            summaries[i] = None
            ids_seen.add_fingerprints(fingerprints)
            ref_heads.append(ref_head)
            pred_heads.append(pred_head)
            submit_ready(last=False)
        submit_ready(last=True)

    def _corpus_state(self):
        """The corpus document frequencies (a tree reduction of the partitions' parts, then broadcast),
        a given ``df`` scattered to every worker, or None."""
        plan = self.plan
        if not plan.needs_corpus_state:
            return self.client.scatter(plan.df, broadcast=True) if plan.df is not None else None
        parts, self.parts = self.parts, None
        level = 0
        while len(parts) > 1:  # tree reduction of the document-frequency parts
            parts = [self.submit(_merge_task, *parts[k : k + self.fan_in], name=f"merge-{level}-{k}") for k in range(0, len(parts), self.fan_in)]
            level += 1
        state = self.submit(_finish_task, parts[0], name="df")
        del parts
        _import_distributed().wait(state)
        # broadcast: a copy on every worker (they fit), so scoring tasks need no transfer and a lost
        # worker does not lose them; a failed replication only costs transfers later
        with contextlib.suppress(Exception):
            self.client.replicate([state])
        return state
