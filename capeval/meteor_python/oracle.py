"""The Meteor 1.5 jar as a test oracle: one long-lived ``-stdio`` process answering ``SCORE`` lines with
its raw statistics (Java needed; used by the differential tests and the benchmark)."""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np

from .resources import find_jar

JAR_COMMAND = ("-Xmx2G", "-Duser.language=en", "-Duser.country=US", "-Dfile.encoding=UTF-8", "-jar")
JAR_ARGS = ("-", "-", "-stdio", "-l", "en", "-norm")


def java_available() -> str | None:
    """The java executable, or None."""
    return shutil.which("java")


def jar_statistics(references: list[list[str]], hypotheses: list[str], jar=None) -> np.ndarray:
    """The jar's statistics line for each ``SCORE ||| refs ||| hyp``, parsed to an ``(N, 23)`` array."""
    java = java_available()
    if java is None:
        raise RuntimeError("no java on PATH")
    lines = [
        ("SCORE ||| " + " ||| ".join(refs) + " ||| " + hyp + "\n").encode("utf-8")
        for refs, hyp in zip(references, hypotheses)
    ]
    proc = subprocess.Popen(
        [java, *JAR_COMMAND, str(find_jar(jar)), *JAR_ARGS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(find_jar(jar).parent),
    )

    def feed():
        try:
            for line in lines:
                proc.stdin.write(line)
            proc.stdin.close()
        except BrokenPipeError:  # pragma: no cover - the reader reports the failure
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    rows = []
    try:
        for k in range(len(lines)):
            answer = proc.stdout.readline()
            if not answer:
                raise RuntimeError(f"the jar stopped answering at segment {k}")
            rows.append([float(x) for x in answer.split()])
    finally:
        writer.join(timeout=5)
        proc.kill()
        proc.wait()
    return np.asarray(rows, dtype=np.float64).reshape(-1, 23)
