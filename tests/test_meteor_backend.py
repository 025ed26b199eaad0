"""capeval.meteor as a package: the ``backend`` routing of :func:`meteor_segments` (jar, Python engine,
auto) with a stand-in ``capeval.meteor_python`` in sys.modules, the result assembled from the engine's
raw statistics (the jar's recorded statistics and scores, tests/fixtures/meteor_coco_loo.json.gz), the
formula importable without the JVM machinery, and the jar's signature tag. No Java needed."""

from __future__ import annotations

import gc
import gzip
import hashlib
import importlib
import json
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from capeval.errors import InvalidCaptionError, MeteorError, MeteorUnavailableError

# the package: ``import capeval.meteor as M`` yields the function capeval.meteor where capeval defines one
M = importlib.import_module("capeval.meteor")

FIXTURES = Path(__file__).parent / "fixtures"
ENGINE = "capeval.meteor_python"
NO_JAVA = "/nonexistent/java"


@pytest.fixture(scope="module")
def jar_record():
    """The first 1,000 segments of the COCO fixture: captions, the jar's raw statistics, and the scores
    pycocoevalcap's jar gave them (per segment and the corpus aggregate)."""
    with gzip.open(FIXTURES / "meteor_coco_loo.json.gz", "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    n = data["head"]["n"]
    raw = np.array([[float(x) for x in s.split()] for s in data["stats"][:n]])
    return {
        "ids": data["ids"][:n],
        "refs": data["refs"][:n],
        "preds": data["preds"][:n],
        "raw": raw,
        "scores": data["head"]["scores"],
        "corpus": data["head"]["corpus"],
    }


@pytest.fixture
def engine(monkeypatch, jar_record):
    """A stand-in capeval.meteor_python that returns the jar's statistics and records its calls."""
    module = types.ModuleType(ENGINE)
    module.calls = []
    module.reason = None

    def segment_statistics(references, hypotheses, *, workers=1, progress=None):
        module.calls.append(
            {"references": references, "hypotheses": hypotheses, "workers": workers, "progress": progress}
        )
        return jar_record["raw"][: len(hypotheses)].copy()

    module.segment_statistics = segment_statistics
    module.unavailable_reason = lambda: module.reason
    monkeypatch.setitem(sys.modules, ENGINE, module)
    return module


def test_python_backend_assembles_the_result_from_raw_statistics(engine, jar_record):
    """The engine's raw statistics give the jar's per-segment scores and corpus score (the pycocoevalcap
    run recorded in the fixture), in summable form, with the ids; no JVM is involved."""
    res = M.meteor_segments(
        jar_record["refs"],
        jar_record["preds"],
        ids=jar_record["ids"],
        backend="python",
        workers=3,
        progress=False,
    )
    (call,) = engine.calls
    assert call["hypotheses"] == jar_record["preds"] and call["references"] == jar_record["refs"]
    assert call["workers"] == 3 and call["progress"] is False
    np.testing.assert_array_equal(res.per_item, jar_record["scores"])  # bit-identical to the jar
    assert res.score == jar_record["corpus"]
    np.testing.assert_array_equal(res.stats, M.meteor_summable_stats(jar_record["raw"]))
    assert res.ids == jar_record["ids"] and res.per_id[jar_record["ids"][0]] == jar_record["scores"][0]
    assert res.details["backend"] == "python" and res.jar == "" and res.signature == "1.5 -l en -norm"


def test_python_backend_gets_the_captions_the_jar_would(engine):
    M.meteor_segments([["a ||| b", "x\ny"], "one ref"], ["p\r\nq", ["pycocoevalcap style"]], backend="python")
    (call,) = engine.calls
    assert call["references"] == [["a b", "x y"], ["one ref"]]
    assert call["hypotheses"] == ["p q", "pycocoevalcap style"] and call["workers"] == 1
    with pytest.raises(InvalidCaptionError, match="the prediction for id 'b'"):
        M.meteor_segments([["a"], ["b"]], ["a", None], ids=["a", "b"], backend="python")
    assert len(engine.calls) == 1  # bad input never reaches the engine


def test_dict_entry_point_routes_by_backend(engine, jar_record):
    refs = dict(zip(jar_record["ids"][:3], jar_record["refs"][:3]))
    preds = dict(zip(jar_record["ids"][:3], jar_record["preds"][:3]))
    res = M.meteor(refs, preds, backend="python", workers=2)
    assert res.ids == jar_record["ids"][:3] and engine.calls[0]["workers"] == 2
    with pytest.raises(MeteorUnavailableError, match="not an executable"):
        M.meteor(refs, preds, backend="jar", java=NO_JAVA)


def test_auto_prefers_python_and_falls_back_to_the_jar(engine):
    res = M.meteor_segments([["a dog"]], ["a dog"], backend="auto", workers=1)
    assert res.details["backend"] == "python" and len(engine.calls) == 1
    assert M.resolve_backend("auto") == "python"
    with pytest.raises(MeteorUnavailableError, match="not an executable"):  # java= asks for the jar
        M.meteor_segments([["a dog"]], ["a dog"], backend="auto", java=NO_JAVA)
    engine.reason = "pycocoevalcap's data files are missing"
    assert M.resolve_backend("auto") == "jar"  # the Python engine cannot run: the jar
    assert M.resolve_backend("auto", options={"workers": 2}) == "jar"
    assert len(engine.calls) == 1


def test_auto_with_an_open_jar_pool_uses_that_pool(engine):
    class FakePool:
        def __init__(self):
            self.lines = None

        def jvms_for(self, n):
            return 1

        def start(self, n=None):
            return self

        def _score_lines(self, lines, progress, ids=None):
            self.lines = lines
            return M.MeteorResult(score=0.5, per_item=np.array([0.5]), stats=np.zeros((1, 23)), ids=ids)

    pool = FakePool()
    res = M.meteor_segments([["a dog"]], ["a  dog"], ids=[9], scorer=pool, backend="auto")
    assert pool.lines == [b"SCORE ||| a dog ||| a dog\n"] and res.ids == [9] and not engine.calls
    with pytest.raises(TypeError, match="scorer="):
        M.meteor_segments([["a dog"]], ["a dog"], scorer=pool, backend="python")
    with pytest.raises(TypeError, match=r"either scorer= or pool options, not both: \['heap'\]"):
        M.meteor({1: ["a dog"]}, {1: "a dog"}, scorer=pool, heap="4G")


def test_python_backend_unavailable_or_missing(engine, monkeypatch):
    engine.reason = "pycocoevalcap's data files are missing"
    with pytest.raises(MeteorUnavailableError, match="data files are missing"):
        M.meteor_segments([["a"]], ["a"], backend="python")
    assert "data files are missing" in M.meteor_unavailable_reason(backend="python")
    assert M.meteor_unavailable_reason(backend="auto", java=NO_JAVA).count("; ") >= 1  # both reasons
    monkeypatch.setitem(sys.modules, ENGINE, None)  # as if the module did not exist
    with pytest.raises(MeteorUnavailableError, match="cannot be imported"):
        M.meteor_segments([["a"]], ["a"], backend="python")
    assert not engine.calls


def test_python_backend_rejects_jar_options_and_bad_statistics(engine, monkeypatch):
    with pytest.raises(TypeError, match=r"\['heap'\]"):
        M.meteor_segments([["a"]], ["a"], backend="python", heap="4G")
    monkeypatch.setattr(engine, "segment_statistics", lambda r, h, **kw: np.zeros((len(h), 22)))
    with pytest.raises(MeteorError, match=r"shape \(1, 22\)"):
        M.meteor_segments([["a"]], ["a"], backend="python")
    with pytest.raises(ValueError, match="backend must be one of"):
        M.meteor_segments([["a"]], ["a"], backend="java")


def test_jar_backend_never_imports_the_python_engine(monkeypatch):
    monkeypatch.delitem(sys.modules, ENGINE, raising=False)
    with pytest.raises(MeteorUnavailableError, match="not an executable"):
        M.meteor_segments([["a"]], ["a"], java=NO_JAVA)  # default backend: the jar
    assert ENGINE not in sys.modules


JVM_SIDE = {"capeval.meteor.pool", "capeval.meteor.slots", "capeval.meteor.jvm", "capeval.meteor.java"}


def loaded_meteor_modules(code: str) -> set[str]:
    """The capeval.meteor modules loaded after running ``code`` in a fresh interpreter."""
    code += "\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('capeval.meteor')))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(eval(out.strip().splitlines()[-1]))


def test_formula_imports_without_the_jvm_machinery():
    loaded = loaded_meteor_modules(
        "from capeval.meteor.formula import meteor_scores_from_stats\nimport capeval.meteor"
    )
    assert "capeval.meteor.formula" in loaded and not loaded & (JVM_SIDE | {"capeval.meteor.protocol"})
    loaded = loaded_meteor_modules(
        "import sys, types, numpy as np\n"
        "engine = types.ModuleType('capeval.meteor_python')\n"
        "engine.unavailable_reason = lambda: None\n"
        "engine.segment_statistics = lambda refs, hyps, workers, progress: np.ones((len(hyps), 23))\n"
        "sys.modules['capeval.meteor_python'] = engine\n"
        "from capeval.meteor import meteor_segments\n"
        "meteor_segments([['a dog']], ['a dog'], backend='python')\n"
    )
    assert (
        "capeval.meteor.protocol" in loaded and not loaded & JVM_SIDE
    )  # the Python engine needs no JVM code


def test_jar_tag_names_the_exact_bytes_and_closes_the_file(tmp_path):
    jar = tmp_path / "meteor-1.5.jar"
    jar.write_bytes(b"not a real jar, but bytes to hash" * 1000)
    expected = "meteor-1.5.jar@" + hashlib.sha256(jar.read_bytes()).hexdigest()[:12]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        assert M.jar_tag(jar) == expected
        gc.collect()
    jar.write_bytes(b"other bytes")
    assert M.jar_tag(jar) == "meteor-1.5.jar@" + hashlib.sha256(b"other bytes").hexdigest()[:12]
    assert M.jar_tag(tmp_path / "gone.jar") == "gone.jar@missing"
