"""Packaging promises: capeval's import stays light, the version is single-sourced, and the package
attributes are the functional API whatever was imported before."""

import inspect
import subprocess
import sys

import pytest

import capeval

REFS = {1: ["a dog runs on the grass", "the dog is running"], 2: ["a cat sleeps on a bed"]}
PREDS = {1: "a dog running on grass", 2: "a cat sleeping"}


def test_capeval_never_imports_torch_or_models():
    code = "import sys, capeval, capeval.cider, capeval.df; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'capeval_models', 'matplotlib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_version_matches_metadata():
    from importlib.metadata import version

    from capeval._version import __version__

    assert capeval.__version__ == __version__ == version("capeval")


@pytest.mark.parametrize("name, key", [("bleu", "Bleu_4"), ("rouge_l", "ROUGE_L"), ("cider_d", "CIDEr-D"), ("cider", "CIDEr")])
def test_functional_api_equals_evaluate(name, key):
    fn = getattr(capeval, name)
    result = fn(REFS, PREDS, tokenizer="ptb")
    full = capeval.evaluate(REFS, PREDS, metrics=[name])
    assert isinstance(result, capeval.EvaluationResult)
    assert result.scores == full.scores and result.signature == full.signature
    assert list(inspect.signature(fn).parameters)[:3] == ["refs", "preds", "tokenizer"]
    assert result.scores[key] == pytest.approx(result.per_item[key].mean(), abs=1e-12) or name == "bleu"


def test_cider_is_the_original_cider_and_cider_d_is_coco():
    from capeval import cider

    assert callable(cider) and "original CIDEr" in cider.__doc__ and "cider_d" in cider.__doc__
    assert set(cider(REFS, PREDS).scores) == {"CIDEr"} and set(capeval.cider_d(REFS, PREDS).scores) == {"CIDEr-D"}
    assert cider(REFS, PREDS).scores["CIDEr"] != capeval.cider_d(REFS, PREDS).scores["CIDEr-D"]


FRESH = """
import capeval, capeval.meteor, capeval.evaluate, capeval.cider, capeval.bleu, capeval.tokenize
import capeval.meteor as M
from capeval.cider import CiderDReward
from capeval.meteor import Meteor
refs = {1: ["a dog runs"]}; preds = {1: "a dog"}
assert capeval.evaluate(refs, preds, metrics="bleu", tokenizer="none").scores["Bleu_1"] > 0
assert capeval.cider(refs, preds).scores["CIDEr"] >= 0 and capeval.bleu(refs, preds).scores["Bleu_1"] > 0
assert M.Meteor is Meteor and capeval.meteor.Meteor is Meteor and callable(capeval.meteor)
assert capeval.meteor.__wrapped__.__module__ == "capeval.metrics.api"
assert capeval.tokenize.tokenize_lists(["A dog."]) == [["a", "dog"]] and capeval.tokenize(["A dog."]) == ["a dog"]
assert capeval.cider.CiderDReward is CiderDReward is capeval.CiderDReward
assert capeval.evaluate.MetricUnavailableWarning.__name__ == "MetricUnavailableWarning"
print("ok")
"""


def test_functions_survive_submodule_imports_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_attribute_writes_reach_the_submodule(monkeypatch):
    import importlib

    module = importlib.import_module("capeval.tokenize")
    monkeypatch.setattr(capeval.tokenize, "TOKENIZERS", ("ptb",))
    assert module.TOKENIZERS == ("ptb",)
