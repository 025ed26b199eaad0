"""METEOR 1.5 through the official jar, with pycocoevalcap's numbers, in parallel and without hangs.

There is no faithful Python port of METEOR (NLTK's scores differ by 10-30 points), so capeval drives
``meteor-1.5.jar`` with pycocoevalcap's command line (``-jar -Xmx2G meteor-1.5.jar - - -stdio -l en
-norm``) and its line protocol:

* ``SCORE ||| ref 1 ||| ... ||| ref n ||| hypothesis`` -> one line of 23 segment statistics;
* ``EVAL ||| stats 1 ||| ... ||| stats n`` -> n per-segment scores, then the aggregate score.

What capeval adds (see docs/meteor.md):

* parallel scoring: by default one persistent JVM whose threads (one per core, at most 4) share one
  copy of Meteor's tables (``capeval/java/CapevalMeteor.java``, a front end to the jar's own classes,
  compiled once with the JDK's ``javac``, see :func:`compile_server`; it also reads the paraphrase
  table on two threads into the jar's own structure, 3-5 s of start-up instead of 7-12), else one
  ``java -jar`` per worker (fewer when memory is short); the SCORE lines pipelined (written by a
  writer thread while the replies are read) instead of one round-trip per caption, in chunks;
* the corpus score is the jar's own aggregate: an ``EVAL`` of the summed segment statistics, which is
  bit-identical to pycocoevalcap's ``EVAL`` over all segments (the statistics are integer counts, so
  the sum is exact, and Meteor's aggregation rule for perfect matches is applied as the jar does);
* robustness: stdout and stderr read on their own threads, every read bounded by a timeout, a dead or
  stalled JVM killed, restarted and its chunk retried (bounded), then a :class:`MeteorError` naming the
  cause and the segment; locale forced so numbers always parse; whitespace collapsed and ``|||``
  removed in predictions *and* references so captions cannot desync the protocol; thread-safe; closed
  at exit and usable as a context manager;
* :func:`meteor_score_from_stats` / :func:`meteor_scores_from_stats`: Meteor 1.5's scoring from
  (summed) statistics reimplemented in numpy, bit-identical to the jar on the test sets: it gives the
  per-segment scores by default (``segment_scores="jar"``: the jar's EVAL, as pycocoevalcap) and
  corpus scores of resamples without a JVM (bootstrap).
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import logging
import math
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import types
import weakref
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import (
    EmptyReferencesError,
    InputError,
    InvalidCaptionError,
    MeteorError,
    MeteorUnavailableError,
    MissingIdError,
    format_ids,
)

__all__ = [
    "Meteor",
    "MeteorResult",
    "meteor",
    "meteor_segments",
    "find_meteor_jar",
    "find_java",
    "meteor_unavailable_reason",
    "meteor_score_from_stats",
    "meteor_scores_from_stats",
    "meteor_scores_from_stat_sums",
    "meteor_summable_stats",
    "clean_caption",
    "STATS_FIELDS",
]

log = logging.getLogger("capeval.meteor")

JAR_NAME = "meteor-1.5.jar"
PARAPHRASE = Path("data") / "paraphrase-en.gz"
ENV_JAR = "CAPEVAL_METEOR_JAR"
ENV_WORKERS = "CAPEVAL_METEOR_WORKERS"
VERSION = "1.5"
FLAGS = "-l en -norm"
METEOR_ARGS = ("-", "-", "-stdio", "-l", "en", "-norm")
# Numbers are printed by Java's Double.toString (locale-free) but *parsed* back by java.util.Scanner,
# which follows the default locale: under de_DE "0.5" fails and the JVM exits. String.toLowerCase in
# -norm follows it too (Turkish dotless i). So the locale is pinned on the command line.
LOCALE_ARGS = ("-Duser.language=en", "-Duser.country=US")
# capeval's multi-threaded front end (our source, compiled once against the jar, see compile_server)
SERVER_SOURCE = Path(__file__).with_name("java") / "CapevalMeteor.java"
SERVER_CLASS = "CapevalMeteor"
ENV_CACHE = "CAPEVAL_CACHE"
JVM_MODES = ("auto", "threads", "processes")
# Options the JVM reads from the environment; _JAVA_OPTIONS even overrides the command line.
JAVA_ENV_OPTIONS = ("_JAVA_OPTIONS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS")
INSTALL_JAR = (
    "pip install pycocoevalcap (it ships meteor-1.5.jar and data/paraphrase-en.gz), or point "
    f"{ENV_JAR} (or jar=...) at a meteor-1.5.jar that has data/paraphrase-en.gz beside it"
)
INSTALL_JAVA = (
    "install a Java runtime (8 or newer; e.g. apt-get install default-jre-headless, "
    "conda install -c conda-forge openjdk, brew install openjdk), or set JAVA_HOME, or pass java=..."
)

# -- Meteor 1.5's statistics and scoring (edu.cmu.meteor.scorer.MeteorStats / MeteorScorer) ----------
STAGES = ("exact", "stem", "synonym", "paraphrase")
STATS_FIELDS: tuple[str, ...] = (
    "test_length",
    "ref_length",
    "test_function_words",
    "ref_function_words",
    *(
        f"{side}_{stage}_{kind}"
        for stage in STAGES
        for kind, side in (("content", "test"), ("content", "ref"), ("function", "test"), ("function", "ref"))
    ),
    "chunks",
    "test_word_matches",
    "ref_word_matches",
)
STATS_LENGTH = len(STATS_FIELDS)  # 23
# `-l en` with the default task ("Ranking"): Eval ID meteor-1.5-wo-en-norm-0.85_0.2_0.6_0.75-ex_st_sy_pa-1.0_0.6_0.8_0.6
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
EVAL_ID = "meteor-1.5-wo-en-norm-0.85_0.2_0.6_0.75-ex_st_sy_pa-1.0_0.6_0.8_0.6"
_TC = slice(4, 20, 4)  # test content matches per stage
_RC = slice(5, 20, 4)
_TF = slice(6, 20, 4)  # test function-word matches per stage
_RF = slice(7, 20, 4)
_CHUNKS, _TWM, _RWM = 20, 21, 22


def _scalar_pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except (ValueError, OverflowError):  # pragma: no cover - statistics are non-negative counts
        return math.nan


_POW = np.frompyfunc(_scalar_pow, 2, 1)


def _pow(x: np.ndarray, y: float) -> np.ndarray:
    """C's pow, element by element: np.power is off by one ulp from it (and from Java's Math.pow) for a
    few percent of inputs, math.pow agrees with the jar on every test segment."""
    return np.asarray(_POW(x, y), dtype=np.float64)


def _as_stats(stats) -> np.ndarray:
    arr = np.asarray(stats, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != STATS_LENGTH:
        raise ValueError(f"METEOR statistics must have {STATS_LENGTH} columns, got shape {arr.shape}")
    return arr


def _total_matches(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MeteorStats(String): testTotalMatches += content_i, += function_i, stage by stage."""
    ttm = np.zeros(s.shape[:-1])
    rtm = np.zeros(s.shape[:-1])
    for i in range(len(STAGES)):
        ttm = ttm + s[..., 4 + 4 * i]
        rtm = rtm + s[..., 5 + 4 * i]
        ttm = ttm + s[..., 6 + 4 * i]
        rtm = rtm + s[..., 7 + 4 * i]
    return ttm, rtm


def meteor_summable_stats(stats) -> np.ndarray:
    """Per-segment statistics in the form that sums to the jar's aggregate (a copy).

    ``MeteorStats.addStats`` does not count the chunks of a perfect segment (every word of both sides
    matched) that is one single chunk; this sets those chunks to 0. A segment's own score is the same
    either way, so :attr:`MeteorResult.stats` holds this form and plain sums of its rows (over any
    subset or resample, with any weights) give the jar's corpus statistics.
    """
    s = np.array(_as_stats(stats), dtype=np.float64, copy=True)
    ttm, rtm = _total_matches(s)
    perfect = (ttm == s[..., 0]) & (rtm == s[..., 1]) & (s[..., _CHUNKS] == 1.0)
    s[..., _CHUNKS] = np.where(perfect, 0.0, s[..., _CHUNKS])
    return s


def meteor_scores_from_stats(sums) -> np.ndarray:
    """Meteor 1.5 scores from (summed) statistics, vectorized over any leading shape: ``(..., 23) -> (...)``.

    Each row is scored as ``MeteorScorer.computeMetrics`` does, operation by operation (IEEE doubles,
    same order), with the ``-l en`` parameters. A row of one segment's statistics gives that segment's
    score; the sum of rows of :func:`meteor_summable_stats` (e.g. ``weights @ stats`` for bootstrap
    resamples, or rows of :attr:`MeteorResult.stats`) gives the corpus score of that (multi)set.
    """
    s = _as_stats(sums)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tl, rl, tfw, rfw = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
        ttm, rtm = _total_matches(s)
        twl = DELTA * (tl - tfw) + (1.0 - DELTA) * tfw
        rwl = DELTA * (rl - rfw) + (1.0 - DELTA) * rfw
        twm = np.zeros(s.shape[:-1])
        rwm = np.zeros(s.shape[:-1])
        for i, w in enumerate(MODULE_WEIGHTS):
            twm = twm + s[..., 4 + 4 * i] * w * DELTA
        for i, w in enumerate(MODULE_WEIGHTS):
            rwm = rwm + s[..., 5 + 4 * i] * w * DELTA
        for i, w in enumerate(MODULE_WEIGHTS):
            twm = twm + s[..., 6 + 4 * i] * w * (1.0 - DELTA)
        for i, w in enumerate(MODULE_WEIGHTS):
            rwm = rwm + s[..., 7 + 4 * i] * w * (1.0 - DELTA)
        precision = twm / twl
        recall = rwm / rwl
        fmean = 1.0 / ((1.0 - ALPHA) / precision + ALPHA / recall)
        chunks = s[..., _CHUNKS]
        one_chunk = (ttm == tl) & (rtm == rl) & (chunks == 1.0)
        frag = np.where(one_chunk, 0.0, chunks / ((s[..., _TWM] + s[..., _RWM]) / 2.0))
        penalty = GAMMA * _pow(frag, BETA)
        score = fmean * (1.0 - penalty)
        score = np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))
    return score if score.ndim else np.float64(score)


meteor_scores_from_stat_sums = meteor_scores_from_stats


def meteor_score_from_stats(stats) -> float:
    """The corpus METEOR of per-segment statistics ``(N, 23)`` (raw jar rows or summable rows), as the
    jar's ``EVAL`` computes it; a single row ``(23,)`` gives that row's score."""
    s = _as_stats(stats)
    if s.ndim == 1:
        return float(meteor_scores_from_stats(s))
    if s.ndim != 2:
        raise ValueError(f"expected (N, {STATS_LENGTH}) statistics, got shape {s.shape}")
    return float(meteor_scores_from_stats(meteor_summable_stats(s).sum(axis=0)))


# -- results --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MeteorResult:
    """METEOR of a set of segments.

    ``score``: the jar's corpus score (its aggregate over the segment statistics, as pycocoevalcap
    reports it; not the mean of ``per_item``). ``per_item``: per-segment scores in input order.
    ``stats``: per-segment statistics ``(N, 23)`` (columns :data:`STATS_FIELDS`), in summable form (see
    :func:`meteor_summable_stats`): ``meteor_scores_from_stats(stats[idx].sum(0))`` is the corpus
    score of any subset. ``ids``: the ids in order (from :func:`meteor`), else ``None``.
    """

    score: float
    per_item: np.ndarray
    stats: np.ndarray
    ids: list | None = None
    jar: str = ""
    version: str = VERSION
    flags: str = FLAGS
    eval_id: str = EVAL_ID
    details: dict = field(default_factory=dict)

    @property
    def signature(self) -> str:
        """``1.5 -l en -norm``: the Meteor version and options (capeval's evaluate prefixes ``meteor:``)."""
        return f"{self.version} {self.flags}"

    @property
    def per_id(self) -> dict:
        if self.ids is None:
            raise AttributeError("per_id needs ids; this result came from score_segments")
        return dict(zip(self.ids, self.per_item.tolist()))

    def __float__(self) -> float:
        return float(self.score)

    def __len__(self) -> int:
        return len(self.per_item)


# -- locating the jar and java --------------------------------------------------------------------
def _jar_in(path: Path) -> Path:
    return path / JAR_NAME if path.is_dir() else path


def find_meteor_jar(path=None) -> Path:
    """``meteor-1.5.jar``: ``path`` (the jar or its directory), else ``$CAPEVAL_METEOR_JAR``, else the one
    in an installed pycocoevalcap. Its ``data/paraphrase-en.gz`` must be beside it (Meteor looks there).
    Raises :class:`MeteorUnavailableError` saying what is missing and how to get it."""
    if path is not None:
        candidates = [("jar=", Path(path))]
    elif os.environ.get(ENV_JAR):
        candidates = [(f"${ENV_JAR}", Path(os.environ[ENV_JAR]))]
    else:
        try:
            spec = importlib.util.find_spec("pycocoevalcap")
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise MeteorUnavailableError(
                f"the Meteor 1.5 jar was not found: pycocoevalcap is not installed; {INSTALL_JAR}"
            )
        candidates = [("pycocoevalcap", Path(p) / "meteor") for p in spec.submodule_search_locations]
    problems = []
    for origin, cand in candidates:
        jar = _jar_in(cand.expanduser())
        if not jar.is_file():
            problems.append(f"{jar} does not exist (from {origin})")
            continue
        if not zipfile.is_zipfile(jar):
            problems.append(f"{jar} is not a jar (a truncated download or a git-lfs pointer?)")
            continue
        para = jar.parent / PARAPHRASE
        if not para.is_file() or para.stat().st_size < 1_000_000:
            problems.append(f"{para} is missing or incomplete (Meteor needs it beside the jar)")
            continue
        return jar.resolve()
    raise MeteorUnavailableError(f"the Meteor 1.5 jar is unusable: {'; '.join(problems)}; {INSTALL_JAR}")


def find_java(java=None) -> str:
    """The ``java`` executable: ``java`` (a path or a command name), else ``$JAVA_HOME/bin/java``, else
    ``java`` on PATH. Raises :class:`MeteorUnavailableError` if none is there."""
    exe = "java.exe" if os.name == "nt" else "java"
    if java is not None:
        java = os.fspath(java)
        if os.path.isdir(java):
            java = (
                os.path.join(java, "bin", exe)
                if os.path.isdir(os.path.join(java, "bin"))
                else os.path.join(java, exe)
            )
        found = shutil.which(java)
        if found:
            return found
        raise MeteorUnavailableError(
            f"Java runtime not found: {java!r} (from java=) is not an executable; {INSTALL_JAVA}"
        )
    home = os.environ.get("JAVA_HOME")
    if home:
        cand = os.path.join(home, "bin", exe)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
        log.warning("JAVA_HOME=%s has no bin/%s; looking for java on PATH", home, exe)
    found = shutil.which("java")
    if found:
        return found
    where = f"JAVA_HOME={home!r} has no bin/{exe} and " if home else ""
    raise MeteorUnavailableError(f"Java runtime not found: {where}no java on PATH; {INSTALL_JAVA}")


def meteor_unavailable_reason(jar=None, java=None) -> str | None:
    """Why METEOR cannot run here (no Java, no jar), or ``None`` if it can (nothing is started)."""
    try:
        find_java(java)
        find_meteor_jar(jar)
    except MeteorUnavailableError as exc:
        return str(exc)
    return None


# -- the multi-threaded front end -----------------------------------------------------------------
def _cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "capeval"


def _sanitized_env() -> dict:
    """The environment for Java: no option variables (``_JAVA_OPTIONS`` overrides the command line),
    C numeric conventions, UTF-8 (so a jar path with non-ASCII characters still opens)."""
    env = {k: v for k, v in os.environ.items() if k not in JAVA_ENV_OPTIONS}
    if os.name != "nt":
        env["LC_ALL"] = "C.UTF-8"
        env["LANG"] = "C.UTF-8"
    return env


def compile_server(java: str, jar: Path) -> Path:
    """The directory holding ``CapevalMeteor.class``, capeval's front end to the jar, compiled once with
    the ``javac`` beside ``java`` and cached in ``$CAPEVAL_CACHE`` (default ``~/.cache/capeval``).

    The front end (``capeval/java/CapevalMeteor.java``) answers the jar's stdio protocol with the jar's
    own configuration and scorer classes, but loads Meteor's tables once and scores with several threads
    (Meteor's ``MeteorScorer(MeteorScorer)`` shares the tables and gives each its own stemmer), instead
    of one JVM per worker each loading them. Raises :class:`MeteorUnavailableError` when there is no
    ``javac`` (a JRE without the JDK) or it cannot compile; ``jvm_mode="processes"`` needs neither."""
    javac = Path(java).resolve().parent / ("javac.exe" if os.name == "nt" else "javac")
    if not javac.is_file():
        raise MeteorUnavailableError(f"no javac beside {java} (a JRE, not a JDK) to compile capeval's front end")
    import hashlib

    source = SERVER_SOURCE.read_bytes()
    key = hashlib.sha256(source)
    for part in (javac, jar):
        st = part.stat()
        key.update(f"|{part}|{st.st_size}|{st.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    target = _cache_root() / f"meteor-server-{key.hexdigest()[:16]}"
    if (target / f"{SERVER_CLASS}.class").is_file():
        return target
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    except OSError as exc:
        raise MeteorUnavailableError(f"cannot write the compiled front end under {target.parent}: {exc}") from exc
    try:
        cmd = [str(javac), "-nowarn", "-encoding", "UTF-8", "-cp", str(jar), "-d", str(build), str(SERVER_SOURCE)]
        try:
            done = subprocess.run(cmd, capture_output=True, env=_sanitized_env(), timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MeteorUnavailableError(f"javac failed: {exc}") from exc
        if done.returncode != 0 or not (build / f"{SERVER_CLASS}.class").is_file():
            tail = done.stderr.decode("utf-8", "replace").strip()[-800:]
            raise MeteorUnavailableError(f"javac could not compile capeval's front end against {jar}: {tail}")
        try:
            os.replace(build, target)  # atomic: a concurrent compile leaves one complete directory
        except OSError:
            if not (target / f"{SERVER_CLASS}.class").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return target


# -- captions -------------------------------------------------------------------------------------
def clean_caption(text: str) -> str:
    """What is sent to the jar: ``|||`` removed (it separates fields), then every run of whitespace
    (tabs, newlines, ``\\r``, U+2028, NBSP... anything ``str.split()`` splits on) made one space, and
    the ends stripped. A plain tokenized caption is unchanged."""
    if "|||" in text:
        text = text.replace("|||", "")
    return " ".join(text.split())


def _check_text(value, what: str) -> str:
    if isinstance(value, str):
        return value
    raise InvalidCaptionError(f"{what} is not a string: {value!r} ({type(value).__name__})")


def _prepare_segments(refs_list, preds_list, labels) -> list[bytes]:
    if len(refs_list) != len(preds_list):
        raise InputError(f"{len(refs_list)} reference lists but {len(preds_list)} predictions")
    lines = []
    for label, refs, pred in zip(labels, refs_list, preds_list):
        if isinstance(pred, (list, tuple)) and len(pred) == 1:  # pycocoevalcap's {id: [caption]}
            pred = pred[0]
        hyp = clean_caption(_check_text(pred, f"the prediction for {label}"))
        if isinstance(refs, str):
            refs = [refs]
        elif not isinstance(refs, Iterable):
            raise InvalidCaptionError(f"the references for {label} are not a list of strings: {refs!r}")
        refs = [clean_caption(_check_text(r, f"reference {k} of {label}")) for k, r in enumerate(refs)]
        if not refs:
            raise EmptyReferencesError(f"{label} has no references")
        if not any(refs):
            raise EmptyReferencesError(f"the references of {label} are all empty")
        line = "SCORE ||| " + " ||| ".join(refs) + " ||| " + hyp + "\n"
        lines.append(line.encode("utf-8", errors="replace"))
    return lines


# -- one JVM --------------------------------------------------------------------------------------
class _JvmFailure(Exception):
    """A worker JVM died, stalled or answered nonsense (internal; retried, then a MeteorError)."""


_EOF = object()
_MEMORY_HINTS = (
    "could not reserve",
    "outofmemoryerror",
    "cannot allocate memory",
    "insufficient memory",
    "failed to map",
    "native memory allocation",
    "initial heap size",
)


class _Jvm:
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
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        self._writes: queue.SimpleQueue = queue.SimpleQueue()
        self.write_error: BaseException | None = None
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
            except (OSError, ValueError) as exc:  # BrokenPipe: the JVM is gone; the reader reports it
                self.write_error = exc
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
            raise _JvmFailure(f"no reply within {timeout:g} s (the JVM stalled)") from None
        if raw is _EOF:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._threads[1].join(timeout=2)  # let the stderr drain catch the JVM's last words
            raise _JvmFailure(f"the JVM closed its output (exit code {code})")
        self.replies += 1
        return raw.decode("ascii", errors="replace").strip()

    def wait_ready(self, timeout: float) -> None:
        with self._ready_lock:  # exactly one thread reads the probe's reply
            if self.ready:
                return
            if self.failed is not None:
                raise _JvmFailure(self.failed)
            try:
                _parse_stats(self.readline(timeout))
            except _JvmFailure as exc:
                self.failed = f"did not start: {exc}"
                raise _JvmFailure(self.failed) from None
            self.ready = True

    def describe(self) -> str:
        tail = " | ".join(self.stderr_tail)
        return f"{self.name} (pid {self.proc.pid})" + (f"; its stderr: {tail[-1500:]}" if tail else "")

    def memory_trouble(self) -> bool:
        text = " ".join(self.stderr_tail).lower()
        return any(h in text for h in _MEMORY_HINTS)

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


def _parse_stats(line: str) -> list[float]:
    parts = line.split()
    if len(parts) != STATS_LENGTH:
        raise _JvmFailure(f"expected {STATS_LENGTH} statistics, got {line[:200]!r}")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise _JvmFailure(f"unparsable statistics {line[:200]!r}") from None


def _parse_score(line: str) -> float:
    try:
        return float(line)
    except ValueError:
        raise _JvmFailure(f"expected a score, got {line[:200]!r}") from None


def _format_stats(row) -> str:
    """One segment's statistics as the jar prints them (integers as ``7.0``)."""
    return " ".join(f"{v:.1f}" if float(v).is_integer() else repr(float(v)) for v in row)


# -- memory ---------------------------------------------------------------------------------------
# A JVM needs ~7 s (9 s of CPU) to start and then scores ~1,400 segments/s; starting two at once
# delays both by ~2.5 s, which pays off from ~7,000 segments.
SEGMENTS_PER_NEW_JVM = 7500
_HEAP = re.compile(r"^(\d+)([kKmMgG]?)$")


def _heap_bytes(heap: str) -> int:
    m = _HEAP.match(heap)
    if not m:
        raise ValueError(f"heap must look like '2G', '1536m' or '1g', got {heap!r}")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def _jvm_footprint(heap: str) -> int:
    """Resident memory of one Meteor JVM (its heap grows towards -Xmx): ~1.4 GB with -Xmx2G, ~0.9 GB
    with -Xmx1G, ~0.6 GB with -Xmx512m (the tables themselves need less than 512 MB)."""
    return min(_heap_bytes(heap), int(1.3 * (1 << 30))) + (200 << 20)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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
    def __init__(self, lines: list[bytes], chunk: int):
        self.lines = lines
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
    ``fallback_heap`` is used when memory is short or a JVM cannot get its heap (results do not depend
    on the heap). ``timeout``: seconds to wait for any single reply before the JVM counts as stalled;
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
        self.java = find_java(java)
        self.jar = find_meteor_jar(jar)
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
        self.jvm_mode = "threads" if self.server_dir is not None else "processes"
        self._slots = 1 if self.jvm_mode == "threads" else self.workers  # JVMs
        _heap_bytes(heap)
        _heap_bytes(fallback_heap)
        self.heap = heap
        self.fallback_heap = fallback_heap
        self.timeout = float(timeout)
        self.startup_timeout = float(startup_timeout)
        self.max_restarts = int(max_restarts)
        self.jvm_args = tuple(jvm_args)
        self.progress = progress
        self.chunk_size = chunk_size
        if segment_scores not in ("python", "jar"):
            raise ValueError(f"segment_scores must be 'python' or 'jar', got {segment_scores!r}")
        self.segment_scores = segment_scores
        self.version = _version_of(self.jar)
        self._lock = threading.Lock()  # one batch at a time
        self._pool_lock = threading.Lock()  # the JVM slots
        self._jvms: list[_Jvm | None] = [None] * self._slots
        self._heaps: list[str] = [heap] * self._slots
        self._closed = False
        self._started = 0
        self._finalizer = weakref.finalize(self, _shutdown, self._jvms)

    # -- lifecycle --
    def __enter__(self) -> Meteor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        running = sum(j is not None for j in self._jvms)
        state = "closed" if self._closed else f"{running}/{self._slots} JVMs running, {self.jvm_mode} mode"
        return f"Meteor({self.jar}, {state})"

    def close(self) -> None:
        """Stop the JVMs (a batch running in another thread fails with MeteorError). Idempotent."""
        self._closed = True
        with self._pool_lock:
            jvms = [j for j in self._jvms if j is not None]
            self._jvms[:] = [None] * len(self._jvms)
        _close_all(jvms)
        self._finalizer.detach()

    @property
    def closed(self) -> bool:
        return self._closed

    def command(self, heap: str | None = None) -> list[str]:
        """The JVM command line: pycocoevalcap's (plus the pinned locale and ``jvm_args``), or in threads
        mode the same Meteor arguments given to capeval's front end with the number of threads."""
        heap = heap or self.heap
        if self.jvm_mode == "processes":
            return [self.java, *LOCALE_ARGS, *self.jvm_args, "-jar", f"-Xmx{heap}", str(self.jar), *METEOR_ARGS]
        # a throughput collector with a large young generation: Meteor's scoring makes short-lived
        # garbage around ~1 GB of long-lived tables (~10% less JVM CPU than the default G1 here)
        young = _heap_bytes(heap) * 3 // 5 >> 20
        return [
            self.java,
            *LOCALE_ARGS,
            "-XX:+UseParallelGC",
            f"-Xms{heap}",
            f"-Xmn{young}m",
            *self.jvm_args,
            f"-Xmx{heap}",
            "-cp",
            f"{self.jar}{os.pathsep}{self.server_dir}",
            SERVER_CLASS,
            str(self.workers),
            *METEOR_ARGS,
        ]

    def _footprint(self, heap: str) -> int:
        """Resident memory of one JVM: the heap is used in full in threads mode (a young generation
        cycled through), towards ``-Xmx`` in processes mode (see :func:`_jvm_footprint`)."""
        return _heap_bytes(heap) + (300 << 20) if self.jvm_mode == "threads" else _jvm_footprint(heap)

    def jvms_for(self, n_segments: int) -> int:
        """JVMs worth running for ``n_segments``: one in threads mode; in processes mode one per
        ``SEGMENTS_PER_NEW_JVM`` segments, at most ``workers`` (starting two at once delays both)."""
        return max(1, min(self._slots, math.ceil(n_segments / SEGMENTS_PER_NEW_JVM)))

    def start(self, n: int | None = None) -> Meteor:
        """Start ``n`` JVMs (default all the pool needs) in the background, without waiting for them."""
        n = self._slots if n is None else max(1, min(int(n), self._slots))
        for slot in range(self._plan(n)):
            self._spawn(slot)
        return self

    def _plan(self, n: int) -> int:
        """How many JVMs to run for ``n`` wanted: those running, plus new ones that fit in memory."""
        running = sum(j is not None for j in self._jvms[:n])
        new = n - running
        avail = _available_memory()
        if new <= 0 or avail is None:
            return n
        fits = int((avail - (256 << 20)) // self._footprint(self.heap))
        if fits >= new:
            return n
        usable = max(running + max(fits, 0), 1)
        if usable < n:
            log.warning(
                "METEOR: %.1f GB of memory available, a JVM with -Xmx%s needs ~%.1f GB: running %d worker JVM(s) instead of %d",
                avail / 2**30,
                self.heap,
                self._footprint(self.heap) / 2**30,
                usable,
                n,
            )
        if running == 0 and fits < 1 and _heap_bytes(self.fallback_heap) < _heap_bytes(self.heap):
            log.warning(
                "METEOR: memory is short; starting the JVM with -Xmx%s instead of -Xmx%s",
                self.fallback_heap,
                self.heap,
            )
            self._heaps[0] = self.fallback_heap
        return usable

    def _spawn(self, slot: int) -> _Jvm:
        with self._pool_lock:
            if self._closed:
                raise MeteorError("this Meteor pool is closed")
            jvm = self._jvms[slot]
            if jvm is None:
                self._started += 1
                jvm = _Jvm(
                    self.command(self._heaps[slot]),
                    _sanitized_env(),
                    str(self.jar.parent),
                    f"meteor-jvm-{slot}.{self._started}",
                )
                self._jvms[slot] = jvm
            return jvm

    def _discard(self, slot: int, jvm: _Jvm) -> None:
        with self._pool_lock:
            if self._jvms[slot] is jvm:
                self._jvms[slot] = None
        jvm.kill()

    def _ready(self, slot: int) -> _Jvm:
        jvm = self._spawn(slot)
        jvm.wait_ready(self.startup_timeout)
        return jvm

    # -- scoring --
    def score_segments(
        self, refs_list: Sequence[Sequence[str]], preds_list: Sequence[str], progress: bool | None = None
    ) -> MeteorResult:
        """METEOR of ``preds_list[i]`` against ``refs_list[i]`` for every i (ids are the indices)."""
        lines = _prepare_segments(refs_list, preds_list, (f"segment {i}" for i in range(len(preds_list))))
        return self._score_lines(lines, progress)

    def _score_lines(self, lines: list[bytes], progress: bool | None, ids=None) -> MeteorResult:
        if not lines:
            raise InputError("nothing to score: no segments")
        if self._closed:
            raise MeteorError("this Meteor pool is closed")
        t0 = time.perf_counter()
        with self._lock:
            n = len(lines)
            running = sum(j is not None for j in self._jvms)
            wanted = max(running, self.jvms_for(n))  # running JVMs are all used
            n_workers = self._plan(wanted)
            chunk = self.chunk_size or int(min(500, max(25, math.ceil(n / (4 * n_workers)))))
            batch = _Batch(lines, chunk)
            threads = [
                threading.Thread(
                    target=self._work, args=(slot, batch), name=f"capeval-meteor-worker-{slot}", daemon=True
                )
                for slot in range(n_workers)
            ]
            show = progress if progress is not None else self.progress
            if show is None:
                show = n >= 5000 and sys.stderr.isatty()
            bar = None
            if show:
                from tqdm.auto import tqdm

                bar = tqdm(total=n, desc="METEOR", unit="seg", leave=False)
            try:
                for t in threads:
                    t.start()
                active, done = len(threads), 0
                # done when every segment is scored: a worker still restarting its JVM is not waited for
                while active and done < n:
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
                self._kill_all()
                raise
            finally:
                if bar is not None:
                    bar.close()
            if batch.fatal is not None:
                raise batch.fatal
            if batch.chunks or any(v is None for v in batch.values):
                why = "; ".join(batch.failures[-6:]) or "no worker JVM could run"
                if self._closed:
                    raise MeteorError(f"METEOR: the pool was closed during the run ({why})")
                raise MeteorError(
                    f"METEOR failed: {len(batch.failures)} JVM failure(s), at most {self.max_restarts} "
                    f"restart(s) per worker allowed. Last: {why}"
                )
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
            "workers": n_workers if self.jvm_mode == "processes" else self.workers,
            "jvms": n_workers,
            "jvm_mode": self.jvm_mode,
            "chunk_size": chunk,
            "segment_scores": self.segment_scores,
            "aggregate": how,
            "heaps": sorted(set(self._heaps[:n_workers])),
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

    def _work(self, slot: int, batch: _Batch) -> None:
        """One worker thread: start (or reuse) its JVM, then take chunks until none is left. A JVM that
        dies, stalls or answers nonsense is killed, its chunk handed back to the queue (another worker
        may take it) and the JVM restarted, at most ``max_restarts`` times."""
        restarts = 0
        try:
            while batch.pending():
                if self._closed:
                    raise MeteorError("this Meteor pool is closed")
                jvm = None
                sent: collections.deque[tuple[int, int]] = collections.deque()  # written, not yet read
                try:
                    jvm = self._spawn(slot)
                    jvm.wait_ready(self.startup_timeout)  # holds no chunk while a JVM starts
                    # threads mode: the next chunk is written before this one is read, so the JVM's
                    # threads never run dry (waiting for the caller between chunks cost ~20% more time
                    # and CPU). Processes mode keeps one chunk per JVM, so idle JVMs can take the rest.
                    depth = 2 if self.jvm_mode == "threads" and self.segment_scores == "python" else 1
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
                            batch.finish(chunk, ok=False)  # back to the queue, for any worker
                        raise
                except _JvmFailure as exc:
                    batch.failures.append(f"{jvm.describe() if jvm else f'worker {slot}'}: {exc}")
                    memory = (
                        jvm is not None and jvm.memory_trouble() and self._heaps[slot] != self.fallback_heap
                    )
                    if jvm is not None:
                        self._discard(slot, jvm)
                    if memory:
                        log.warning(
                            "METEOR: a JVM could not get its -Xmx%s heap; retrying with -Xmx%s",
                            self._heaps[slot],
                            self.fallback_heap,
                        )
                        self._heaps[slot] = self.fallback_heap
                        continue
                    restarts += 1
                    if restarts > self.max_restarts:
                        return
                    if batch.pending():
                        log.warning("METEOR: %s; restarting the JVM and retrying", exc)
        except MeteorError as exc:  # java cannot run at all, or the pool was closed: no retry
            if self._closed and not isinstance(exc, MeteorUnavailableError):
                exc = MeteorError(f"METEOR: the pool was closed during the run ({exc})")
            if batch.fatal is None:
                batch.fatal = exc
            batch.abort.set()
        except Exception as exc:  # pragma: no cover - a bug; never leave the caller waiting
            batch.failures.append(f"worker {slot}: {exc!r}")
        finally:
            batch.events.put(None)

    def _read_chunk(self, jvm: _Jvm, batch: _Batch, a: int, b: int) -> None:
        """The statistics of SCORE lines a..b-1 (already written) read back; with
        ``segment_scores="jar"`` then one EVAL of them for the per-segment scores."""
        stats, values = [], []
        for i in range(a, b):
            try:
                line = jvm.readline(self.timeout)
                values.append(_parse_stats(line))
            except _JvmFailure as exc:
                raise _JvmFailure(f"{exc}, at segment {i} (sent: {batch.lines[i][:300]!r})") from None
            stats.append(line)
        if self.segment_scores == "jar":
            jvm.send(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("ascii"))
            scores = [_parse_score(jvm.readline(self.timeout)) for _ in stats]
            _parse_score(jvm.readline(self.timeout))  # this chunk's own aggregate
            batch.scores[a:b] = scores
        batch.values[a:b] = values

    def _aggregate(self, stats: np.ndarray) -> tuple[float, str]:
        """The jar's corpus score. The statistics are integer counts, so their sum is exact and one EVAL
        of the (summable) sums is bit-identical to pycocoevalcap's EVAL over every segment; were they
        not, every segment's line is sent, as pycocoevalcap does."""
        sums = stats.sum(axis=0)
        if bool(np.all(stats == np.round(stats))) and float(np.abs(sums).max()) < 2.0**52:
            payload = "EVAL ||| " + _format_stats(sums) + "\n"
            expect, how = 1, "jar EVAL of the summed statistics"
        else:  # pragma: no cover - Meteor 1.5 prints integer counts
            payload = "EVAL ||| " + " ||| ".join(map(_format_stats, stats)) + "\n"
            expect, how = len(stats), "jar EVAL of every segment's statistics"
        failures = []
        for _attempt in range(1 + max(self.max_restarts, 0)):
            running = [k for k, j in enumerate(self._jvms) if j is not None]
            slot = running[0] if running else 0
            jvm = None
            try:
                jvm = self._spawn(slot)
                jvm.wait_ready(self.startup_timeout)
                jvm.send(payload.encode("ascii"))
                for _ in range(expect):
                    _parse_score(jvm.readline(self.timeout))
                return _parse_score(jvm.readline(self.timeout)), how
            except _JvmFailure as exc:
                failures.append(f"{jvm.describe() if jvm else f'worker {slot}'}: {exc}")
                if jvm is not None:
                    self._discard(slot, jvm)
        raise MeteorError(f"METEOR: the aggregate EVAL failed: {'; '.join(failures)}")

    def aggregate(self, stats) -> float:
        """The jar's corpus score for per-segment statistics ``(N, 23)`` (raw or summable rows)."""
        s = meteor_summable_stats(stats)
        if s.ndim != 2 or not len(s):
            raise ValueError(f"expected (N, {STATS_LENGTH}) statistics, got shape {s.shape}")
        if self._closed:
            raise MeteorError("this Meteor pool is closed")
        with self._lock:
            return self._aggregate(s)[0]

    def _kill_all(self) -> None:
        with self._pool_lock:
            jvms = [j for j in self._jvms if j is not None]
            self._jvms[:] = [None] * len(self._jvms)
        for j in jvms:
            j.kill()


def _close_all(jvms: list, grace: float = 2.0) -> None:
    """End of input to every JVM at once (Meteor exits on it), then kill what is left after ``grace``."""
    jvms = [j for j in jvms if j is not None]
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


def _shutdown(jvms: list) -> None:
    _close_all(list(jvms))


def _version_of(jar: Path) -> str:
    m = re.search(r"meteor-(\d+(?:\.\d+)*)", jar.name)
    return m.group(1) if m else "unknown"


# -- one-shot functions ---------------------------------------------------------------------------
def _run(n: int, prepare_lines, ids, scorer: Meteor | None, progress, options) -> MeteorResult:
    """Score the ``n`` SCORE lines ``prepare_lines()`` makes; a given pool starts its JVM first, so it
    loads while the lines are prepared (a pool made here only once the input is known to be valid)."""
    if scorer is not None and n:
        scorer.start(scorer.jvms_for(n))
    lines = prepare_lines()
    if not lines:
        raise InputError("nothing to score: no segments")
    if scorer is not None:
        if options:
            raise TypeError(f"pass either scorer= or pool options, not both: {sorted(options)}")
        return scorer._score_lines(lines, progress, ids)
    with Meteor(**options) as pool:
        return pool._score_lines(lines, progress, ids)


def meteor_segments(
    refs_list: Sequence[Sequence[str]],
    preds_list: Sequence[str],
    *,
    scorer: Meteor | None = None,
    progress: bool | None = None,
    **options,
) -> MeteorResult:
    """METEOR of ``preds_list[i]`` against ``refs_list[i]``; ``options`` as for :class:`Meteor` (a pool
    is started and closed), or ``scorer=`` an open :class:`Meteor` to reuse its JVMs."""
    labels = (f"segment {i}" for i in range(len(preds_list)))
    prepare_lines = functools.partial(_prepare_segments, refs_list, preds_list, labels)
    return _run(len(preds_list), prepare_lines, None, scorer, progress, options)


def meteor(
    refs: Mapping,
    preds: Mapping,
    *,
    jar=None,
    java=None,
    workers: int | None = None,
    heap: str = "2G",
    timeout: float = 60.0,
    progress: bool | None = None,
    scorer: Meteor | None = None,
    **options,
) -> MeteorResult:
    """METEOR 1.5 as pycocoevalcap computes it: ``refs`` ``{id: [reference, ...]}``, ``preds`` ``{id:
    caption}`` (or ``{id: [caption]}``), matched by id, in ``refs``' order. Text is scored as given
    (pycocoevalcap feeds PTB-tokenized, lowercased text; see :func:`capeval.tokenize.tokenize`).

    Returns a :class:`MeteorResult`: ``score`` (the corpus score), ``per_item``, ``stats``, ``ids``.
    Raises :class:`MeteorUnavailableError` without Java or the jar, :class:`MeteorError` if the JVMs
    keep failing. Other keywords go to :class:`Meteor`; ``scorer=`` reuses an open pool.
    """
    if not isinstance(refs, Mapping) or not isinstance(preds, Mapping):
        raise InputError("refs and preds must be mappings {id: ...}")
    missing_preds = [i for i in refs if i not in preds]
    extra_preds = [i for i in preds if i not in refs]
    if missing_preds or extra_preds:
        parts = []
        if missing_preds:
            parts.append(
                f"{len(missing_preds)} id(s) have references but no prediction: {format_ids(missing_preds)}"
            )
        if extra_preds:
            parts.append(
                f"{len(extra_preds)} id(s) have a prediction but no references: {format_ids(extra_preds)}"
            )
        raise MissingIdError("; ".join(parts))
    ids = list(refs)
    labels = (f"id {i!r}" for i in ids)
    prepare_lines = functools.partial(_prepare_segments, [refs[i] for i in ids], [preds[i] for i in ids], labels)
    if scorer is None:
        options = {"jar": jar, "java": java, "workers": workers, "heap": heap, "timeout": timeout, **options}
    return _run(len(ids), prepare_lines, ids, scorer, progress, options)


class _CallableModule(types.ModuleType):
    """``capeval.meteor`` names both this module and :func:`meteor`; importing the module rebinds the
    package attribute to it, so the module itself forwards calls: ``capeval.meteor(refs, preds)``."""

    def __call__(self, refs, preds, **kwargs) -> MeteorResult:
        return meteor(refs, preds, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
