"""`capeval-models run --quick` end to end: the output folder's structure, and the report's scores equal
capeval's scores of the saved prediction files. One quick run (~15 s) is shared by the module."""

import base64
import csv
import html
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

import capeval
from capeval.formats import read_predictions, read_references
from capeval.stats import bootstrap_ci
from capeval_models import pipeline as P
from capeval_models.cli import main
from capeval_models.models import HISTORY_KEYS

SYSTEMS = ["most-frequent-caption", "rnn", "lstm", "transformer", "transformer-beam3", "transformer-drophead",
           "transformer-drophead-beam3"]
SPLITS = ["nice", "val", "train"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quick")
    mp = pytest.MonkeyPatch()
    mp.setenv("CAPEVAL_MODELS_CACHE", str(root / "cache"))
    out = root / "run"
    try:
        rc = main(["run", "--quick", "--out", str(out), "--no-progress"])
        assert rc == 0
        yield out
    finally:
        mp.undo()


def test_output_structure(quick_run):
    out = quick_run
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert run["config"]["quick"] is True and run["config"]["sizes"] == [300, 60, 60]
    assert run["seeds"] == {"data": 0, "models": 0, "drophead_comparison": [0, 1], "bootstrap": run["seeds"]["bootstrap"]}
    for key in ("python", "numpy", "torch", "capeval"):
        assert run["versions"][key]
    assert list(run["timings_seconds"]) == [  # every stage ran, in this order (a skipped one is not timed)
        "data", "train/rnn", "train/lstm", "train/transformer", "train/transformer-drophead", "predict",
        "train/transformer-seed1", "train/transformer-drophead-seed1", "predict/seeds", "figures", "score"]
    assert set(run["capeval_signatures"]) == {f"{sp}/{sy}" for sp in SPLITS for sy in SYSTEMS}
    assert run["capeval_signature"].startswith("nrefs:")
    for name in ("report/report.html", "report/leaderboard.md", "report/leaderboard.html", "report/leaderboard.csv",
                 "report/leaderboard.json", "report/summary.md", "report/summary.csv", "report/summary.json", "config.json"):
        assert (out / name).stat().st_size > 0, name
    for split in SPLITS:
        assert (out / "references" / f"{split}.json").exists()
        for system in SYSTEMS:
            path = out / "predictions" / system / f"{split}.json"
            preds = json.loads(path.read_text())
            assert len(preds) == 60 if split != "train" else len(preds) == 300
            assert all(set(p) == {"image_id", "caption"} and p["caption"].strip() for p in preds)
    for system in SYSTEMS:  # the nice submission CSV holds the same captions as the COCO file
        with open(out / "predictions" / system / "nice.csv", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["public_id", "caption"]
        coco = read_predictions(out / "predictions" / system / "nice.json")
        assert dict(rows[1:]) == dict(coco)
    for fig in ("figures/loss.png", "figures/val_cider.png", "attention/val-val_000000.png",
                "attention/nice-nice_000000.png"):
        assert (out / fig).read_bytes()[:8] == PNG, fig
    config = P.load_config(out)
    board = json.loads((out / "report" / "leaderboard.json").read_text())
    val_scores = {s["system"]: s["raw_scores"]["CIDEr-D"] for s in board["splits"]["val"]["systems"]}
    for model in P.MODELS:  # one history schema for the numpy and the torch loop
        h = json.loads((out / "models" / model / "history.json").read_text())
        assert set(HISTORY_KEYS) <= set(h) and h["model"] == model and h["seed"] == 0
        iterations = config.tf_steps if model.startswith("transformer") else getattr(config, f"{model}_iterations")
        assert h["iterations"] == len(h["loss"]) == iterations
        assert [v["iteration"] for v in h["val"]] == list(range(20, iterations + 1, 20))
        for v in h["val"]:  # epochs are captions seen over the 300 x 5 training captions
            assert v["epoch"] == pytest.approx(v["iteration"] * h["batch_size"] / 1500)
        # the last validation point scored the final model's greedy val captions: the leaderboard's number
        assert h["val"][-1]["CIDEr-D"] == pytest.approx(val_scores[model], abs=1e-9)
    assert not list(out.rglob("*.tmp*"))  # no temp files left by the atomic writes


def test_report_scores_equal_capeval_of_saved_files(quick_run):
    out = quick_run
    board = json.loads((out / "report" / "leaderboard.json").read_text())
    assert list(board["splits"]) == SPLITS  # nice first: the ranking split
    assert board["scale"] == 100
    csv_rows = list(csv.DictReader(open(out / "report" / "leaderboard.csv", newline="")))
    assert len(csv_rows) == len(SPLITS) * len(SYSTEMS)
    for split, info in board["splits"].items():
        refs = read_references(out / "references" / f"{split}.json")
        assert {s["system"] for s in info["systems"]} == set(SYSTEMS)
        ranks = [s["scores"]["CIDEr-D"] for s in info["systems"]]
        assert ranks == sorted(ranks, reverse=True)
        for s in info["systems"]:
            preds = read_predictions(out / "predictions" / s["system"] / f"{split}.json")
            result = capeval.evaluate(refs, preds, metrics=["bleu", "rouge_l", "cider_d"])
            assert s["raw_scores"] == result.scores, (split, s["system"])
            assert s["signature"] == result.signature
            intervals = bootstrap_ci(result, n_resamples=100) if s["system"] == "lstm" else None
            for key, value in result.scores.items():
                assert s["scores"][key] == pytest.approx(100 * value, abs=1e-9)
                low, high = s["ci"][key]
                assert low <= 100 * value + 1e-9 and 100 * value - 1e-9 <= high
                if intervals is not None:  # the report's interval is capeval.stats' (same resamples, seed)
                    assert [low, high] == pytest.approx([100 * intervals[key].low, 100 * intervals[key].high])
            row = next(r for r in csv_rows if r["split"] == split and r["system"] == s["system"])
            assert float(row["CIDEr-D"]) == pytest.approx(100 * result.scores["CIDEr-D"], abs=1e-5)
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["rank_by"] == "CIDEr-D on nice"
    nice = [r["nice"]["CIDEr-D"] for r in summary["systems"]]
    assert nice == sorted(nice, reverse=True)
    for row in summary["systems"]:
        assert row["gap_nice_minus_val"] == pytest.approx(row["nice"]["CIDEr-D"] - row["val"]["CIDEr-D"])
        assert row["val"]["CIDEr-D"] == pytest.approx(
            next(s for s in board["splits"]["val"]["systems"] if s["system"] == row["system"])["scores"]["CIDEr-D"])
    seeds = summary["drophead_seeds"]
    assert set(seeds["per_seed"]) == {"val", "nice"}
    assert set(seeds["per_seed"]["val"]["transformer"]) == {"0", "1"}
    # seed 0 of the comparison is the main model's greedy prediction file, scored the same way
    assert seeds["per_seed"]["val"]["transformer"]["0"]["CIDEr-D"] == pytest.approx(
        next(s for s in board["splits"]["val"]["systems"] if s["system"] == "transformer")["scores"]["CIDEr-D"])
    for split in ("val", "nice"):  # the across-seed numbers, recomputed from the saved prediction files
        refs = read_references(out / "references" / f"{split}.json")

        def cider(path, refs=refs):
            return 100 * capeval.evaluate(refs, read_predictions(path), metrics=["cider_d"]).scores["CIDEr-D"]

        diffs = [cider(out / "predictions" / "transformer-drophead" / f"{split}.json")
                 - cider(out / "predictions" / "transformer" / f"{split}.json"),
                 cider(out / "seeds" / "transformer-drophead-seed1" / f"{split}.json")
                 - cider(out / "seeds" / "transformer-seed1" / f"{split}.json")]
        comp = seeds["comparison"][split]
        assert comp["mean_difference"] == pytest.approx(sum(diffs) / 2)
        assert comp["drophead_wins"] == sum(d > 0 for d in diffs)
        # two seeds: same signs -> only 2 of the 4 sign flips reach |mean| (p = 0.5); mixed signs -> all 4
        assert comp["p_value_sign_flip"] == (0.5 if diffs[0] * diffs[1] > 0 else 1.0)
        assert comp["verdict"].startswith("no significant difference")
    for split in ("val", "nice"):
        assert set(summary["findings"]["ordering"][split]["observed"]) == {"transformer", "lstm", "rnn"}
    md = (out / "report" / "summary.md").read_text()
    assert "| # | System | nice CIDEr-D | val CIDEr-D | train CIDEr-D | nice - val |" in md
    assert "most-frequent-caption" in md and "DropHead" in md


def test_baseline_is_the_most_frequent_training_caption(quick_run):
    refs = json.loads((quick_run / "references" / "train.json").read_text())
    counts = {}
    for caps in refs.values():
        for c in caps:
            c = " ".join(c.lower().split())
            counts[c] = counts.get(c, 0) + 1
    best = max(counts.values())
    preds = read_predictions(quick_run / "predictions" / "most-frequent-caption" / "val.json")
    (caption,) = set(preds.values())
    assert counts[caption] == best


def test_resume_skips_finished_work_and_reproduces_the_report(quick_run, capsys):
    out = quick_run
    before = json.loads((out / "report" / "leaderboard.json").read_text())
    assert main(["run", "--quick", "--out", str(out), "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert {f"train/{m}" for m in P.MODELS} <= set(run["skipped_stages"])
    assert not any(k.startswith("train/") for k in run["timings_seconds"])
    after = json.loads((out / "report" / "leaderboard.json").read_text())
    assert after == before
    assert "Ranked by CIDEr-D on nice" in capsys.readouterr().out


def test_resume_refuses_another_configuration(quick_run, capsys):
    assert main(["run", "--quick", "--out", str(quick_run), "--no-progress", "--tf-steps", "7"]) == 1
    assert "another configuration" in capsys.readouterr().err
    assert json.loads((quick_run / "run.json").read_text())["status"] == "complete"


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A run killed in the middle of training continues from the last checkpoint, not from scratch."""
    monkeypatch.setenv("CAPEVAL_MODELS_CACHE", str(tmp_path / "cache"))
    config = P.RunConfig.quick_config(out=str(tmp_path / "r"), progress=False, models=("rnn",))
    config.out_dir.mkdir(parents=True)
    P.check_config(config)
    data = P.load_data(config)
    from capeval_models import training

    calls = {"n": 0}
    real_step = training.NumpyTrainer.model_step

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 45:  # after the checkpoints of iterations 20 and 40
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(training.NumpyTrainer, "model_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        P.train_model(config, data, "rnn")
    assert not P.is_trained(config, "rnn")
    ckpt = json.loads((P.model_dir(config, "rnn") / "checkpoints" / "latest.json").read_text())
    assert ckpt["iteration"] == 40
    calls["n"] = 0
    history = P.train_model(config, data, "rnn")
    assert calls["n"] == config.rnn_iterations - 40  # only the missing iterations ran
    assert len(history["loss"]) == config.rnn_iterations
    assert all(math.isfinite(x) for x in history["loss"])


# ------------------------------------------------------------------------------------------------------
# report.html in a real browser (headless Chromium; skipped where it is not installed)

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install -y chromium)")
SECTIONS = ("data", "leaderboard", "findings", "caption-quality", "samples", "training", "attention", "drophead")


def _chromium(tmp_path, *args):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_report_html_stands_alone_with_every_section(quick_run):
    page = (quick_run / "report" / "report.html").read_text()
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from elsewhere: the file can be mailed
    for section in SECTIONS:
        assert f'<section class="part" id="{section}">' in page, section
    for split in ("val", "nice"):  # sample captions: the image, the references and every system's caption
        refs = read_references(quick_run / "references" / f"{split}.json")
        first = next(iter(refs))
        block = page.split(f'id="sample-{split}-{first}"')[1].split('<div class="sample"')[0]
        assert '<img class="sample"' in block
        for ref in refs[first]:
            assert html.escape(ref) in block
        for system in SYSTEMS:
            caption = read_predictions(quick_run / "predictions" / system / f"{split}.json")[first]
            assert f"{html.escape(system)}</td><td>{html.escape(caption)}</td>" in block


@needs_chromium
def test_report_dom_has_every_section_and_image_loaded(quick_run, tmp_path):
    proc = _chromium(tmp_path, "--dump-dom", (quick_run / "report" / "report.html").as_uri())
    dom = proc.stdout
    assert "<h1>" in dom, proc.stderr[-1000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    images = re.findall(r'<img class="(\w+)" alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
    kinds = [k for k, _, _ in images]
    # 3 charts per split (ranking, all metrics, categories on nice only), 2 training curves, 2 attention maps,
    # 3 sample images per split of val and nice
    assert kinds.count("chart") == 3 + 2 + 2
    assert kinds.count("figure") == 2 + 2
    assert kinds.count("sample") == 6
    for _, alt, data in images:  # every embedded image is a PNG
        assert base64.b64decode(data)[:8] == PNG, alt


@needs_chromium
def test_report_screenshot_shows_the_systems_in_their_colours(quick_run, tmp_path):
    import matplotlib.image

    from capeval.report import system_colors

    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", (quick_run / "report" / "report.html").as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-1000:]
    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    colors = system_colors(SYSTEMS)
    for system in ("most-frequent-caption", "rnn", "lstm"):  # the ranking chart's bars, in each system's colour
        rgb = np.array([int(colors[system][i: i + 2], 16) for i in (1, 3, 5)]) / 255
        assert (np.abs(pixels - rgb) < 0.03).all(axis=2).sum() > 500, system
