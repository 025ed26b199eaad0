"""One Meteor JVM process (the jar, or capeval's multi-threaded front end) with its reader, writer and
stderr threads, and the memory arithmetic that decides how many JVMs fit and with which heap."""

from __future__ import annotations

import collections
import queue
import re
import subprocess
import threading

from ..errors import MeteorUnavailableError
from .java import INSTALL_JAVA
from .logs import log
from .protocol import JvmFailure, parse_stats

_EOF = object()
# what a JVM says on stderr when it cannot get (or fill) its heap while starting
_START_MEMORY_HINTS = (
    "could not reserve",
    "outofmemoryerror",
    "cannot allocate memory",
    "insufficient memory",
    "failed to map",
    "native memory allocation",
    "initial heap size",
)


class Jvm:
    """One ``java -jar meteor-1.5.jar ... -stdio`` process with a stdout reader, a stderr drain and a
    writer thread, so no pipe can fill up and block either side, and every read has a deadline."""

    def __init__(self, cmd: list[str], env: dict, cwd: str, name: str):
        self.cmd = cmd
        self.name = name
        self.replies = 0
        self.ready = False
        self._ready_lock = threading.Lock()
        self.failed: str | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self.saw_out_of_memory = False  # a stack trace can push the line out of the tail
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        self._writes: queue.SimpleQueue = queue.SimpleQueue()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
            )
        except OSError as exc:
            raise MeteorUnavailableError(f"cannot run {cmd[0]!r}: {exc}; {INSTALL_JAVA}") from exc
        self._threads = [
            threading.Thread(target=target, name=f"capeval-meteor-{name}-{suffix}", daemon=True)
            for target, suffix in (
                (self._read_stdout, "out"),
                (self._read_stderr, "err"),
                (self._write, "in"),
            )
        ]
        for t in self._threads:
            t.start()
        # the probe: its reply means the paraphrase table is loaded and the protocol works
        self.send(b"SCORE ||| a ||| a\n")

    def _read_stdout(self):
        try:
            for raw in iter(self.proc.stdout.readline, b""):
                self._lines.put(raw)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(_EOF)

    def _read_stderr(self):
        try:
            for raw in iter(self.proc.stderr.readline, b""):
                text = raw.decode("utf-8", errors="replace").rstrip()
                if text:
                    self.stderr_tail.append(text)
                    self.saw_out_of_memory = self.saw_out_of_memory or "OutOfMemoryError" in text
                    log.debug("%s stderr: %s", self.name, text)
        except (OSError, ValueError):
            pass

    def _write(self):
        while True:
            data = self._writes.get()
            if data is None:
                break
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (OSError, ValueError):  # BrokenPipe: the JVM is gone; the reader reports it
                break
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass

    def send(self, data: bytes) -> None:
        self._writes.put(data)

    def readline(self, timeout: float) -> str:
        try:
            raw = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise JvmFailure(f"no reply within {timeout:g} s (the JVM stalled)") from None
        if raw is _EOF:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._threads[1].join(timeout=2)  # let the stderr drain catch the JVM's last words
            raise JvmFailure(f"the JVM closed its output (exit code {code})")
        self.replies += 1
        return raw.decode("ascii", errors="replace").strip()

    def wait_ready(self, timeout: float) -> None:
        with self._ready_lock:  # exactly one thread reads the probe's reply
            if self.ready:
                return
            if self.failed is not None:
                raise JvmFailure(self.failed)
            try:
                parse_stats(self.readline(timeout))
            except JvmFailure as exc:
                self.failed = f"did not start: {exc}"
                raise JvmFailure(self.failed) from None
            self.ready = True

    def describe(self) -> str:
        tail = " | ".join(self.stderr_tail)
        if len(tail) > 600:
            tail = "..." + tail[-600:]
        return f"{self.name} (pid {self.proc.pid})" + (f"; its stderr: {tail}" if tail else "")

    def memory_trouble(self) -> bool:
        """It failed for lack of memory (meaningful while starting: later, see :meth:`out_of_heap`)."""
        text = " ".join(self.stderr_tail).lower()
        return any(h in text for h in _START_MEMORY_HINTS)

    def out_of_heap(self) -> bool:
        """A ``java.lang.OutOfMemoryError`` was reported (the jar dies of it)."""
        return self.saw_out_of_memory

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self._writes.put(None)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie that ignores SIGKILL
            pass
        for pipe in (self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except (OSError, ValueError):
                pass

    def end_input(self) -> None:
        """Close stdin (after pending writes): Meteor's loop returns and the JVM exits."""
        self._writes.put(None)


# -- memory ---------------------------------------------------------------------------------------
_HEAP = re.compile(r"^(\d+)([kKmMgG]?)$")


def heap_bytes(heap: str) -> int:
    m = _HEAP.match(heap)
    if not m:
        raise ValueError(f"heap must look like '2G', '1536m' or '1g', got {heap!r}")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def jvm_footprint(heap: str) -> int:
    """Resident memory of one Meteor JVM (its heap grows towards -Xmx): ~1.4 GB with -Xmx2G, ~0.9 GB
    with -Xmx1G, ~0.6 GB with -Xmx512m (the tables themselves need less than 512 MB)."""
    return min(heap_bytes(heap), int(1.3 * (1 << 30))) + (200 << 20)


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
