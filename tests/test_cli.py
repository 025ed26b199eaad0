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


# -- issue 18: option values, exit codes, damaged files --------------------------------------------
def small_pair(tmp_path):
    refs = tmp_path / "refs.csv"
    refs.write_text(REFS_CSV, encoding="utf-8")
    preds = tmp_path / "preds.csv"
    preds.write_text("public_id,caption\n1,a dog on grass\n2,a cat\n3,a red bus\n", encoding="utf-8")
    return refs, preds


BAD_OPTIONS = [
    (["--ci", "--n-resamples", "0"], "--n-resamples: must be at least 1, got 0"),
    (["--ci", "--alpha", "2"], "--alpha: must be between 0 and 1"),
    (["--ci", "--alpha", "nan"], "--alpha: expected a finite number, got 'nan'"),
    (["--ci", "--alpha", "0"], "--alpha: must be between 0 and 1"),
    (["--n", "0"], "--n: must be at least 1, got 0"),
    (["--n", "-1"], "--n: must be at least 1"),
    (["--sigma", "0"], "--sigma: must be above 0"),
    (["--sigma", "inf"], "--sigma: expected a finite number"),
    (["--sigma", "1.4e154"], "--sigma: must be a number whose square is finite"),  # found by test_properties.py
    (["--sigma", "1e-200"], "--sigma: must be a number whose square is finite"),
    (["--scale", "nan"], "--scale: expected a finite number"),
    (["--seed", "-3"], "--seed: must be 0 or more"),
    (["--n-resamples", "ten"], "--n-resamples: expected an integer, got 'ten'"),
]


@pytest.mark.parametrize("options, message", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_bad_option_values_are_usage_errors(capsys, tmp_path, options, message):
    """Before: exit 1 ('internal error') or, for --sigma 0 / --scale nan, NaN printed into JSON with exit 0."""
    refs, preds = small_pair(tmp_path)
    code, out, err = cli(capsys, "score", refs, preds, "--metrics", "bleu", "cider_d", "--format", "json", *options)
    assert (code, out) == (EXIT_USAGE, "")
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "command, options, message",
    [
        ("compare", ["--trials", "-5"], "--trials: must be at least 1, got -5"),
        ("compare", ["--n-resamples", "0"], "--n-resamples: must be at least 1"),
        ("leaderboard", ["--alpha", "1"], "--alpha: must be between 0 and 1"),
        ("leaderboard", ["--scale=-inf"], "--scale: expected a finite number"),
        ("leaderboard", ["--scale=-1"], "--scale: must be above 0"),
    ],
)
def test_bad_option_values_in_compare_and_leaderboard(capsys, tmp_path, command, options, message):
    refs, preds = small_pair(tmp_path)
    args = [refs, preds, preds] if command == "compare" else ["--refs", refs, preds, "-o", tmp_path / "board"]
    code, out, err = cli(capsys, command, *args, "--metrics", "bleu", *options)
    assert (code, out) == (EXIT_USAGE, "") and message in err
    assert not (tmp_path / "board").exists()


def strict_json(text):
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    def refuse(name):
        raise ValueError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_json_output_never_holds_nan(capsys, tmp_path):
    from capeval.cli import _json_dumps

    refs, preds = small_pair(tmp_path)
    code, out, _ = cli(capsys, "score", refs, preds, "--metrics", "bleu", "cider_d", "--format", "json", "--scale", "1e308")
    assert code == EXIT_OK
    plain = capeval.evaluate(capeval.formats.read_references(refs), capeval.formats.read_predictions(preds), ["bleu", "cider_d"]).scores
    overflowing = {k for k, v in plain.items() if abs(v * 1e308) == float("inf")}
    assert overflowing and len(overflowing) < len(plain)  # CIDEr-D x 1e308 overflows, BLEU's does not
    assert {k for k, v in strict_json(out)["scores"].items() if v is None} == overflowing
    assert strict_json(_json_dumps({"a": float("nan"), "b": [float("inf"), 1.5]})) == {"a": None, "b": [None, 1.5]}


def test_spice_exit_code_is_the_documented_one(capsys, tmp_path):
    """docs/cli.md: SPICE (not provided) exits 4, like any missing dependency, with the reason."""
    refs, preds = small_pair(tmp_path)
    code, out, err = cli(capsys, "score", refs, preds, "--metrics", "bleu", "spice")
    assert (code, out) == (EXIT_DEPENDENCY, "")
    assert err.startswith("capeval: error: SPICE is not available in capeval") and err.count("\n") == 1


def test_corrupt_gzip_exits_3(capsys, tmp_path):
    """Before: 'internal error: Error -3 while decompressing data' and exit 1."""
    refs, _ = small_pair(tmp_path)
    packed = bytearray(gzip.compress(("public_id,caption\n" + "".join(f"{i},a dog number {i}\n" for i in range(2000))).encode()))
    packed[20] ^= 0x55
    bad = tmp_path / "corrupt.csv.gz"
    bad.write_bytes(bytes(packed))
    code, out, err = cli(capsys, "score", refs, bad)
    assert (code, out) == (EXIT_INPUT, "")
    assert re.fullmatch(r"capeval: error: .*corrupt\.csv\.gz: corrupt or truncated gzip data \(Error -3 .*\)\n", err)


def test_deep_json_and_one_id_written_two_ways_exit_3(capsys, tmp_path):
    _, preds = small_pair(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    code, _, err = cli(capsys, "score", deep, preds)
    assert code == EXIT_INPUT and "deep.json: JSON nested too deeply" in err
    refs = tmp_path / "refs.jsonl"
    refs.write_text('{"image_id": 1, "caption": "a dog"}\n{"image_id": "1", "caption": "a cat"}\n{"image_id": 2, "caption": "a bus"}\n')
    two = tmp_path / "two.jsonl"
    two.write_text('{"image_id": 1, "caption": "a dog"}\n{"image_id": 2, "caption": "a bus"}\n')
    for lenient in ([], ["--lenient"]):  # --lenient used to drop image 1's references with a warning
        code, out, err = cli(capsys, "score", refs, two, "--metrics", "bleu", *lenient)
        assert (code, out) == (EXIT_INPUT, "")
        assert re.search(r"refs\.jsonl, line 2: id '1' is also written 1 \(line 1\)", err), err


def test_damaged_df_file_exits_3(capsys, tmp_path):
    refs, preds = small_pair(tmp_path)
    good = tmp_path / "df.npz"
    assert cli(capsys, "df", "build", refs, "-o", good)[0] == EXIT_OK
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good.read_bytes()[:600])
    code, out, err = cli(capsys, "df", "info", trunc)
    assert (code, out) == (EXIT_INPUT, "") and "trunc.npz: not a valid capeval document-frequency file" in err
    code, _, err = cli(capsys, "score", refs, preds, "--metrics", "cider_d", "--df", trunc)
    assert code == EXIT_INPUT and "trunc.npz" in err


def test_df_tokenizer_mismatch_is_refused_with_an_override(capsys, tmp_path):
    refs, preds = small_pair(tmp_path)
    df_none = tmp_path / "none.npz"
    assert cli(capsys, "df", "build", refs, "-o", df_none, "--tokenizer", "none")[0] == EXIT_OK
    code, out, err = cli(capsys, "df", "info", df_none, "--format", "json")
    info = json.loads(out)
    assert (info["tokenizer"], info["n"], info["capeval_version"]) == ("none", 4, capeval.__version__)
    code, out, err = cli(capsys, "score", refs, preds, "--metrics", "cider_d", "--df", df_none)
    assert (code, out) == (EXIT_INPUT, "")
    assert "none.npz: document frequencies built with tokenizer 'none', scoring uses 'ptb'" in err and "--allow-df-mismatch" in err
    code, out, _ = cli(capsys, "score", refs, preds, "--metrics", "cider_d", "--df", df_none, "--allow-df-mismatch", "--format", "json")
    assert code == EXIT_OK and "CIDEr-D" in json.loads(out)["scores"]
    df2 = tmp_path / "n2.npz"
    assert cli(capsys, "df", "build", refs, "-o", df2, "--n", "2")[0] == EXIT_OK
    code, _, err = cli(capsys, "score", refs, preds, "--metrics", "cider_d", "--df", df2)
    assert code == EXIT_INPUT and "built with n=2, scoring uses n=4" in err
    assert cli(capsys, "score", refs, preds, "--metrics", "cider_d", "--df", df2, "--n", "2")[0] == EXIT_OK
    code, _, err = cli(capsys, "leaderboard", "--refs", refs, preds, "-o", tmp_path / "board", "--metrics", "cider_d", "--df", df_none)
    assert code == EXIT_INPUT and "none.npz: document frequencies built with tokenizer 'none'" in err
    assert not (tmp_path / "board").exists()


# -- issue 18.1: a leaderboard directory is replaced as a set --------------------------------------
def test_interrupted_leaderboard_leaves_the_previous_report(capsys, tmp_path, monkeypatch):
    """Before: Ctrl-C after leaderboard.md left a new .md beside the old .html/.csv/.json."""
    from capeval.report import Report

    refs, preds = small_pair(tmp_path)
    out_dir = tmp_path / "board"
    args = ["leaderboard", "--refs", refs, f"sys={preds}", "-o", out_dir, "--metrics", "bleu", "cider_d", "--no-ci"]
    assert cli(capsys, *args, "--title", "First")[0] == EXIT_OK
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert set(before) == {"leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard_categories.csv", "leaderboard.json"}

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Report, "to_csv", interrupted)  # md and html are rendered before csv
    code, _, err = cli(capsys, *args, "--title", "Second")
    assert code == 130 and "interrupted" in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board", "preds.csv", "refs.csv"]  # no temporary left
    monkeypatch.undo()
    assert cli(capsys, *args, "--title", "Second", "--formats", "md")[0] == EXIT_OK
    assert [p.name for p in out_dir.iterdir()] == ["leaderboard.md"]  # the set is replaced, no stale files
    assert "# Second" in (out_dir / "leaderboard.md").read_text(encoding="utf-8")


def test_leaderboard_refuses_a_directory_with_other_files(capsys, tmp_path, monkeypatch):
    refs, preds = small_pair(tmp_path)
    code, out, err = cli(capsys, "leaderboard", "--refs", refs, preds, "-o", tmp_path, "--metrics", "bleu")
    assert (code, out) == (EXIT_OUTPUT, "")
    assert "holding other files than a report's" in err and "choose a new or empty directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.csv", "refs.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, _, err = cli(capsys, "leaderboard", "--refs", refs, preds, "-o", ".", "--metrics", "bleu")
    assert code == EXIT_OUTPUT and ".: is the current directory" in err and not any(empty.iterdir())


# -- issue 17.5: plain-text inputs ------------------------------------------------------------------
NLGEVAL = ROOT.parent / "shared" / "data" / "nlgeval"
GOLDEN = json.loads((FIXTURES / "golden_cases.json").read_text(encoding="utf-8"))["nlgeval"]["scores"]
PUBLISHED = {"Bleu_1": 0.55, "Bleu_2": 0.428174, "Bleu_3": 0.284043, "Bleu_4": 0.201143, "METEOR": 0.295797, "ROUGE_L": 0.522104, "CIDEr-D": 1.242192}


@pytest.mark.skipif(not NLGEVAL.is_dir(), reason="../shared/data/nlgeval is not present")
def test_nlgeval_text_files_give_the_published_numbers(capsys):
    """nlg-eval's README example through the CLI: pycocoevalcap's numbers (golden, 1e-9), the published ones (6 digits)."""
    from capeval.meteor import meteor_unavailable_reason

    metrics = ["bleu", "rouge_l", "cider_d"] + ([] if meteor_unavailable_reason() else ["meteor"])
    code, out, err = cli(capsys, "score", NLGEVAL / "ref1.txt", NLGEVAL / "ref2.txt", NLGEVAL / "hyp.txt", "--format", "json", "--metrics", *metrics)
    assert code == EXIT_OK, err
    result = json.loads(out)
    assert result["n_images"] == 2 and result["signature"].startswith("nrefs:2|tok:ptb|")
    assert result["refs"] == [str(NLGEVAL / "ref1.txt"), str(NLGEVAL / "ref2.txt")]
    for key, value in result["scores"].items():
        assert value == pytest.approx(PUBLISHED[key], abs=5e-7), key
        if key in GOLDEN:
            assert value == pytest.approx(GOLDEN[key]["corpus"], abs=TOL), key
    if "meteor" not in metrics:
        pytest.skip(f"METEOR not checked: {meteor_unavailable_reason()}")


def test_text_files_line_counts_and_mixing(capsys, tmp_path):
    ref1 = tmp_path / "ref1.txt"
    ref1.write_text("a dog on the grass\na cat on a mat\na red bus\n")
    ref2 = tmp_path / "ref2.txt"
    ref2.write_text("the dog is on grass\na cat sits\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("a dog on grass\na cat\na bus\n")
    code, out, err = cli(capsys, "score", ref1, ref2, hyp, "--metrics", "bleu")
    assert (code, out) == (EXIT_INPUT, "")
    assert re.search(r"ref1\.txt has 3, .*ref2\.txt has 2", err) and err.count("\n") == 1
    short = tmp_path / "short.txt"
    short.write_text("a dog\n")
    code, _, err = cli(capsys, "score", ref1, short, "--metrics", "bleu")
    assert code == EXIT_INPUT and re.search(r"short\.txt has 1 lines but the references \(.*ref1\.txt\) have 3", err)
    code, out, _ = cli(capsys, "score", ref1, hyp, "--metrics", "bleu", "--tokenizer", "none", "--format", "json", "--per-item", tmp_path / "items.csv")
    assert code == EXIT_OK
    expected = capeval.evaluate({1: ["a dog on the grass"], 2: ["a cat on a mat"], 3: ["a red bus"]}, {1: "a dog on grass", 2: "a cat", 3: "a bus"}, metrics="bleu", tokenizer="none")
    assert json.loads(out)["scores"] == pytest.approx(expected.scores, abs=1e-15)
    assert pd.read_csv(tmp_path / "items.csv")["image_id"].tolist() == [1, 2, 3]  # ids are line numbers
    refs, preds = small_pair(tmp_path)
    code, _, err = cli(capsys, "score", refs, refs, preds)
    assert code == EXIT_USAGE and "several reference files are only read as plain text" in err
    code, _, err = cli(capsys, "score", ref1, preds)
    assert code == EXIT_USAGE and "mixing plain-text and other files" in err
