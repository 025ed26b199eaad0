"""Every python and bash snippet of docs/scale.md runs, on small shards, and prints evaluate()'s numbers."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import pytest

import capeval
from capeval.cli import main as cli_main

DOC = Path(__file__).resolve().parents[1] / "docs" / "scale.md"
REFS = {
    1: ["A dog runs on the grass.", "The dog is running."],
    2: ["A cat sleeps on a bed.", "a cat on a bed"],
    3: ["Two people ride bikes.", "people riding bicycles on a road"],
    4: ["A plate of food.", "food on a white plate", "a meal"],
}
PREDS = {1: "a dog running on grass", 2: "a cat sleeping", 3: "two people on bikes", 4: "a plate with food"}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def shards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for s, ids in enumerate(([1, 2], [3, 4])):
        with open(tmp_path / f"refs-{s:02d}.jsonl", "w") as fh:
            fh.writelines(json.dumps({"image_id": i, "captions": REFS[i]}) + "\n" for i in ids)
        with open(tmp_path / f"preds-{s:02d}.jsonl", "w") as fh:
            fh.writelines(json.dumps({"image_id": i, "caption": PREDS[i]}) + "\n" for i in ids)
    return tmp_path


def test_python_snippets(shards):
    blocks = _blocks("python")
    assert len(blocks) == 2
    expected = capeval.evaluate(REFS, PREDS, ["bleu", "rouge_l", "cider_d"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(blocks[0], {})
    assert out.getvalue().split()[:2] == ["4", str(round(expected.scores["CIDEr-D"], 4))]
    assert (shards / "scores.csv").read_text().startswith("image_id,Bleu_1,")
    if pytest.importorskip("distributed", reason="the dask snippet needs the dask extra"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(blocks[1], {})
        assert out.getvalue().split() == ["2", str(round(expected.scores["CIDEr-D"], 4))]


def test_bash_snippets(shards, capsys):
    lines = [line for block in _blocks("bash") for line in block.splitlines() if line.startswith("capeval ")]
    assert len(lines) == 2
    assert cli_main(shlex.split(lines[0])[1:]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_images"] == 4
    assert abs(printed["scores"]["CIDEr-D"] - capeval.evaluate(REFS, PREDS, ["cider_d"])["CIDEr-D"]) < 1e-12
    pytest.importorskip("distributed", reason="the dask snippet needs the 'dask' extra")
    assert cli_main(shlex.split(lines[1])[1:]) == 0
    assert "CIDEr-D" in capsys.readouterr().out
