"""capeval-models step commands (train, predict, attention, score) on a small folder, and their errors."""

import json

import pytest

from capeval_models.cli import build_parser, main


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPEVAL_MODELS_CACHE", str(tmp_path / "cache"))


def test_step_by_step(tmp_path, cache, capsys, monkeypatch):
    out = str(tmp_path / "steps")
    common = ["--out", out, "--no-progress"]
    assert main(["train", "--model", "rnn", "--quick", "--models", "rnn", "lstm", *common]) == 0
    assert "rnn (seed 0): 60 iterations" in capsys.readouterr().out
    # predict: the baseline and the trained model only; the untrained LSTM is left alone
    assert main(["predict", "--split", "val", "nice", *common]) == 0
    assert "4 prediction files written" in capsys.readouterr().out
    assert not (tmp_path / "steps" / "predictions" / "lstm").exists()
    # asking for an untrained model's captions is an error naming the command that trains it
    assert main(["predict", "--system", "lstm", *common]) == 1
    assert "capeval-models train --model lstm" in capsys.readouterr().err
    assert main(["score", *common]) == 0
    printed = capsys.readouterr().out
    assert "| # | System | nice CIDEr-D | val CIDEr-D | nice - val |" in printed
    board = json.loads((tmp_path / "steps" / "report" / "leaderboard.json").read_text())
    assert {s["system"] for s in board["splits"]["val"]["systems"]} == {"most-frequent-caption", "rnn"}
    # a later score interrupted before its report is written leaves the previous report whole
    import capeval_models.render

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(capeval_models.render, "report_files", interrupted)
        assert main(["score", *common]) == 130
    assert json.loads((tmp_path / "steps" / "report" / "leaderboard.json").read_text()) == board
    # no transformer in this folder: no attention figures, no error
    assert main(["attention", *common]) == 0
    # the folder's config.json wins over flags given to a later train
    assert main(["train", "--model", "lstm", "--quick", "--lstm-iterations", "5", *common]) == 0
    assert "lstm (seed 0): 60 iterations" in capsys.readouterr().out


def test_errors(tmp_path, capsys):
    assert main(["score", "--out", str(tmp_path / "nothing")]) == 1
    assert "config.json not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", "--model", "gru"])
    assert exc.value.code == 2
    help_text = build_parser().format_help()
    for command in ("run", "train", "predict", "attention", "score"):
        assert command in help_text


@pytest.mark.parametrize("model, seed", [("transformer-drophead", 1), ("lstm", 2)])
def test_progress_bars_name_the_model_variant_and_seed(tmp_path, cache, capsys, model, seed):
    pytest.importorskip("torch")
    out = str(tmp_path / "labels")
    assert main(["train", "--model", model, "--seed", str(seed), "--quick", "--tf-steps", "3",
                 "--lstm-iterations", "3", "--val-every", "3", "--out", out]) == 0
    err = capsys.readouterr().err
    assert f"{model} seed {seed}: " in err  # tqdm's "<desc>: 100%|..." line
    other = "transformer seed" if model == "transformer-drophead" else "rnn seed"
    assert other not in err
