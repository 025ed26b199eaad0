"""The JVM pool: :class:`Meteor` runs Meteor 1.5 JVMs, feeds them SCORE lines in chunks from worker
threads and assembles a :class:`MeteorResult`.

* threads mode (default with a JDK): one JVM running capeval's front end (``capeval/java/``), whose
  threads (one per core, at most 4) share one copy of Meteor's tables; processes mode: one
  ``java -jar meteor-1.5.jar`` per worker (fewer when the input is small or memory is short);
* the SCORE lines pipelined (written by a writer thread while the replies are read), in chunks;
* the corpus score is the jar's own aggregate: an ``EVAL`` of the summed segment statistics, which is
  bit-identical to pycocoevalcap's ``EVAL`` over all segments (the statistics are integer counts);
* robustness: every read bounded by a timeout; a dead or stalled JVM killed, restarted and its chunk
  retried (bounded), then a :class:`MeteorError` naming the cause and the segment; a JVM that cannot get
  its heap at start retried with ``fallback_heap``; a caption that overflows the heap while scored a
  :class:`MeteorHeapError` naming its id (not retried); thread-safe; closed at exit.
"""

from __future__ import annotations

import collections
import math
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, MeteorError, MeteorUnavailableError
from .formula import STATS_LENGTH, meteor_scores_from_stats, meteor_summable_stats
from .java import compile_server, jar_version
from .jvm import Jvm
from .logs import log
from .protocol import (
    JvmFailure,
    MeteorHeapError,
    SegmentOutOfMemory,
    clean_segments,
    eval_line,
    format_stats,
    parse_score,
    parse_stats,
    score_line,
    segment_labels,
    segment_words,
)
from .result import MeteorResult
from .slots import JvmSlots, close_jvms

ENV_WORKERS = "CAPEVAL_METEOR_WORKERS"
JVM_MODES = ("auto", "threads", "processes")


def _locate(java, jar) -> tuple[str, Path]:
    """java and the jar, through the package's names (``capeval.meteor.find_java``...), so that what a
    caller substitutes there (tests do) is what the pool uses."""
    facade = sys.modules[__package__]
    return facade.find_java(java), facade.find_meteor_jar(jar)


def _default_workers() -> int:
    env = os.environ.get(ENV_WORKERS)
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"{ENV_WORKERS} must be an integer, got {env!r}") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


# -- the pool -------------------------------------------------------------------------------------
class _Batch:
    """One call's work: its SCORE lines in chunks, shared by the worker threads, and what came back."""

    def __init__(self, lines: list[bytes], chunk: int, labels: list[str]):
        self.lines = lines
        self.labels = labels
        self.n = len(lines)
        self.values: list[list[float] | None] = [None] * self.n  # the jar's statistics, parsed
        self.scores = np.full(self.n, np.nan)
        self.chunks = collections.deque((a, min(a + chunk, self.n)) for a in range(0, self.n, chunk))
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.abort = threading.Event()
        self.failures: list[str] = []
        self.fatal: BaseException | None = None
        self._cond = threading.Condition()
        self._in_flight = 0

    def pending(self) -> bool:
        """Work is left: chunks queued, or being scored by a worker that may yet hand one back."""
        with self._cond:
            return not self.abort.is_set() and (bool(self.chunks) or self._in_flight > 0)

    def take(self, wait: bool = True) -> tuple[int, int] | None:
        """The next chunk; waits while others are in flight (one may come back); None when all is done
        (or, with ``wait=False``, when no chunk is queued right now)."""
        with self._cond:
            while not self.abort.is_set():
                if self.chunks:
                    self._in_flight += 1
                    return self.chunks.popleft()
                if not self._in_flight or not wait:
                    return None
                self._cond.wait(0.5)
            return None

    def finish(self, chunk: tuple[int, int], ok: bool) -> None:
        with self._cond:
            self._in_flight -= 1
            if not ok:
                self.chunks.appendleft(chunk)
            self._cond.notify_all()


class Meteor:
    """A pool of Meteor 1.5 scorers (``-l en -norm``, pycocoevalcap's settings). Thread-safe; a context
    manager; closed at interpreter exit. JVMs start on first use (or :meth:`start`) and stay up for
    later calls, so keep one instance to score several sets.

    ``jar``: meteor-1.5.jar or its directory (default ``$CAPEVAL_METEOR_JAR``, else pycocoevalcap's).
    ``java``: the java executable (default ``$JAVA_HOME/bin/java``, else ``java`` on PATH).
    ``workers``: parallel scorers (default ``$CAPEVAL_METEOR_WORKERS`` or one per core, at most 4).
    ``jvm_mode``: ``"threads"``: one JVM whose ``workers`` threads share one copy of Meteor's tables
    (capeval's small front end to the jar, compiled once with the JDK's ``javac``, see
    :func:`compile_server`): one table load and ~1.5 GB instead of one per worker; ``"processes"``: one
    ``java -jar meteor-1.5.jar`` per worker (pycocoevalcap's command, no ``javac`` needed; fewer JVMs are
    started when the input is small or memory is short); ``"auto"`` (default): threads when the front end
    compiles, else processes. Both give the jar's numbers. ``heap``: ``-Xmx`` (pycocoevalcap: ``2G``);
    ``fallback_heap`` is used when memory is short or a JVM cannot get its heap while starting (results
    do not depend on the heap); a caption that overflows the heap while scored raises
    :class:`MeteorHeapError` instead (not retried). ``timeout``: seconds to wait for any single reply before the JVM counts as stalled;
    ``startup_timeout``: for a JVM to load its tables. ``max_restarts``: per worker and per call, how
    often a dead or stalled JVM is restarted (its chunk retried) before giving up. ``jvm_args``: extra
    JVM options (before ``-jar``). ``progress``: tqdm bar (``None``: on terminals for long runs).
    ``segment_scores``: where per-segment scores come from: ``"python"`` (default), Meteor's formula
    applied to the jar's statistics by :func:`meteor_scores_from_stats`, identical to the jar's output
    on every test segment and ~20% less JVM work; or ``"jar"``, an ``EVAL`` per chunk as
    pycocoevalcap does. The corpus score is always the jar's.
    """

    def __init__(
        self,
        jar=None,
        java=None,
        *,
        workers: int | None = None,
        heap: str = "2G",
        fallback_heap: str = "1G",
        timeout: float = 60.0,
        startup_timeout: float = 180.0,
        max_restarts: int = 2,
        jvm_args: Sequence[str] = (),
        progress: bool | None = None,
        chunk_size: int | None = None,
        segment_scores: str = "python",
        jvm_mode: str = "auto",
    ):
        if jvm_mode not in JVM_MODES:
            raise ValueError(f"jvm_mode must be one of {JVM_MODES}, got {jvm_mode!r}")
        self.java, self.jar = _locate(java, jar)
        self.workers = int(workers) if workers is not None else _default_workers()
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        self.server_dir: Path | None = None
        if jvm_mode != "processes":
            try:
                self.server_dir = compile_server(self.java, self.jar)
            except MeteorUnavailableError as exc:
                if jvm_mode == "threads":
                    raise
                log.info("METEOR: %s; running one JVM per worker instead", exc)
        self._slots = JvmSlots(
            self.java, self.jar, self.server_dir, self.workers, heap, fallback_heap, tuple(jvm_args)
        )
        self.jvm_mode = self._slots.mode
        self.heap, self.fallback_heap, self.jvm_args = heap, fallback_heap, tuple(jvm_args)
        self.timeout = float(timeout)
        self.startup_timeout = float(startup_timeout)
        self.max_restarts = int(max_restarts)
        self.progress = progress
        self.chunk_size = chunk_size
        if segment_scores not in ("python", "jar"):
            raise ValueError(f"segment_scores must be 'python' or 'jar', got {segment_scores!r}")
        self.segment_scores = segment_scores
        self.version = jar_version(self.jar)
        self._lock = threading.Lock()  # one batch at a time
        self._finalizer = weakref.finalize(self, close_jvms, self._slots.jvms)

    # -- lifecycle --
    def __enter__(self) -> Meteor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        slots = self._slots
        state = (
            "closed" if self.closed else f"{slots.running()}/{slots.count} JVMs running, {self.jvm_mode} mode"
        )
        return f"Meteor({self.jar}, {state})"

    def close(self) -> None:
        """Stop the JVMs (a batch running in another thread fails with MeteorError). Idempotent."""
        self._slots.close()
        self._finalizer.detach()

    @property
    def closed(self) -> bool:
        return self._slots.closed

    def command(self, heap: str | None = None) -> list[str]:
        """The JVM command line (see :meth:`JvmSlots.command`)."""
        return self._slots.command(heap)

    def jvms_for(self, n_segments: int) -> int:
        """JVMs worth running for ``n_segments``: one in threads mode; in processes mode one per
        ``SEGMENTS_PER_NEW_JVM`` segments, at most ``workers`` (starting two at once delays both)."""
        return self._slots.worth_running(n_segments)

    def start(self, n: int | None = None) -> Meteor:
        """Start ``n`` JVMs (default all the pool needs) in the background, without waiting for them."""
        n = self._slots.count if n is None else max(1, min(int(n), self._slots.count))
        for slot in range(self._slots.plan(n)):
            self._slots.spawn(slot)
        return self

    def _ready(self, slot: int) -> Jvm:
        jvm = self._slots.spawn(slot)
        jvm.wait_ready(self.startup_timeout)
        return jvm

    # -- scoring --
    def score_segments(
        self, refs_list: Sequence[Sequence[str]], preds_list: Sequence[str], progress: bool | None = None
    ) -> MeteorResult:
        """METEOR of ``preds_list[i]`` against ``refs_list[i]`` for every i (ids are the indices)."""
        refs, hyps = clean_segments(refs_list, preds_list, segment_labels(len(preds_list), None))
        return self._score_lines([score_line(r, h) for r, h in zip(refs, hyps)], progress)

    def _score_lines(self, lines: list[bytes], progress: bool | None, ids=None) -> MeteorResult:
        """Score prepared SCORE lines (``ids``, when given, name the segments in errors and the result)."""
        if not lines:
            raise InputError("nothing to score: no segments")
        if self.closed:
            raise MeteorError("this Meteor pool is closed")
        t0 = time.perf_counter()
        with self._lock:
            n = len(lines)
            wanted = max(self._slots.running(), self.jvms_for(n))  # running JVMs are all used
            n_workers = self._slots.plan(wanted)
            chunk = self.chunk_size or int(min(500, max(25, math.ceil(n / (4 * n_workers)))))
            batch = _Batch(lines, chunk, segment_labels(n, ids))
            self._run_workers(batch, n_workers, progress)
            raw = np.array(batch.values, dtype=np.float64)
            stats = meteor_summable_stats(raw)
            if self.segment_scores == "python":
                batch.scores = meteor_scores_from_stats(raw)
            score, how = self._aggregate(stats)
        python_score = float(meteor_scores_from_stats(stats.sum(axis=0)))
        if not math.isclose(score, python_score, rel_tol=1e-12, abs_tol=1e-12):
            log.warning(
                "METEOR: the jar's aggregate %r differs from capeval's reimplementation %r",
                score,
                python_score,
            )
        details = {
            "backend": "jar",
            "workers": n_workers if self.jvm_mode == "processes" else self.workers,
            "jvms": n_workers,
            "jvm_mode": self.jvm_mode,
            "chunk_size": chunk,
            "segment_scores": self.segment_scores,
            "aggregate": how,
            "heaps": sorted(set(self._slots.heaps[:n_workers])),
            "failures": list(batch.failures),
            "seconds": time.perf_counter() - t0,
        }
        return MeteorResult(
            score=score,
            per_item=batch.scores,
            stats=stats,
            ids=ids,
            jar=str(self.jar),
            version=self.version,
            details=details,
        )

    def _run_workers(self, batch: _Batch, n_workers: int, progress: bool | None) -> None:
        """One worker thread per JVM slot until every segment is scored (or the run failed: raises)."""
        threads = [
            threading.Thread(
                target=self._work, args=(slot, batch), name=f"capeval-meteor-worker-{slot}", daemon=True
            )
            for slot in range(n_workers)
        ]
        show = progress if progress is not None else self.progress
        if show is None:
            show = batch.n >= 5000 and sys.stderr.isatty()
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=batch.n, desc="METEOR", unit="seg", leave=False)
        try:
            for t in threads:
                t.start()
            active, done = len(threads), 0
            # done when every segment is scored: a worker still restarting its JVM is not waited for
            while active and done < batch.n:
                try:
                    ev = batch.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if ev is None:
                    active -= 1
                else:
                    done += ev
                    if bar is not None:
                        bar.update(ev)
        except BaseException:  # KeyboardInterrupt: the JVMs are mid-batch; do not reuse them
            batch.abort.set()
            self._slots.kill_all()
            raise
        finally:
            if bar is not None:
                bar.close()
        if batch.fatal is not None:
            raise batch.fatal
        if batch.chunks or any(v is None for v in batch.values):
            why = "; ".join(batch.failures[-2:]) or "no worker JVM could run"
            if self.closed:
                raise MeteorError(f"METEOR: the pool was closed during the run ({why})")
            raise MeteorError(
                f"METEOR failed: {len(batch.failures)} JVM failure(s), at most {self.max_restarts} "
                f"restart(s) per worker allowed. Last: {why}"
            )

    def _work(self, slot: int, batch: _Batch) -> None:
        """One worker thread: start (or reuse) its JVM, then take chunks until none is left. A JVM that
        dies, stalls or answers nonsense is killed, its chunk handed back to the queue (another worker
        may take it) and the JVM restarted, at most ``max_restarts`` times; one that cannot get its heap
        while starting is restarted with ``fallback_heap``. A segment that overflows the heap ends the run."""
        restarts = 0
        try:
            while batch.pending():
                if self.closed:
                    raise MeteorError("this Meteor pool is closed")
                jvm = None
                try:
                    jvm = self._slots.spawn(slot)
                    jvm.wait_ready(self.startup_timeout)  # holds no chunk while a JVM starts
                    self._feed(jvm, batch)
                    return
                except SegmentOutOfMemory as exc:
                    self._slots.discard(slot, jvm)
                    raise self._heap_error(slot, batch, exc.args[0]) from None
                except JvmFailure as exc:
                    batch.failures.append(f"{jvm.describe() if jvm else f'worker {slot}'}: {exc}")
                    starting = jvm is not None and not jvm.ready
                    heaps = self._slots.heaps
                    memory = starting and jvm.memory_trouble() and heaps[slot] != self.fallback_heap
                    if jvm is not None:
                        self._slots.discard(slot, jvm)
                    if memory:
                        log.warning(
                            "METEOR: a JVM could not get its -Xmx%s heap; retrying with -Xmx%s",
                            heaps[slot],
                            self.fallback_heap,
                        )
                        heaps[slot] = self.fallback_heap
                        continue
                    restarts += 1
                    if restarts > self.max_restarts:
                        return
                    if batch.pending():
                        log.warning("METEOR: %s; restarting the JVM and retrying", exc)
        except MeteorError as exc:  # java cannot run, a caption too long, or the pool was closed: no retry
            if self.closed and not isinstance(exc, MeteorUnavailableError):
                exc = MeteorError(f"METEOR: the pool was closed during the run ({exc})")
            if batch.fatal is None:
                batch.fatal = exc
            batch.abort.set()
        except Exception as exc:  # pragma: no cover - a bug; never leave the caller waiting
            batch.failures.append(f"worker {slot}: {exc!r}")
        finally:
            batch.events.put(None)

    def _feed(self, jvm: Jvm, batch: _Batch) -> None:
        """Write chunks to a ready JVM and read their replies until no chunk is left. In threads mode the
        next chunk is written before this one is read, so the JVM's threads never run dry (waiting for
        the caller between chunks cost ~20% more time and CPU); processes mode keeps one chunk per JVM,
        so idle JVMs can take the rest. Chunks not read back go back to the queue, for any worker."""
        depth = 2 if self.jvm_mode == "threads" and self.segment_scores == "python" else 1
        sent: collections.deque[tuple[int, int]] = collections.deque()  # written, not yet read
        try:
            while True:
                while len(sent) < depth:
                    chunk = batch.take(wait=not sent)
                    if chunk is None:
                        break
                    jvm.send(b"".join(batch.lines[chunk[0] : chunk[1]]))
                    sent.append(chunk)
                if not sent:
                    return
                chunk = sent[0]
                self._read_chunk(jvm, batch, *chunk)
                sent.popleft()
                batch.finish(chunk, ok=True)
                batch.events.put(chunk[1] - chunk[0])
        except BaseException:
            for chunk in sent:
                batch.finish(chunk, ok=False)
            raise

    def _read_chunk(self, jvm: Jvm, batch: _Batch, a: int, b: int) -> None:
        """The statistics of SCORE lines a..b-1 (already written) read back; with
        ``segment_scores="jar"`` then one EVAL of them for the per-segment scores."""
        stats, values = [], []
        for i in range(a, b):
            try:
                line = jvm.readline(self.timeout)
                values.append(parse_stats(line))
            except SegmentOutOfMemory:  # capeval's front end: this line alone overflows the heap
                raise SegmentOutOfMemory(i) from None
            except JvmFailure as exc:
                if jvm.out_of_heap():  # the jar scores in order and dies of it: this line did
                    raise SegmentOutOfMemory(i) from None
                raise JvmFailure(f"{exc}, at {batch.labels[i]} (sent: {batch.lines[i][:120]!r})") from None
            stats.append(line)
        if self.segment_scores == "jar":
            jvm.send(eval_line(stats))
            scores = [parse_score(jvm.readline(self.timeout)) for _ in stats]
            parse_score(jvm.readline(self.timeout))  # this chunk's own aggregate
            batch.scores[a:b] = scores
        batch.values[a:b] = values

    def _heap_error(self, slot: int, batch: _Batch, index: int) -> MeteorHeapError:
        label, heap = batch.labels[index], self._slots.heaps[slot]
        hyp_words, ref_words = segment_words(batch.lines[index])
        return MeteorHeapError(
            f"METEOR: the Java heap (-Xmx{heap}) ran out scoring {label} (its prediction has {hyp_words:,} "
            f"words, its longest reference {ref_words:,}): shorten such captions, or give the JVM a larger "
            f"heap (heap=, e.g. heap='8G')",
            label=label,
            heap=heap,
        )

    def _aggregate(self, stats: np.ndarray) -> tuple[float, str]:
        """The jar's corpus score. The statistics are integer counts, so their sum is exact and one EVAL
        of the (summable) sums is bit-identical to pycocoevalcap's EVAL over every segment; were they
        not, every segment's line is sent, as pycocoevalcap does."""
        sums = stats.sum(axis=0)
        if bool(np.all(stats == np.round(stats))) and float(np.abs(sums).max()) < 2.0**52:
            payload = eval_line([format_stats(sums)])
            expect, how = 1, "jar EVAL of the summed statistics"
        else:  # pragma: no cover - Meteor 1.5 prints integer counts
            payload = eval_line(map(format_stats, stats))
            expect, how = len(stats), "jar EVAL of every segment's statistics"
        failures = []
        for _attempt in range(1 + max(self.max_restarts, 0)):
            running = [k for k, j in enumerate(self._slots.jvms) if j is not None]
            slot = running[0] if running else 0
            jvm = None
            try:
                jvm = self._slots.spawn(slot)
                jvm.wait_ready(self.startup_timeout)
                jvm.send(payload)
                for _ in range(expect):
                    parse_score(jvm.readline(self.timeout))
                return parse_score(jvm.readline(self.timeout)), how
            except JvmFailure as exc:
                failures.append(f"{jvm.describe() if jvm else f'worker {slot}'}: {exc}")
                if jvm is not None:
                    self._slots.discard(slot, jvm)
        raise MeteorError(f"METEOR: the aggregate EVAL failed: {'; '.join(failures)}")

    def aggregate(self, stats) -> float:
        """The jar's corpus score for per-segment statistics ``(N, 23)`` (raw or summable rows)."""
        s = meteor_summable_stats(stats)
        if s.ndim != 2 or not len(s):
            raise ValueError(f"expected (N, {STATS_LENGTH}) statistics, got shape {s.shape}")
        if self.closed:
            raise MeteorError("this Meteor pool is closed")
        with self._lock:
            return self._aggregate(s)[0]
