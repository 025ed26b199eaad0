"""The Meteor wrapper's machinery against a fake ``java`` that speaks the stdio protocol and misbehaves
on request (tests/fixtures/meteor_fake_java.py): dying, stalling, garbage, stderr floods, no memory.
Fast (no JVM); the same faults against the real jar are in test_meteor_jvm.py."""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from meteor_helpers import make_jar_dir

from capeval.errors import MeteorError, MeteorUnavailableError

# the package: ``import capeval.meteor as M`` yields the function capeval.meteor where capeval defines one
M = importlib.import_module("capeval.meteor")
SLOTS = importlib.import_module("capeval.meteor.slots")

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the fake java is a POSIX shell wrapper")

FAKE = Path(__file__).parent / "fixtures" / "meteor_fake_java.py"
REFS = [[f"a dog number {i} runs", f"the {i} cat sleeps"] for i in range(60)]
PREDS = [f"a dog {i} sleeps" for i in range(60)]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """(java, jar, record path); the fake's behaviour is set with monkeypatch.setenv('FAKE_METEOR_...')."""
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    java.chmod(0o755)
    jar = make_jar_dir(tmp_path / "meteor")
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("FAKE_METEOR_RECORD", str(record))
    monkeypatch.setenv("FAKE_METEOR_ONCE", str(tmp_path / "once"))
    for name in (
        "DIE_AFTER",
        "STALL_AFTER",
        "GARBAGE_AFTER",
        "STDERR",
        "NO_MEMORY_ABOVE",
        "SLOW_START",
        "OOM_WORDS",
        "OOM_REPLY",
    ):
        monkeypatch.delenv(f"FAKE_METEOR_{name}", raising=False)
    return str(java), jar, record


def recorded(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


def expected(refs=REFS, preds=PREDS):
    """What the fake returns, computed directly."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_meteor", FAKE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    raw = np.array(
        [mod.stats_for([M.clean_caption(r) for r in rs], M.clean_caption(p)) for rs, p in zip(refs, preds)]
    )
    return M.meteor_scores_from_stats(raw), M.meteor_score_from_stats(raw)


def pool(java, jar, **kw):
    kw.setdefault("timeout", 5)
    kw.setdefault("startup_timeout", 20)
    kw.setdefault("chunk_size", 10)
    return M.Meteor(jar=jar, java=java, **kw)


def test_command_line_environment_and_results(fake, monkeypatch):
    java, jar, record = fake
    monkeypatch.setenv("_JAVA_OPTIONS", "-Duser.language=de")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    with pool(java, jar, workers=2) as m:
        res = m.score_segments(REFS, PREDS)
    per, corpus = expected()
    np.testing.assert_array_equal(res.per_item, per)
    assert res.score == corpus
    assert res.stats.shape == (60, M.STATS_LENGTH)
    starts = [r for r in recorded(record) if "argv" in r]
    assert starts[0]["argv"] == [
        "-Duser.language=en",
        "-Duser.country=US",
        "-jar",
        "-Xmx2G",
        str(jar),
        "-",
        "-",
        "-stdio",
        "-l",
        "en",
        "-norm",
    ]
    assert starts[0]["LC_ALL"] == "C.UTF-8" and starts[0]["_JAVA_OPTIONS"] is None


def test_segment_scores_from_the_jar(fake):
    java, jar, record = fake
    with pool(java, jar, workers=1, segment_scores="jar") as m:
        res = m.score_segments(REFS, PREDS)
    per, corpus = expected()
    np.testing.assert_array_equal(res.per_item, per)
    assert res.score == corpus
    evals = [r["line"] for r in recorded(record) if r.get("line", "").startswith("EVAL")]
    assert len(evals) == 6 + 1  # one per chunk of 10, then the corpus EVAL of the sums
    with pytest.raises(ValueError):
        M.Meteor(jar=jar, java=java, segment_scores="nltk")


def test_progress_bar(fake, capsys):
    java, jar, _ = fake
    with pool(java, jar, workers=1) as m:
        res = m.score_segments(REFS, PREDS, progress=True)
    assert res.score == expected()[1]
    assert "METEOR" in capsys.readouterr().err


def test_meteor_function_matches_by_id_in_refs_order(fake):
    java, jar, _ = fake
    refs = {f"id{i}": r for i, r in enumerate(REFS)}
    preds = {f"id{i}": [p] for i, p in reversed(list(enumerate(PREDS)))}  # other order, pycocoevalcap style
    res = M.meteor(refs, preds, jar=jar, java=java, workers=1, timeout=5)
    assert res.ids == list(refs)
    per, corpus = expected()
    np.testing.assert_array_equal(res.per_item, per)
    assert res.score == corpus and res.per_id["id3"] == per[3]


def test_captions_are_sanitized_before_sending(fake):
    java, jar, record = fake
    refs = [["a ||| b", "line\nbreak", "tab\there\r\n"], ["\u2028 x \u00a0 y"]]
    preds = ["p ||| q\nr", ""]
    with pool(java, jar, workers=1) as m:
        m.score_segments(refs, preds)
    lines = [r["line"] for r in recorded(record) if r.get("line", "").startswith("SCORE")]
    assert lines[1:] == ["SCORE ||| a b ||| line break ||| tab here ||| p q r", "SCORE ||| x y ||| "]


def test_dead_jvm_is_restarted_and_the_chunk_retried(fake, monkeypatch, caplog):
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_DIE_AFTER", "25")  # the probe is reply 0
    with caplog.at_level(logging.WARNING, logger="capeval.meteor"), pool(java, jar, workers=1) as m:
        res = m.score_segments(REFS, PREDS)
    per, corpus = expected()
    np.testing.assert_array_equal(res.per_item, per)
    assert res.score == corpus
    assert len(res.details["failures"]) == 1 and "exit code 3" in res.details["failures"][0]
    assert "at segment 24" in res.details["failures"][0]
    assert "restarting" in caplog.text


def test_stalled_jvm_times_out_instead_of_hanging(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_STALL_AFTER", "15")
    t = time.monotonic()
    with pool(java, jar, workers=1, timeout=1.5) as m:
        res = m.score_segments(REFS, PREDS)
    assert time.monotonic() - t < 30
    assert res.score == expected()[1]
    assert "stalled" in res.details["failures"][0]


def test_gives_up_with_a_clear_error_after_bounded_restarts(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.delenv("FAKE_METEOR_ONCE")  # misbehave every time
    monkeypatch.setenv("FAKE_METEOR_STALL_AFTER", "5")
    t = time.monotonic()
    with pool(java, jar, workers=1, timeout=1, max_restarts=1) as m:
        with pytest.raises(MeteorError, match="stalled") as info:
            m.score_segments(REFS, PREDS)
        assert "2 JVM failure(s)" in str(info.value) and "at segment 4" in str(info.value)
        assert time.monotonic() - t < 30
        # no deadlock after the exception: the pool still works once the JVM behaves
        monkeypatch.delenv("FAKE_METEOR_STALL_AFTER")
        assert m.score_segments(REFS[:3], PREDS[:3]).score == expected(REFS[:3], PREDS[:3])[1]


def test_garbage_reply_is_a_failure_not_a_float_error(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_GARBAGE_AFTER", "7")
    with pool(java, jar, workers=1) as m:
        res = m.score_segments(REFS, PREDS)
    assert res.score == expected()[1]
    assert "expected 23 statistics, got ''" in res.details["failures"][0]


def test_stderr_flood_does_not_block(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_STDERR", "20000")  # 20 kB per reply, over a megabyte in all
    with pool(java, jar, workers=1) as m:
        res = m.score_segments(REFS, PREDS)
    assert res.score == expected()[1] and not res.details["failures"]


def test_other_worker_takes_over_when_one_keeps_failing(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_DIE_AFTER", "12")
    with pool(java, jar, workers=2, max_restarts=0) as m:
        m.start()
        res = m.score_segments(REFS, PREDS)
    per, corpus = expected()
    np.testing.assert_array_equal(res.per_item, per)
    assert res.score == corpus and len(res.details["failures"]) == 1


def test_heap_falls_back_when_the_jvm_cannot_reserve_it(fake, monkeypatch, caplog):
    java, jar, record = fake
    monkeypatch.setenv("FAKE_METEOR_NO_MEMORY_ABOVE", "1024")
    with caplog.at_level(logging.WARNING, logger="capeval.meteor"), pool(java, jar, workers=1) as m:
        res = m.score_segments(REFS, PREDS)
    assert res.score == expected()[1] and res.details["heaps"] == ["1G"]
    assert [r["argv"][3] for r in recorded(record) if "argv" in r] == ["-Xmx2G", "-Xmx1G"]
    assert "-Xmx1G" in caplog.text


def test_fewer_workers_and_smaller_heap_when_memory_is_short(fake, monkeypatch, caplog):
    java, jar, record = fake
    monkeypatch.setattr(SLOTS, "available_memory", lambda: int(2.0 * 2**30))  # room for one 2G JVM
    with caplog.at_level(logging.WARNING, logger="capeval.meteor"), pool(java, jar, workers=2) as m:
        m.start()
        assert sum(j is not None for j in m._slots.jvms) == 1
        assert m.score_segments(REFS, PREDS).details["workers"] == 1
    assert "running 1 worker JVM(s) instead of 2" in caplog.text
    monkeypatch.setattr(SLOTS, "available_memory", lambda: int(0.9 * 2**30))  # not even that
    with pool(java, jar, workers=2) as m:
        res = m.score_segments(REFS, PREDS)
    assert res.details["workers"] == 1 and res.details["heaps"] == ["1G"]
    assert res.score == expected()[1]
    assert [r["argv"][3] for r in recorded(record) if "argv" in r] == ["-Xmx2G", "-Xmx1G"]


def test_java_that_cannot_run_is_unavailable(fake, tmp_path):
    _, jar, _ = fake
    broken = tmp_path / "broken-java"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    with pytest.raises(MeteorUnavailableError, match="cannot run"):
        M.meteor({1: ["a"]}, {1: "a"}, jar=jar, java=str(broken))


def test_thread_safe_and_usable_after_close_errors(fake):
    java, jar, _ = fake
    results, errors = [], []
    with pool(java, jar, workers=2) as m:

        def run(k):
            try:
                results.append((k, m.score_segments(REFS[k:], PREDS[k:]).score))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(k,)) for k in (0, 10, 20, 30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    assert sorted(results) == [(k, expected(REFS[k:], PREDS[k:])[1]) for k in (0, 10, 20, 30)]
    assert m.closed
    with pytest.raises(MeteorError, match="closed"):
        m.score_segments(REFS, PREDS)
    m.close()  # idempotent


def test_close_from_another_thread_interrupts_a_run(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.delenv("FAKE_METEOR_ONCE")
    monkeypatch.setenv("FAKE_METEOR_STALL_AFTER", "5")
    m = pool(java, jar, workers=1, timeout=30)
    threading.Timer(2.0, m.close).start()
    t = time.monotonic()
    with pytest.raises(MeteorError, match="closed"):
        m.score_segments(REFS, PREDS)
    assert time.monotonic() - t < 20


def test_jvms_end_with_the_pool(fake):
    java, jar, _ = fake
    m = pool(java, jar, workers=2)
    m.score_segments(REFS, PREDS)
    procs = [j.proc for j in m._slots.jvms if j is not None]
    assert procs and all(p.poll() is None for p in procs)
    m.close()
    assert all(p.poll() is not None for p in procs)
    m2 = pool(java, jar, workers=1)
    m2.score_segments(REFS[:2], PREDS[:2])
    procs = [j.proc for j in m2._slots.jvms if j is not None]
    del m2  # the finalizer closes them (as at interpreter exit)
    import gc

    gc.collect()
    deadline = time.monotonic() + 10
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(p.poll() is not None for p in procs)


def test_jvm_mode_without_a_jdk(fake):
    java, jar, _ = fake  # a java with no javac beside it: no front end to compile
    with pool(java, jar) as m:
        assert m.jvm_mode == "processes" and "-jar" in m.command()
    with pytest.raises(MeteorUnavailableError, match="javac"):
        pool(java, jar, jvm_mode="threads")
    with pytest.raises(ValueError, match="jvm_mode"):
        pool(java, jar, jvm_mode="fibers")


# -- a caption too long for the heap (issue 18, item 8) ---------------------------------------------
LONG = " ".join(["dog"] * 200)


@pytest.mark.parametrize("how", ["jar dies", "front end answers"])
def test_heap_overflow_names_the_id_and_is_not_retried(fake, monkeypatch, caplog, how):
    """An OutOfMemoryError while scoring is the caption's fault, not a JVM that could not get its heap:
    no smaller heap, no restart; a short MeteorHeapError naming the image id and what to do."""
    java, jar, record = fake
    monkeypatch.delenv("FAKE_METEOR_ONCE")
    monkeypatch.setenv("FAKE_METEOR_OOM_WORDS", "100")
    if how == "front end answers":
        monkeypatch.setenv("FAKE_METEOR_OOM_REPLY", "1")
    refs = {f"img-{k}": REFS[k] for k in range(30)}
    preds = {f"img-{k}": PREDS[k] for k in range(30)}
    preds["img-17"] = LONG
    with caplog.at_level(logging.WARNING, logger="capeval.meteor"):
        with pytest.raises(M.MeteorHeapError) as info:
            M.meteor(refs, preds, jar=jar, java=java, workers=1, timeout=5, chunk_size=10)
    message = str(info.value)
    assert "id 'img-17'" in message and "-Xmx2G" in message and "heap=" in message and "shorten" in message
    assert "200 words" in message and len(message) < 300 and "\n" not in message
    assert info.value.label == "id 'img-17'" and info.value.heap == "2G"
    assert [r["argv"][3] for r in recorded(record) if "argv" in r] == ["-Xmx2G"]  # one JVM, no smaller heap
    assert "retrying" not in caplog.text and "restarting" not in caplog.text


def test_heap_overflow_without_ids_names_the_segment(fake, monkeypatch):
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_OOM_WORDS", "100")
    with pool(java, jar, workers=1) as m:
        with pytest.raises(M.MeteorHeapError, match=r"scoring segment 3 \(its prediction has 200 words"):
            m.score_segments(REFS[:5], PREDS[:3] + [LONG] + PREDS[4:5])
        # the pool stays usable: a fresh JVM scores the rest
        assert m.score_segments(REFS[:3], PREDS[:3]).score == expected(REFS[:3], PREDS[:3])[1]


def test_warnings_reach_stderr_in_capeval_form(fake, monkeypatch, tmp_path):
    """Without logging configured by the application, the pool's warnings are `capeval: warning:` lines
    (docs/cli.md); with it configured, they go to the application's handlers only."""
    java, jar, _ = fake
    monkeypatch.setenv("FAKE_METEOR_NO_MEMORY_ABOVE", "1024")
    script = (
        "import importlib, logging, sys\n"
        "M = importlib.import_module('capeval.meteor')\n"
        "if sys.argv[1] == 'configured':\n"
        "    logging.basicConfig(format='APP %(name)s %(message)s')\n"
        f"M.meteor({{1: ['a dog']}}, {{1: 'a dog'}}, jar={str(jar)!r}, java={java!r}, workers=1, timeout=5)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = {
        mode: subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, env=env, timeout=60
        )
        for mode in ("plain", "configured")
    }
    plain = runs["plain"].stderr.splitlines()
    assert runs["plain"].returncode == 0, runs["plain"].stderr
    assert plain == ["capeval: warning: METEOR: a JVM could not get its -Xmx2G heap; retrying with -Xmx1G"]
    configured = runs["configured"].stderr.splitlines()
    assert configured == [
        "APP capeval.meteor METEOR: a JVM could not get its -Xmx2G heap; retrying with -Xmx1G"
    ]
