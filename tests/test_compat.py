"""capeval.compat: pycocoevalcap 1.2's classes, return types and numbers behind a one-line import change."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from capeval import compat
from capeval.errors import InvalidCaptionError, MeteorUnavailableError, MissingIdError, SpiceUnavailableError
from capeval.formats import write_coco_annotations, write_coco_results

ROOT = Path(__file__).resolve().parents[1]
CASES = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))
C300 = CASES["coco300"]
TOL = 1e-9
HAVE_JAVA = shutil.which("java") is not None
HAVE_PYCOCOEVALCAP = importlib.util.find_spec("pycocoevalcap") is not None


def raw_inputs(case, limit=None):
    ids = case["ids"][:limit]
    gts = {i: [{"caption": c} for c in case["refs"][i]] for i in ids}
    res = {i: [{"caption": case["preds"][i]}] for i in ids}
    return gts, res


def tokenized(case):
    return ({i: case["tokenized_refs"][i] for i in case["ids"]}, {i: [case["tokenized_preds"][i]] for i in case["ids"]})


def test_ptb_tokenizer_gives_pycocoevalcaps_tokens():
    gts, res = raw_inputs(C300)
    tok = compat.PTBTokenizer()
    assert tok.tokenize(gts) == {i: C300["tokenized_refs"][i] for i in C300["ids"]}
    assert tok.tokenize(res) == {i: [C300["tokenized_preds"][i]] for i in C300["ids"]}
    assert tok.tokenize({"a": ["A Dog."], "b": []}) == {"a": ["a dog"]}  # like pycocoevalcap: no captions, no entry
    with pytest.raises(InvalidCaptionError, match="image 'a', caption 0"):
        tok.tokenize({"a": [{"text": "x"}]})


def test_scorers_match_golden_numbers_and_types(capsys):
    gts, res = tokenized(C300)
    golden = C300["scores"]
    score, scores = compat.Bleu(4).compute_score(gts, res)
    assert isinstance(score, list) and len(score) == 4 and isinstance(scores, list) and len(scores) == 4
    for k in range(4):
        assert score[k] == pytest.approx(golden[f"Bleu_{k + 1}"]["corpus"], abs=TOL)
        np.testing.assert_allclose(scores[k], golden[f"Bleu_{k + 1}"]["per_item"], rtol=0, atol=TOL)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("{'testlen': ") and printed[1].startswith("ratio: ")
    compat.Bleu(4).compute_score(gts, res, verbose=0)
    assert capsys.readouterr().out == ""

    score, scores = compat.Rouge().compute_score(gts, res)
    assert isinstance(score, np.float64) and isinstance(scores, np.ndarray)
    assert score == pytest.approx(golden["ROUGE_L"]["corpus"], abs=TOL)
    np.testing.assert_allclose(scores, golden["ROUGE_L"]["per_item"], rtol=0, atol=TOL)

    score, scores = compat.Cider().compute_score(gts, res)
    assert isinstance(score, np.float64) and isinstance(scores, np.ndarray)
    assert score == pytest.approx(golden["CIDEr-D"]["corpus"], abs=TOL)
    np.testing.assert_allclose(scores, golden["CIDEr-D"]["per_item"], rtol=0, atol=TOL)
    assert compat.Bleu().method() == "Bleu" and compat.Rouge().method() == "Rouge" and compat.Cider().method() == "CIDEr"


def test_mismatched_keys_are_a_clear_error():
    gts, res = tokenized(C300)
    res.pop(C300["ids"][0])
    with pytest.raises(MissingIdError, match="same keys"):
        compat.Cider().compute_score(gts, res)
    gts, res = tokenized(C300)
    res[C300["ids"][0]] = ["a", "b"]
    with pytest.raises(InvalidCaptionError, match="exactly one caption"):
        compat.Bleu().compute_score(gts, res, verbose=0)


def test_spice_explains_itself():
    with pytest.raises(SpiceUnavailableError, match="Stanford CoreNLP .* downloads|downloads .*Stanford CoreNLP"):
        compat.Spice()
    with pytest.raises(SpiceUnavailableError, match="run time"):
        compat.COCOEvalCap(None, None, spice=True)
    assert issubclass(SpiceUnavailableError, NotImplementedError)


def test_meteor_without_java(monkeypatch):
    monkeypatch.setenv("CAPEVAL_METEOR_JAR", "/nonexistent/meteor-1.5.jar")
    with pytest.raises(MeteorUnavailableError):
        compat.Meteor()


def coco_objects(tmp_path, limit, use_pycocotools=False):
    ids = [int(i) if i.isdigit() else i for i in C300["ids"][:limit]]
    refs = {int(i): C300["refs"][i] for i in C300["ids"][:limit]}
    preds = {int(i): C300["preds"][i] for i in C300["ids"][:limit]}
    ann = write_coco_annotations(tmp_path / "ann.json", refs)
    res = write_coco_results(tmp_path / "res.json", preds)
    if use_pycocotools:
        from pycocotools.coco import COCO
    else:
        COCO = compat.COCO  # noqa: N806
    coco = COCO(str(ann))
    return ids, coco, coco.loadRes(str(res))


@pytest.mark.parametrize("use_pycocotools", [False, True])
def test_coco_eval_cap(tmp_path, capsys, use_pycocotools, monkeypatch):
    if use_pycocotools:
        pytest.importorskip("pycocotools")
    monkeypatch.setenv("CAPEVAL_METEOR_JAR", "/nonexistent/meteor-1.5.jar")  # METEOR is covered by the drop-in test
    ids, coco, coco_res = coco_objects(tmp_path, 300, use_pycocotools)
    evaluator = compat.COCOEvalCap(coco, coco_res)
    evaluator.params["image_id"] = coco_res.getImgIds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluator.evaluate()
    categories = {w.category.__name__ for w in caught}
    assert "SpiceSkippedWarning" in categories
    assert any("METEOR left out" in str(w.message) for w in caught)
    golden = C300["scores"]
    assert set(evaluator.eval) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"}
    for key in ["Bleu_1", "Bleu_4", "ROUGE_L"]:
        assert evaluator.eval[key] == pytest.approx(golden[key]["corpus"], abs=TOL)
    assert evaluator.eval["CIDEr"] == pytest.approx(golden["CIDEr-D"]["corpus"], abs=TOL)
    first = ids[0]
    assert evaluator.imgToEval[first]["image_id"] == first
    assert evaluator.imgToEval[first]["CIDEr"] == pytest.approx(golden["CIDEr-D"]["per_item"][0], abs=TOL)
    assert len(evaluator.evalImgs) == 300
    out = capsys.readouterr().out
    assert "tokenization...\nsetting up scorers...\ncomputing Bleu score...\n" in out
    assert f"CIDEr: {golden['CIDEr-D']['corpus']:0.3f}" in out


def test_compat_coco_checks_results(tmp_path):
    _, coco, _ = coco_objects(tmp_path, 5)
    with pytest.raises(MissingIdError, match="do not correspond"):
        coco.loadRes([{"image_id": -1, "caption": "x"}])


# -- the same script, both ways -------------------------------------------------------------------
SCRIPT = """
import json
import sys

{import_line}

data = json.load(open(sys.argv[1], encoding="utf-8"))
gts = {{k: [{{"caption": c}} for c in v] for k, v in data["refs"].items()}}
res = {{k: [{{"caption": data["preds"][k]}}] for k in data["refs"]}}
tokenizer = PTBTokenizer()
gts = tokenizer.tokenize(gts)
res = tokenizer.tokenize(res)
scorers = [(Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), (Rouge(), "ROUGE_L"), (Cider(), "CIDEr")]
if "--meteor" in sys.argv:
    scorers.insert(1, (Meteor(), "METEOR"))
for scorer, method in scorers:
    score, scores = scorer.compute_score(gts, res)
    if isinstance(method, list):
        for m, s, per in zip(method, score, scores):
            print("%s: %r %r" % (m, s, float(sum(per))))
    else:
        print("%s: %r %r" % (method, float(score), float(sum(scores))))
"""
FINAL = re.compile(r"^(Bleu_[1-4]|METEOR|ROUGE_L|CIDEr): (\S+) (\S+)$")
PARITY = os.environ.get("CAPEVAL_PARITY") == "1"


def run_script(tmp_path, import_line, data_path, meteor):
    script = tmp_path / f"score_{abs(hash(import_line))}.py"
    script.write_text(textwrap.dedent(SCRIPT.format(import_line=import_line)), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(script), str(data_path)] + (["--meteor"] if meteor else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = {}
    for line in proc.stdout.splitlines():
        m = FINAL.match(line)
        if m:
            lines[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return lines, proc.stdout


@pytest.mark.java
@pytest.mark.skipif(not (HAVE_JAVA and HAVE_PYCOCOEVALCAP), reason="needs Java and pycocoevalcap 1.2 to run the original")
@pytest.mark.parametrize(
    "meteor",
    [
        False,
        pytest.param(True, marks=pytest.mark.skipif(not PARITY, reason="METEOR's JVMs take ~20 s a side: set CAPEVAL_PARITY=1 to run it")),
    ],
)
def test_pycocoevalcap_script_runs_unchanged_but_for_the_import(tmp_path, meteor):
    ids = C300["ids"][:120]
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"refs": {i: C300["refs"][i] for i in ids}, "preds": {i: C300["preds"][i] for i in ids}}), encoding="utf-8")
    theirs, their_out = run_script(tmp_path, "from pycocoevalcap.eval import PTBTokenizer, Bleu, Meteor, Rouge, Cider", data, meteor)
    ours, our_out = run_script(tmp_path, "from capeval.compat import PTBTokenizer, Bleu, Meteor, Rouge, Cider", data, meteor)
    expected = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"} | ({"METEOR"} if meteor else set())
    assert set(theirs) == set(ours) == expected
    for key in theirs:
        assert ours[key][0] == pytest.approx(theirs[key][0], abs=TOL), key  # corpus score
        assert ours[key][1] == pytest.approx(theirs[key][1], abs=1e-7), key  # sum of per-image scores
    # Bleu's verbose lines too
    assert [line for line in our_out.splitlines() if line.startswith(("{'testlen'", "ratio:"))] == [
        line for line in their_out.splitlines() if line.startswith(("{'testlen'", "ratio:"))
    ]


def test_meteor_wrapper_plumbing(monkeypatch):
    """compat.Meteor(backend="jar") hands its JVM pool to capeval.meteor and returns pycocoevalcap's types
    (no Java here)."""
    meteor = pytest.importorskip("capeval.meteor")
    calls = {}

    class FakePool:
        def __init__(self, **options):
            calls["options"] = options

    def fake_segments(refs_list, preds_list, scorer=None, **options):
        calls["scorer"] = scorer
        calls["preds"] = list(preds_list)
        per = np.arange(len(preds_list), dtype=float) / 10
        stats = np.zeros((len(preds_list), 23))
        return meteor.MeteorResult(score=0.25, per_item=per, stats=stats)

    monkeypatch.setattr(meteor, "Meteor", FakePool)
    monkeypatch.setattr(meteor, "meteor_segments", fake_segments)
    scorer = compat.Meteor(backend="jar", workers=1)
    gts = {"b": ["x y", "z"], "a": ["w"]}
    res = {"b": ["x"], "a": ["w"]}
    score, scores = scorer.compute_score(gts, res)
    assert calls["options"] == {"workers": 1} and isinstance(calls["scorer"], FakePool)
    assert calls["preds"] == ["x", "w"]  # gts' key order, as pycocoevalcap
    assert score == 0.25 and isinstance(score, float) and scores == [0.0, 0.1]
    assert scorer.method() == "METEOR"
