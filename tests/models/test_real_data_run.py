"""`capeval-models run --data ... --quick` end to end on small files in every real format (CS231n's
coco2014_captions.h5 with its feature files, COCO captions json + features, Karpathy json + features, each
with a NICE csv + features): training, prediction, scoring and the report, for every model."""

import json

import numpy as np
import pytest

import capeval
from capeval.formats import read_predictions, read_references
from capeval_models.cli import main
from capeval_models.config import MODELS

pytest.importorskip("torch")
pytest.importorskip("h5py")

from test_data_loaders import write_coco, write_cs231n, write_karpathy, write_nice  # noqa: E402


def _nice(tmp_path, dim: int) -> dict:
    """nice-val-5k.csv with features of the training features' width."""
    write_nice(tmp_path)
    with np.load(tmp_path / "nice_feats.npz") as z:
        ids = z["ids"]
    features = np.random.default_rng(1).standard_normal((len(ids), dim)).astype(np.float32)
    np.savez(tmp_path / "nice_feats.npz", ids=ids, features=features)
    return {"csv": "nice-val-5k.csv", "features": "nice_feats.npz"}


def cs231n_spec(tmp_path):
    write_cs231n(tmp_path / "coco_captioning", n_train=20, n_val=6, d_pca=16)
    return {"format": "cs231n", "dir": "coco_captioning", "nice": _nice(tmp_path, 16),
            "annotations": ["coco_captioning/captions_train2014.json", "coco_captioning/captions_val2014.json"]}


def coco_spec(tmp_path):
    for split, ids in (("train", range(100, 120)), ("val", (42, 7, 1000))):
        (tmp_path / split).mkdir()
        write_coco(tmp_path / split, ids=tuple(ids))
    return {"format": "coco", "train": {"annotations": "train/captions_val2014.json", "features": "train/feats.npz"},
            "val": {"annotations": "val/captions_val2014.json", "features": "val/feats.npz"}, "nice": _nice(tmp_path, 8)}


def karpathy_spec(tmp_path):
    write_karpathy(tmp_path)
    return {"format": "karpathy", "dataset": "dataset_coco.json", "features": "feats.npz", "nice": _nice(tmp_path, 8)}


@pytest.mark.parametrize("make_spec", [cs231n_spec, coco_spec, karpathy_spec], ids=["cs231n", "coco", "karpathy"])
def test_quick_run_on_real_formats(tmp_path, make_spec, capsys):
    spec = make_spec(tmp_path)
    spec_path = tmp_path / "data.json"
    spec_path.write_text(json.dumps(spec))
    out = tmp_path / "run"
    rc = main(["run", "--quick", "--data", str(spec_path), "--out", str(out), "--no-progress",
               "--rnn-iterations", "10", "--lstm-iterations", "10", "--tf-steps", "10", "--val-every", "5",
               "--n-resamples", "20"])
    assert rc == 0, capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    splits = [s for s in ("nice", "val", "train") if (out / "references" / f"{s}.json").exists()]
    assert splits == ["nice", "val", "train"]
    board = json.loads((out / "report" / "leaderboard.json").read_text())
    systems = {s["system"] for s in board["splits"]["val"]["systems"]}
    assert set(MODELS) <= systems and "most-frequent-caption" in systems
    for split in splits:
        refs = read_references(out / "references" / f"{split}.json")
        for s in board["splits"][split]["systems"]:
            preds = read_predictions(out / "predictions" / s["system"] / f"{split}.json")
            assert set(preds) == set(refs)
            expected = capeval.evaluate(refs, preds, metrics=["bleu", "rouge_l", "cider_d"]).scores["CIDEr-D"]
            assert s["scores"]["CIDEr-D"] == pytest.approx(100 * expected, abs=1e-9)
    for model in MODELS:
        history = json.loads((out / "models" / model / "history.json").read_text())
        assert history["iterations"] == 10 and [v["iteration"] for v in history["val"]] == [5, 10]
    html = (out / "report" / "report.html").read_text()
    for section in ("data", "leaderboard", "findings", "samples", "training", "drophead"):
        assert f'id="{section}"' in html
    assert str(spec_path) in html  # the title names the data


@pytest.mark.parametrize("spec, message", [
    ({"format": "flickr"}, "unknown data format 'flickr'"),
    ({"format": "karpathy", "dataset": "dataset_coco.json"}, "the karpathy spec needs 'features'"),
    ({"format": "coco", "train": {"annotations": "a.json", "features": "f.npz"}, "val": {"features": "f.npz"}},
     "the coco spec needs val.'annotations'"),
    ([1, 2], "a data spec is a JSON object"),
])
def test_a_bad_data_spec_is_refused_naming_the_file(tmp_path, capsys, spec, message):
    spec_path = tmp_path / "data.json"
    spec_path.write_text(json.dumps(spec))
    assert main(["run", "--quick", "--data", str(spec_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"{spec_path}: " in err and message in err
