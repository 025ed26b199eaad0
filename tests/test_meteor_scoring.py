"""METEOR without a JVM: the reimplemented aggregate vs the jar's recorded output, input handling,
finding java and the jar. Fixtures: tests/fixtures/meteor_make_fixtures.py (pycocoevalcap 1.2)."""

from __future__ import annotations

import gzip
import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from meteor_helpers import make_jar_dir

from capeval.errors import (
    EmptyReferencesError,
    InputError,
    InvalidCaptionError,
    MeteorUnavailableError,
    MissingIdError,
)

# the package: ``import capeval.meteor as M`` yields the function capeval.meteor where capeval defines one
M = importlib.import_module("capeval.meteor")

FIXTURES = Path(__file__).parent / "fixtures"


def load(name):
    with gzip.open(FIXTURES / f"meteor_{name}.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module", params=["coco_loo", "nice_val"])
def fx(request):
    data = load(request.param)
    data["raw"] = np.array([[float(x) for x in s.split()] for s in data["stats"]])
    return data


# -- the aggregate formula --------------------------------------------------------------------------
def test_stats_are_integer_counts(fx):
    assert fx["raw"].shape == (len(fx["ids"]), M.STATS_LENGTH)
    assert np.all(fx["raw"] == np.round(fx["raw"]))


def test_per_segment_scores_equal_the_jar(fx):
    got = M.meteor_scores_from_stats(fx["raw"])
    np.testing.assert_array_equal(got, np.array(fx["scores"]))  # bit-identical
    # summable rows score the same
    np.testing.assert_array_equal(M.meteor_scores_from_stats(M.meteor_summable_stats(fx["raw"])), got)


def test_corpus_score_equals_the_jar(fx):
    assert M.meteor_score_from_stats(fx["raw"]) == fx["corpus"]
    summable = M.meteor_summable_stats(fx["raw"])
    assert float(M.meteor_scores_from_stats(summable.sum(axis=0))) == fx["corpus"]
    head = fx["head"]
    assert M.meteor_score_from_stats(fx["raw"][: head["n"]]) == head["corpus"]


def test_subsets_and_resamples_equal_the_jar(fx):
    summable = M.meteor_summable_stats(fx["raw"])
    for sub in fx["eval_subsets"]:
        idx = np.array(sub["idx"])
        assert M.meteor_score_from_stats(fx["raw"][idx]) == pytest.approx(sub["corpus"], abs=1e-12)
        # bootstrap-style: weights (counts per segment) @ summable statistics
        weights = np.bincount(idx, minlength=len(summable)).astype(np.float64)
        sums = np.stack([weights @ summable, summable[idx].sum(axis=0)])
        np.testing.assert_allclose(M.meteor_scores_from_stats(sums), sub["corpus"], rtol=0, atol=1e-12)


def test_perfect_match_aggregation_rule_matters():
    """addStats skips the chunks of a perfect one-chunk segment; the fixture subset proves the jar does."""
    fx = load("coco_loo")
    raw = np.array([[float(x) for x in s.split()] for s in fx["stats"]])
    perfect = [s for s in fx["eval_subsets"] if len(s["idx"]) > 5 and s["idx"][-5:] == [0, 1, 2, 3, 4]]
    assert perfect, "fixture has no subset of perfect matches"
    idx = perfect[0]["idx"]
    naive = float(M.meteor_scores_from_stats(raw[idx].sum(axis=0)))
    assert naive != pytest.approx(perfect[0]["corpus"], abs=1e-9)
    assert M.meteor_score_from_stats(raw[idx]) == perfect[0]["corpus"]


def test_vectorized_shapes_and_edge_rows():
    row = np.zeros(M.STATS_LENGTH)
    assert M.meteor_scores_from_stats(row) == 0.0  # empty vs empty: NaN -> 0, as the jar
    batch = np.zeros((3, 2, M.STATS_LENGTH))
    assert M.meteor_scores_from_stats(batch).shape == (3, 2)
    perfect = np.zeros(M.STATS_LENGTH)
    perfect[[0, 1, 4, 5, 20, 21, 22]] = [3, 3, 3, 3, 1, 3, 3]
    assert M.meteor_scores_from_stats(perfect) == 1.0
    with pytest.raises(ValueError):
        M.meteor_scores_from_stats(np.zeros(5))


# -- caption cleaning and input checks ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text, sent",
    [
        ("a man riding a horse", "a man riding a horse"),
        ("a ||| b", "a b"),
        ("a|||b", "ab"),  # as pycocoevalcap does to predictions
        ("||||||", ""),
        ("a\nb\r\nc\td", "a b c d"),
        ("  a\u2028b\u2029c\u00a0d\x85e\u3000f  ", "a b c d e f"),
        ("", ""),
        ("caf\u00e9 \U0001f600 \u4e00", "caf\u00e9 \U0001f600 \u4e00"),
    ],
)
def test_clean_caption(text, sent):
    assert M.clean_caption(text) == sent


def test_score_lines_are_one_protocol_line_each():
    from capeval.meteor.protocol import clean_segments, score_line

    refs, hyps = clean_segments(
        [["a ||| b", "x\ny"], "single ref"], ["p\r\nq ||| r", ["pycocoevalcap style"]], ["one", "two"]
    )
    assert refs == [["a b", "x y"], ["single ref"]] and hyps == ["p q r", "pycocoevalcap style"]
    lines = [score_line(r, h) for r, h in zip(refs, hyps)]
    assert lines == [b"SCORE ||| a b ||| x y ||| p q r\n", b"SCORE ||| single ref ||| pycocoevalcap style\n"]
    for line in lines:
        assert line.count(b"\n") == 1 and line.count(b"|||") == len(line.split(b"|||")) - 1


def test_input_errors_need_no_java():
    with pytest.raises(MissingIdError, match="no prediction"):
        M.meteor({1: ["a"], 2: ["b"]}, {1: "a"}, java="/nonexistent/java")
    with pytest.raises(MissingIdError, match="no references"):
        M.meteor({1: ["a"]}, {1: "a", 3: "c"}, java="/nonexistent/java")
    with pytest.raises(InvalidCaptionError):
        M.meteor({1: ["a"]}, {1: None}, java="/nonexistent/java")
    with pytest.raises(InvalidCaptionError):
        M.meteor({1: ["a", 3.5]}, {1: "a"}, java="/nonexistent/java")
    with pytest.raises(InvalidCaptionError):
        M.meteor({1: ["a"]}, {1: ["a", "b"]}, java="/nonexistent/java")
    with pytest.raises(EmptyReferencesError):
        M.meteor({1: []}, {1: "a"}, java="/nonexistent/java")
    with pytest.raises(EmptyReferencesError):
        M.meteor({1: ["", " ||| "]}, {1: "a"}, java="/nonexistent/java")
    with pytest.raises(InputError):
        M.meteor_segments([["a"]], ["a", "b"], java="/nonexistent/java")
    with pytest.raises(InputError, match="nothing to score"):
        M.meteor({}, {}, java="/nonexistent/java")
    with pytest.raises(MeteorUnavailableError, match="not an executable"):
        M.meteor({1: ["a"]}, {1: "a"}, java="/nonexistent/java")  # valid input: now java is looked for


# -- finding java and the jar -----------------------------------------------------------------------
def test_find_jar_argument_env_and_errors(tmp_path, monkeypatch):
    jar = make_jar_dir(tmp_path / "m")
    assert M.find_meteor_jar(jar) == jar.resolve()
    assert M.find_meteor_jar(jar.parent) == jar.resolve()  # a directory works too
    monkeypatch.setenv(M.ENV_JAR, str(jar))
    assert M.find_meteor_jar() == jar.resolve()
    with pytest.raises(MeteorUnavailableError, match="pip install pycocoevalcap"):
        M.find_meteor_jar(tmp_path / "nowhere" / "meteor-1.5.jar")
    (tmp_path / "lfs").mkdir()
    (tmp_path / "lfs" / "meteor-1.5.jar").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(MeteorUnavailableError, match="not a jar"):
        M.find_meteor_jar(tmp_path / "lfs")
    (jar.parent / "data" / "paraphrase-en.gz").unlink()
    with pytest.raises(MeteorUnavailableError, match="paraphrase-en.gz"):
        M.find_meteor_jar(jar)


def test_find_jar_in_pycocoevalcap(monkeypatch):
    pytest.importorskip("pycocoevalcap")
    monkeypatch.delenv(M.ENV_JAR, raising=False)
    jar = M.find_meteor_jar()
    assert jar.name == "meteor-1.5.jar" and jar.parent.name == "meteor"


@pytest.mark.skipif(os.name == "nt", reason="POSIX paths and permissions")
def test_find_java(tmp_path, monkeypatch):
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert M.find_java(fake) == str(fake)
    assert M.find_java(tmp_path / "jdk") == str(fake)  # a JAVA_HOME-like directory
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert M.find_java() == str(fake)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nojdk"))
    monkeypatch.setenv("PATH", str(fake.parent))
    assert M.find_java() == str(fake)  # JAVA_HOME broken: PATH
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MeteorUnavailableError, match="Java runtime not found.*install a Java runtime"):
        M.find_java()
    with pytest.raises(InputError, match="nothing to score"):
        M.meteor({}, {}, java="/nonexistent/java")
    with pytest.raises(MeteorUnavailableError, match="not an executable"):
        M.find_java(tmp_path / "missing-java")


@pytest.mark.skipif(os.name == "nt", reason="POSIX PATH")
def test_java_missing_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    jar = make_jar_dir(tmp_path / "m")
    with pytest.raises(MeteorUnavailableError) as info:
        M.meteor({1: ["a dog"]}, {1: "a dog"}, jar=jar)
    msg = str(info.value)
    assert "Java runtime not found" in msg and "JAVA_HOME" in msg and "java=" in msg
    assert M.meteor_unavailable_reason(jar=jar) == msg
    with pytest.raises(MeteorUnavailableError):
        M.Meteor(jar=jar)


@pytest.mark.skipif(os.name == "nt", reason="POSIX PATH")
def test_evaluate_without_java_scores_meteor_in_python_as_the_jar_does(tmp_path, monkeypatch):
    """Issue 15: the default metrics on a machine without Java include METEOR (the Python engine), equal
    to the jar's; the jar asked for by name without Java: skipped with a reason by default, an error
    when METEOR is named."""
    from capeval.evaluate import MetricUnavailableWarning, evaluate
    from capeval.meteor_python import unavailable_reason

    if unavailable_reason() or M.meteor_unavailable_reason(backend="jar"):
        pytest.skip("needs pycocoevalcap's data files, nltk and Java (the jar is the oracle)")
    refs = {1: ["a dog runs on the grass", "a brown dog running"], 2: ["two cats sleep on a sofa"]}
    preds = {1: "a dog running on grass", 2: "a cat on a sofa"}
    with_jar = evaluate(refs, preds, tokenizer="none", meteor_options={"backend": "jar"})
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java from here on
    result = evaluate(refs, preds, tokenizer="none")
    assert result.scores["METEOR"] == with_jar.scores["METEOR"]
    assert list(result.per_item["METEOR"]) == list(with_jar.per_item["METEOR"])
    assert "meteor_engine:python" in result.signature and not result.skipped
    jar = {"backend": "jar"}
    with pytest.warns(MetricUnavailableWarning, match="Java runtime not found"):
        skipped = evaluate(refs, preds, tokenizer="none", meteor_options=jar)
    assert "METEOR" not in skipped.scores and "Bleu_4" in skipped.scores and "CIDEr-D" in skipped.scores
    assert "Java runtime not found" in skipped.skipped["METEOR"]
    with pytest.raises(MeteorUnavailableError, match="Java runtime not found"):
        evaluate(refs, preds, metrics=["meteor", "bleu"], tokenizer="none", meteor_options=jar)


def test_result_signature_and_helpers():
    r = M.MeteorResult(score=0.5, per_item=np.array([0.25, 0.75]), stats=np.zeros((2, 23)), ids=["a", "b"])
    assert r.signature == "1.5 -l en -norm"
    assert r.per_id == {"a": 0.25, "b": 0.75}
    assert float(r) == 0.5 and len(r) == 2
