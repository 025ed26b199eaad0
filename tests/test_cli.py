"""The capeval command: NICE end to end against pycocoevalcap's numbers, exit codes, one-line errors."""

import csv
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import capeval
from benchmarks import datasets
from capeval.cli import EXIT_DEPENDENCY, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-9
KEYS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr-D"]
shared = pytest.mark.skipif(not datasets.available(), reason="../shared/data (COCO subset, NICE val) is not present")


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "capeval", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_submission(path, preds):
    """A NICE submission CSV written with the csv module (not capeval's writer)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["public_id", "caption"])
        for key, caption in preds.items():
            writer.writerow([key, caption])
    return path


@pytest.fixture(scope="module")
def nice_files(tmp_path_factory):
    if not datasets.available():
        pytest.skip("../shared/data is not present")
    tmp = tmp_path_factory.mktemp("nice")
    refs, preds = datasets.nice_retrieval()
    sub = write_submission(tmp / "retrieval.csv", preds)
    ids = list(refs)[:300]  # a small NICE split with its categories, for the quicker tests
    with open(datasets.NICE_CSV, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["public_id"] in set(ids)]
    small_refs = tmp / "nice-small.csv"
    with open(small_refs, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["public_id", "caption_gt", "category"])
        writer.writeheader()
        writer.writerows(rows)
    small_a = write_submission(tmp / "small-a.csv", {i: preds[i] for i in ids})
    small_b = write_submission(tmp / "small-b.csv", {i: (refs[i][0] if k % 4 == 0 else preds[i]) for k, i in enumerate(ids)})
    return {"refs": datasets.NICE_CSV, "sub": sub, "small_refs": small_refs, "a": small_a, "b": small_b, "tmp": tmp}


# -- the NICE end-to-end check --------------------------------------------------------------------
@shared
def test_nice_end_to_end_json_equals_evaluate_and_pycocoevalcap(nice_files):
    per_item = nice_files["tmp"] / "per_item.csv"
    proc = run_cli("score", nice_files["refs"], nice_files["sub"], "--metrics", "bleu", "rouge_l", "cider_d", "--format", "json", "--per-item", per_item)
    assert proc.returncode == EXIT_OK, proc.stderr
    out = json.loads(proc.stdout)
    refs, preds = datasets.nice_retrieval()
    direct = capeval.evaluate(refs, preds, metrics=["bleu", "rouge_l", "cider_d"])
    golden = json.loads(gzip.open(FIXTURES / "golden_shared.json.gz", "rt", encoding="utf-8").read())["nice_retrieval"]
    assert list(out["scores"]) == KEYS and out["n_images"] == 5000
    for key in KEYS:
        assert out["scores"][key] == pytest.approx(direct.scores[key], abs=1e-12), key
        assert out["scores"][key] == pytest.approx(golden["scores"][key]["corpus"], abs=TOL), key
    assert out["signature"] == direct.signature and out["signatures"] == direct.signatures
    assert "tok:ptb" in out["signature"] and "df:corpus" in out["signature"] and f"version:{capeval.__version__}" in out["signature"]
    frame = pd.read_csv(per_item, dtype={"image_id": str})
    assert list(frame["image_id"]) == golden["ids"]
    for key in KEYS:
        np.testing.assert_allclose(frame[key].to_numpy(), golden["scores"][key]["per_item"], rtol=0, atol=TOL, err_msg=key)


@shared
def test_score_table_with_confidence_intervals(capsys, nice_files):
    code, out, err = cli(capsys, "score", nice_files["small_refs"], nice_files["a"], "--metrics", "bleu,cider_d", "--ci", "--n-resamples", "200", "--seed", "3")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].split() == ["metric", "score", "95%", "CI"]
    assert lines[1].startswith("Bleu_1 ") and "[" in lines[1]
    assert lines[-2].startswith("signature: nrefs:1|tok:ptb|df:corpus|n:4|sigma:6.0|metrics:bleu+cider_d|")
    assert lines[-1] == "ci: ci:percentile|resamples:200|seed:3|alpha:0.05|n:300"
    code, again, _ = cli(capsys, "score", nice_files["small_refs"], nice_files["a"], "--metrics", "bleu,cider_d", "--ci", "--n-resamples", "200", "--seed", "3")
    assert again == out  # seeded


@shared
def test_score_csv_and_scale(capsys, nice_files):
    code, out, _ = cli(capsys, "score", nice_files["small_refs"], nice_files["a"], "--metrics", "cider_d", "--format", "csv", "--scale", "100")
    assert code == EXIT_OK
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["metric"] for r in rows] == ["CIDEr-D"]
    refs = capeval.formats.read_references(nice_files["small_refs"])
    preds = capeval.formats.read_predictions(nice_files["a"])
    assert float(rows[0]["score"]) == pytest.approx(100 * capeval.evaluate(refs, preds, metrics="cider_d").scores["CIDEr-D"], abs=1e-9)
    assert rows[0]["signature"].startswith("nrefs:1|tok:ptb|df:corpus|n:4|sigma:6.0")


# -- document frequencies -------------------------------------------------------------------------
@shared
def test_df_build_info_and_use(capsys, nice_files, tmp_path):
    df_path = tmp_path / "nice-small-df.npz"
    code, out, err = cli(capsys, "df", "build", nice_files["small_refs"], "-o", df_path)
    assert code == EXIT_OK, err
    assert df_path.is_file() and "n_images=300" in out
    code, out, _ = cli(capsys, "df", "info", df_path, "--format", "json")
    info = json.loads(out)
    assert info["n_images"] == 300 and info["source"] == "nice-small" and len(info["sha256"]) == 64
    code, out, _ = cli(capsys, "score", nice_files["small_refs"], nice_files["a"], "--metrics", "cider_d", "--df", df_path, "--format", "json")
    assert code == EXIT_OK
    result = json.loads(out)
    assert f"df:nice-small@{info['sha256'][:12]}" in result["signature"]
    code, plain, _ = cli(capsys, "score", nice_files["small_refs"], nice_files["a"], "--metrics", "cider_d", "--format", "json")
    assert json.loads(plain)["scores"]["CIDEr-D"] == pytest.approx(result["scores"]["CIDEr-D"], abs=1e-12)  # same refs, same df
    code, _, err = cli(capsys, "df", "info", nice_files["a"])
    assert code == EXIT_INPUT and err.startswith("capeval: error: ") and "small-a.csv" in err


# -- compare --------------------------------------------------------------------------------------
@shared
def test_compare(capsys, nice_files):
    code, out, err = cli(capsys, "compare", nice_files["small_refs"], nice_files["b"], nice_files["a"], "--metrics", "bleu", "cider_d", "--format", "json", "--trials", "500", "--n-resamples", "300")
    assert code == EXIT_OK, err
    result = json.loads(out)
    assert set(result["tests"]) == {"paired_bootstrap", "approximate_randomization"}
    cider = result["tests"]["paired_bootstrap"]["metrics"]["CIDEr-D"]
    assert cider["delta"] > 0 and cider["p_value"] < 0.05 and cider["ci_low"] > 0
    assert result["tests"]["approximate_randomization"]["metrics"]["CIDEr-D"]["p_value"] < 0.05
    code, out, _ = cli(capsys, "compare", nice_files["small_refs"], nice_files["a"], nice_files["a"], "--metrics", "cider_d", "--method", "ar", "--trials", "200")
    assert code == EXIT_OK
    row = next(line for line in out.splitlines() if line.startswith("CIDEr-D"))
    assert row.split()[-1] == "1.0000"  # identical systems
    assert "signature: test:approximate-randomization|resamples:200|seed:12345|n:300" in out


# -- leaderboard ----------------------------------------------------------------------------------
@shared
def test_leaderboard_two_splits(capsys, nice_files, tmp_path):
    out_dir = tmp_path / "report"
    code, out, err = cli(
        capsys, "leaderboard", "--refs", f"val={nice_files['small_refs']}", "--refs", f"val2={nice_files['small_refs']}",
        f"val:hints={nice_files['a']}", f"val:mixed={nice_files['b']}", f"val2:hints={nice_files['a']}",
        "-o", out_dir, "--metrics", "bleu", "cider_d", "--n-resamples", "100", "--title", "NICE small",
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert {p.name for p in out_dir.iterdir()} == {"leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard_categories.csv", "leaderboard.json"}
    report = json.loads((out_dir / "leaderboard.json").read_text(encoding="utf-8"))
    assert list(report["splits"]) == ["val", "val2"]
    assert [s["system"] for s in report["splits"]["val"]["systems"]] == ["mixed", "hints"]
    assert "val:\n    1  mixed" in out
    code, _, err = cli(capsys, "leaderboard", "--refs", f"a={nice_files['small_refs']}", "--refs", f"b={nice_files['small_refs']}", nice_files["a"], "-o", out_dir)
    assert code == EXIT_USAGE and "name the split" in err


# -- bad input ------------------------------------------------------------------------------------
REFS_CSV = "public_id,caption_gt,category\n1,a dog on the grass,animals\n2,a cat on a mat,animals\n3,a red bus,vehicles\n"
SAME_CSV = "public_id,caption\n1,a dog on the grass\n2,a cat on a mat\n3,a red bus\n"
BAD_PREDS = {
    "truncated.json": (b'[{"image_id": 1, "caption": "a dog"}, {"image_id": 2, "capti', r"truncated\.json, line 1, column \d+: invalid JSON .*truncated"),
    "missing-column.csv": (b"public_id,text\n1,a dog\n", r"missing-column\.csv, line 1: missing column 'caption'"),
    "duplicates.csv": (b"public_id,caption\n1,a dog\n2,a cat\n1,a bus\n3,a bus\n", r"duplicates\.csv: id '1' appears more than once \('1' at line 2, line 4\)"),
    "mismatch.csv": (b"public_id,caption\n1,a dog\n2,a cat\n4,a bus\n", r"mismatch\.csv vs .*refs\.csv: 1 predicted ids have no references: \['4'\]; 1 ids have references but no prediction: \['3'\]"),
    "empty.csv": (b"", r"empty\.csv: the file is empty"),
    "latin1.csv": ("public_id,caption\n1,a dog\n2,a café\n3,a bus\n".encode("cp1252"), r"latin1\.csv, line 3, column 8: not valid UTF-8 \(byte 0xe9\)"),
    "utf16.csv": ("public_id,caption\n1,a\n".encode("utf-16"), r"utf16\.csv: the file is UTF-16"),
    "ragged.csv": (b"public_id,caption\n1,a dog\n2,a cat, sitting\n3,a bus\n", r"ragged\.csv, line 3: expected 2 fields"),
}


@pytest.mark.parametrize("name", sorted(BAD_PREDS))
def test_bad_files_fail_with_one_clear_line(capsys, tmp_path, name):
    data, pattern = BAD_PREDS[name]
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    bad = tmp_path / name
    bad.write_bytes(data)
    code, out, err = cli(capsys, "score", refs, bad, "--metrics", "bleu")
    assert code == EXIT_INPUT
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("capeval: error: ")
    assert re.search(pattern, err), err


def test_bad_reference_file_and_missing_file(capsys, tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text("public_id,category\n1,x\n", encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text("public_id,caption\n1,a\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", refs, preds)
    assert code == EXIT_INPUT and "refs.csv, line 1: missing column 'caption_gt' or 'caption'" in err
    code, _, err = cli(capsys, "score", tmp_path / "nope.csv", preds)
    assert code == EXIT_INPUT and "nope.csv: no such file" in err


def test_lenient_scores_the_shared_ids(capsys, tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text("public_id,caption\n1,a dog\n2,a cat\n", encoding="utf-8")
    code, out, err = cli(capsys, "score", refs, preds, "--metrics", "bleu", "--lenient", "--format", "json")
    assert code == EXIT_OK and json.loads(out)["n_images"] == 2
    assert err.startswith("capeval: warning: scoring the 2 common ids")


def test_usage_errors(capsys, tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    for args in (["score", refs], ["score", refs, refs, "--metrics", "bleu", "spice2"], ["score", refs, refs, "--tokenizer", "nltk"], [], ["df"], ["frobnicate"]):
        code, out, err = cli(capsys, *args)
        assert code == EXIT_USAGE, args
        assert "error:" in err.splitlines()[-1]
    code, out, _ = cli(capsys, "--version")
    assert code == EXIT_OK and out.strip() == f"capeval {capeval.__version__}"


def test_missing_dependency_exit_code(capsys, tmp_path, monkeypatch):
    pytest.importorskip("capeval.meteor")
    monkeypatch.setenv("CAPEVAL_METEOR_JAR", str(tmp_path / "no-such" / "meteor-1.5.jar"))
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text("public_id,caption\n1,a dog\n2,a cat\n3,a bus\n", encoding="utf-8")
    code, _, err = cli(capsys, "score", refs, preds, "--metrics", "meteor")
    assert code == EXIT_DEPENDENCY and err.startswith("capeval: error: ") and err.count("\n") == 1
    code, out, err = cli(capsys, "score", refs, preds)  # default metrics: METEOR skipped, said so on stderr
    assert code == EXIT_OK and "METEOR" not in out and "capeval: warning: " in err and "METEOR" in err


def test_unwritable_output_exit_code(capsys, tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text(SAME_CSV, encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli(capsys, "score", refs, preds, "--metrics", "bleu", "-o", blocker / "out.json")
    assert code == EXIT_OUTPUT and "cannot write" in err


def test_python_dash_m_and_exit_status(tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text(SAME_CSV, encoding="utf-8")
    proc = run_cli("score", refs, preds, "--metrics", "bleu", "--tokenizer", "none", "--format", "json")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert json.loads(proc.stdout)["scores"]["Bleu_1"] == pytest.approx(1.0)
    proc = run_cli("score", refs, tmp_path / "missing.json")
    assert proc.returncode == EXIT_INPUT and proc.stderr.strip().endswith("missing.json: no such file")


def test_outputs_to_stdout_and_through_symlinks(capsys, tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text(SAME_CSV, encoding="utf-8")
    code, out, _ = cli(capsys, "score", refs, preds, "--metrics", "bleu", "--format", "json", "-o", "-", "--per-item", tmp_path / "items.json")
    assert code == EXIT_OK and json.loads(out)["scores"]["Bleu_1"] == pytest.approx(1.0)
    items = json.loads((tmp_path / "items.json").read_text(encoding="utf-8"))
    assert items["signature"].startswith("nrefs:1|tok:ptb") and [r["image_id"] for r in items["items"]] == ["1", "2", "3"]
    target = tmp_path / "target.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    code, _, _ = cli(capsys, "score", refs, preds, "--metrics", "bleu", "--format", "json", "-o", link)
    assert code == EXIT_OK and link.is_symlink() and json.loads(target.read_text(encoding="utf-8"))["n_images"] == 3
