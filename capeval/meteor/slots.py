"""The pool's JVM slots: how a JVM is launched (its command line and heap), how many fit in memory, and
which are running. :class:`~capeval.meteor.pool.Meteor` hands work to them."""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from pathlib import Path

from ..errors import MeteorError
from .java import LOCALE_ARGS, METEOR_ARGS, SERVER_CLASS, sanitized_env
from .jvm import Jvm, available_memory, heap_bytes, jvm_footprint
from .logs import log

# A JVM needs ~7 s (9 s of CPU) to start and then scores ~1,400 segments/s; starting two at once
# delays both by ~2.5 s, which pays off from ~7,000 segments.
SEGMENTS_PER_NEW_JVM = 7500


class JvmSlots:
    """``count`` places for a JVM (one in threads mode, one per worker in processes mode), each with its
    heap (``heap``, or ``fallback_heap`` once memory proved short). Thread-safe; :meth:`close` stops
    every JVM and refuses new ones."""

    def __init__(
        self,
        java: str,
        jar: Path,
        server_dir: Path | None,
        workers: int,
        heap: str,
        fallback_heap: str,
        jvm_args: tuple[str, ...],
    ):
        heap_bytes(heap)  # validated now, not when a JVM starts
        heap_bytes(fallback_heap)
        self.java, self.jar, self.server_dir = java, jar, server_dir
        self.mode = "threads" if server_dir is not None else "processes"
        self.workers = workers
        self.heap, self.fallback_heap = heap, fallback_heap
        self.jvm_args = jvm_args
        self.count = 1 if self.mode == "threads" else workers
        self.jvms: list[Jvm | None] = [None] * self.count
        self.heaps: list[str] = [heap] * self.count
        self.closed = False
        self._lock = threading.Lock()
        self._started = 0

    def command(self, heap: str | None = None) -> list[str]:
        """The JVM command line: pycocoevalcap's (plus the pinned locale and ``jvm_args``), or in threads
        mode the same Meteor arguments given to capeval's front end with the number of threads."""
        heap = heap or self.heap
        if self.mode == "processes":
            return [
                self.java,
                *LOCALE_ARGS,
                *self.jvm_args,
                "-jar",
                f"-Xmx{heap}",
                str(self.jar),
                *METEOR_ARGS,
            ]
        # a throughput collector with a large young generation: Meteor's scoring makes short-lived
        # garbage around ~1 GB of long-lived tables (~10% less JVM CPU than the default G1 here)
        young = heap_bytes(heap) * 3 // 5 >> 20
        classpath = f"{self.jar}{os.pathsep}{self.server_dir}"
        return [
            *(self.java, *LOCALE_ARGS, "-XX:+UseParallelGC", f"-Xms{heap}", f"-Xmn{young}m", *self.jvm_args),
            *(f"-Xmx{heap}", "-cp", classpath, SERVER_CLASS, str(self.workers), *METEOR_ARGS),
        ]

    def footprint(self, heap: str) -> int:
        """Resident memory of one JVM: the heap is used in full in threads mode (a young generation
        cycled through), towards ``-Xmx`` in processes mode (see :func:`jvm_footprint`)."""
        return heap_bytes(heap) + (300 << 20) if self.mode == "threads" else jvm_footprint(heap)

    def worth_running(self, n_segments: int) -> int:
        """JVMs worth running for ``n_segments``: one in threads mode; in processes mode one per
        ``SEGMENTS_PER_NEW_JVM`` segments, at most ``workers`` (starting two at once delays both)."""
        return max(1, min(self.count, math.ceil(n_segments / SEGMENTS_PER_NEW_JVM)))

    def running(self, first: int | None = None) -> int:
        """How many of the first ``first`` slots (default all) hold a JVM."""
        return sum(j is not None for j in self.jvms[:first])

    def plan(self, n: int) -> int:
        """How many JVMs to run for ``n`` wanted: those running, plus new ones that fit in memory (and the
        first one with ``fallback_heap`` when not even one fits with ``heap``)."""
        running = self.running(n)
        new = n - running
        avail = available_memory()
        if new <= 0 or avail is None:
            return n
        fits = int((avail - (256 << 20)) // self.footprint(self.heap))
        if fits >= new:
            return n
        usable = max(running + max(fits, 0), 1)
        if usable < n:
            log.warning(
                "METEOR: %.1f GB of memory available, a JVM with -Xmx%s needs ~%.1f GB: "
                "running %d worker JVM(s) instead of %d",
                avail / 2**30,
                self.heap,
                self.footprint(self.heap) / 2**30,
                usable,
                n,
            )
        if running == 0 and fits < 1 and heap_bytes(self.fallback_heap) < heap_bytes(self.heap):
            log.warning(
                "METEOR: memory is short; starting the JVM with -Xmx%s instead of -Xmx%s",
                self.fallback_heap,
                self.heap,
            )
            self.heaps[0] = self.fallback_heap
        return usable

    def spawn(self, slot: int) -> Jvm:
        """The slot's JVM, started (in the background) if there is none."""
        with self._lock:
            if self.closed:
                raise MeteorError("this Meteor pool is closed")
            jvm = self.jvms[slot]
            if jvm is None:
                self._started += 1
                name = f"meteor-jvm-{slot}.{self._started}"
                jvm = Jvm(self.command(self.heaps[slot]), sanitized_env(), str(self.jar.parent), name)
                self.jvms[slot] = jvm
            return jvm

    def discard(self, slot: int, jvm: Jvm) -> None:
        """Kill ``jvm`` and free its slot (if it still holds it)."""
        with self._lock:
            if self.jvms[slot] is jvm:
                self.jvms[slot] = None
        jvm.kill()

    def _take_all(self) -> list[Jvm]:
        with self._lock:
            jvms = [j for j in self.jvms if j is not None]
            self.jvms[:] = [None] * len(self.jvms)
        return jvms

    def kill_all(self) -> None:
        """Kill every JVM now (they were mid-batch: not reusable); the slots stay usable."""
        for jvm in self._take_all():
            jvm.kill()

    def close(self) -> None:
        """End every JVM and refuse new ones. Idempotent."""
        self.closed = True
        close_jvms(self._take_all())


def close_jvms(jvms: list, grace: float = 2.0) -> None:
    """End of input to every JVM at once (Meteor exits on it), then kill what is left after ``grace``."""
    jvms = [j for j in list(jvms) if j is not None]
    for j in jvms:
        j.end_input()
    deadline = time.monotonic() + grace
    for j in jvms:
        try:
            j.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        except Exception:  # pragma: no cover - best effort at exit
            pass
        j.kill()
