"""The Meteor 1.5 jar as a test oracle: one long-lived ``-stdio`` process answering ``SCORE`` lines with
its raw statistics and ``EVAL`` lines with its scores (Java needed; used by the differential tests,
the fixture generator and the benchmark)."""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np

from .resources import find_jar

JAVA_OPTIONS = ("-Xmx2G", "-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8")
JAR_ARGS = ("-", "-", "-stdio", "-l", "en", "-norm")


def java_available() -> str | None:
    """The java executable, or None."""
    return shutil.which("java")


def _converse(requests: list[bytes], answers_per_request: list[int], jar=None) -> list[str]:
    java = java_available()
    if java is None:
        raise RuntimeError("no java on PATH")
    jar = find_jar(jar)
    proc = subprocess.Popen(
        [java, *JAVA_OPTIONS, "-jar", str(jar), *JAR_ARGS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(jar.parent),
    )

    def feed():  # written from a thread: the jar's answers must be read while it is fed
        try:
            for line in requests:
                proc.stdin.write(line)
            proc.stdin.close()
        except BrokenPipeError:  # pragma: no cover - the reader reports the failure
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out = []
    try:
        for k, count in enumerate(answers_per_request):
            for _ in range(count):
                answer = proc.stdout.readline()
                if not answer:
                    raise RuntimeError(f"the jar stopped answering at request {k}")
                out.append(answer.decode("utf-8").strip())
    finally:
        writer.join(timeout=5)
        proc.kill()
        proc.wait()
    return out


def jar_statistics_lines(references: list[list[str]], hypotheses: list[str], jar=None) -> list[str]:
    """The jar's statistics line for each ``SCORE ||| ref1 ||| ... ||| hyp``, as printed."""
    requests = [
        ("SCORE ||| " + " ||| ".join(refs) + " ||| " + hyp + "\n").encode("utf-8")
        for refs, hyp in zip(references, hypotheses)
    ]
    return _converse(requests, [1] * len(requests), jar)


def jar_statistics(references: list[list[str]], hypotheses: list[str], jar=None) -> np.ndarray:
    """:func:`jar_statistics_lines` parsed to an ``(N, 23)`` array."""
    lines = jar_statistics_lines(references, hypotheses, jar)
    return np.asarray([[float(x) for x in line.split()] for line in lines], dtype=np.float64).reshape(-1, 23)


def jar_eval(stat_lines: list[str], jar=None) -> tuple[list[float], float]:
    """``EVAL ||| stats1 ||| stats2 ...``: the jar's score of each segment and its corpus score."""
    request = ("EVAL ||| " + " ||| ".join(stat_lines) + "\n").encode("utf-8")
    answers = _converse([request], [len(stat_lines) + 1], jar)
    return [float(a) for a in answers[:-1]], float(answers[-1])
