"""Bad input gets a typed CapevalError naming the ids at fault; nothing is dropped silently."""

import math

import pytest

import capeval
from capeval.errors import (
    CapevalError,
    EmptyReferencesError,
    InvalidCaptionError,
    MissingIdError,
)

REFS = {1: ["a dog runs", "the dog is running"], 2: ["a cat sleeps", "a cat on a bed"], 3: ["a red bus"]}
PREDS = {1: "a dog running", 2: "a cat sleeping", 3: "a bus"}
FAST = dict(metrics="bleu rouge_l cider_d", tokenizer="none")


def test_prediction_without_references_is_named():
    with pytest.raises(MissingIdError, match=r"\[99\]"):
        capeval.evaluate(REFS, {**PREDS, 99: "extra"}, **FAST)


def test_references_without_prediction_are_named():
    preds = dict(PREDS)
    del preds[2]
    with pytest.raises(MissingIdError, match=r"\[2\]"):
        capeval.evaluate(REFS, preds, **FAST)


def test_int_vs_str_ids_get_a_hint():
    with pytest.raises(MissingIdError, match="int vs str"):
        capeval.evaluate(REFS, {str(k): v for k, v in PREDS.items()}, **FAST)


def test_non_strict_scores_intersection_and_warns():
    preds = {1: PREDS[1], 2: PREDS[2], 7: "orphan"}
    with pytest.warns(UserWarning, match=r"\[3\].*\[7\]"):
        result = capeval.evaluate(REFS, preds, strict=False, **FAST)
    assert list(result.per_item.index) == [1, 2]
    # the intersection scores exactly like an evaluation restricted to it
    alone = capeval.evaluate({1: REFS[1], 2: REFS[2]}, {1: PREDS[1], 2: PREDS[2]}, **FAST)
    assert result.scores == alone.scores


@pytest.mark.parametrize("bad", [None, math.nan, 3, ["two", "captions"]])
def test_non_string_prediction(bad):
    with pytest.raises(InvalidCaptionError, match="id 2"):
        capeval.evaluate(REFS, {**PREDS, 2: bad}, **FAST)


def test_nan_reference_is_named():
    with pytest.raises(InvalidCaptionError, match=r"id 1, reference 1.*NaN"):
        capeval.evaluate({**REFS, 1: ["ok", float("nan")]}, PREDS, **FAST)


def test_empty_reference_list():
    with pytest.raises(EmptyReferencesError, match="id 3"):
        capeval.evaluate({**REFS, 3: []}, PREDS, **FAST)


def test_all_empty_references():
    with pytest.raises(EmptyReferencesError, match="id 3"):
        capeval.evaluate({**REFS, 3: ["", "  "]}, PREDS, **FAST)


def test_errors_share_a_base_class():
    assert issubclass(MissingIdError, CapevalError) and issubclass(MissingIdError, ValueError)


def test_metric_names_and_keys_are_accepted():
    a = capeval.evaluate(REFS, PREDS, metrics=["BLEU", "rouge-l", "CIDEr-D"], tokenizer="none")
    b = capeval.evaluate(REFS, PREDS, metrics=["Bleu_4", "ROUGE_L", "cider_d"], tokenizer="none")
    assert a.scores == b.scores
    assert set(a.scores) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr-D"}
    with pytest.raises(ValueError, match="unknown metric"):
        capeval.evaluate(REFS, PREDS, metrics=["spice"], tokenizer="none")


def test_unknown_tokenizer():
    with pytest.raises(ValueError, match="tokenizer"):
        capeval.evaluate(REFS, PREDS, tokenizer="moses", metrics="bleu")


def test_ids_keep_reference_order_and_signature():
    result = capeval.evaluate(REFS, dict(reversed(list(PREDS.items()))), **FAST)
    assert list(result.per_item.index) == [1, 2, 3]
    assert result.signature.startswith("nrefs:1-2|tok:none|df:corpus|n:4|sigma:6.0|")
    assert f"version:{capeval.__version__}" in result.signature


def test_pycocoevalcap_style_inputs_are_accepted():
    """{id: [{'caption': ...}]} references and {id: [caption]} predictions, as pycocoevalcap takes."""
    refs = {k: [{"caption": c} for c in v] for k, v in REFS.items()}
    preds = {k: [v] for k, v in PREDS.items()}
    assert capeval.evaluate(refs, preds, **FAST).scores == capeval.evaluate(REFS, PREDS, **FAST).scores


def test_signature_lists_only_computed_metrics_when_meteor_is_skipped(monkeypatch):
    import importlib

    from capeval.errors import MeteorUnavailableError
    from capeval.evaluate import MetricUnavailableWarning

    def unavailable(*args, **kwargs):
        raise MeteorUnavailableError("no java here")

    monkeypatch.setattr(importlib.import_module("capeval.meteor"), "find_java", unavailable)
    jar = {"backend": "jar"}  # the Python engine needs no Java: ask for the jar
    with pytest.warns(MetricUnavailableWarning, match="no java"):
        result = capeval.evaluate(REFS, PREDS, tokenizer="none", meteor_options=jar)
    assert "METEOR" not in result.scores and result.skipped == {"METEOR": "no java here"}
    assert "metrics:bleu+rouge_l+cider_d|" in result.signature
    with pytest.raises(MeteorUnavailableError):
        capeval.evaluate(REFS, PREDS, metrics="bleu meteor", tokenizer="none", meteor_options=jar)


def test_the_signature_names_the_options():
    result = capeval.evaluate(REFS, PREDS, metrics="cider_d", tokenizer="none", n=3, sigma=4)
    assert result.signature.startswith("nrefs:1-2|tok:none|df:corpus|n:3|sigma:4.0|metrics:cider_d|")
    assert result.signatures["cider_d"] == f"nrefs:1-2|tok:none|df:corpus|n:3|sigma:4.0|version:{capeval.__version__}"
