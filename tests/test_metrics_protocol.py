"""The metric protocol: statistics of parts combine into the whole corpus' scores; the registry;
option values validated up front with typed errors."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

import capeval
from capeval import metrics
from capeval.errors import OptionError

CASE = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))["coco300"]
REFS, PREDS, IDS = CASE["tokenized_refs"], CASE["tokenized_preds"], CASE["ids"]
NAMES = ["bleu", "rouge_l", "cider_d", "cider"]


def test_statistics_of_parts_combine_into_the_whole():
    """Two halves scored separately (one shared fitted state: the same document frequencies) give,
    by adding their statistics, the scores of scoring the whole corpus at once."""
    df = capeval.DocumentFrequencies.from_tokenized([REFS[i] for i in IDS])
    whole = capeval.evaluate(REFS, PREDS, NAMES, tokenizer="none", df=df)
    halves = [IDS[:137], IDS[137:]]
    parts = [capeval.evaluate({i: REFS[i] for i in h}, {i: PREDS[i] for i in h}, NAMES, tokenizer="none", df=df) for h in halves]
    for name in NAMES:
        metric = metrics.get(name)
        sums = sum(p.statistics[name].sum(axis=0) for p in parts)
        for key, value in metric.scores(sums).items():
            assert value == pytest.approx(whole.scores[key], rel=1e-14, abs=1e-15), key
    # and they are not the mean of the parts' scores for a corpus statistic (BLEU)
    mean_of_parts = (parts[0].scores["Bleu_4"] * 137 + parts[1].scores["Bleu_4"] * 163) / 300
    assert abs(mean_of_parts - whole.scores["Bleu_4"]) > 1e-6


def test_default_corpus_frequencies_equal_the_precomputed_ones_of_the_same_references():
    df = capeval.DocumentFrequencies.from_tokenized([REFS[i] for i in IDS])
    a = capeval.evaluate(REFS, PREDS, ["cider_d"], tokenizer="none")
    b = capeval.evaluate(REFS, PREDS, ["cider_d"], tokenizer="none", df=df)
    assert a.scores["CIDEr-D"] == pytest.approx(b.scores["CIDEr-D"], abs=1e-12)


def test_per_item_scores_are_the_rows_own_scores():
    result = capeval.evaluate(REFS, PREDS, NAMES, tokenizer="none")
    for name in NAMES:
        per = metrics.get(name).per_item(result.statistics[name])
        for key, column in per.items():
            np.testing.assert_allclose(column, result.per_item[key].to_numpy(), rtol=0, atol=1e-15)


def test_registry_lookups():
    assert metrics.names()[:5] == ("bleu", "meteor", "rouge_l", "cider_d", "cider")
    assert metrics.default_names() == ("bleu", "meteor", "rouge_l", "cider_d")
    for query, name in [("Bleu_4", "bleu"), ("BLEU", "bleu"), ("Bleu_7", "bleu"), ("rouge-l", "rouge_l"), ("ROUGE_L", "rouge_l"),
                        ("CIDEr-D", "cider_d"), ("ciderd", "cider_d"), ("CIDEr", "cider"), ("meteor", "meteor")]:
        assert metrics.get(query).name == name, query
    assert metrics.get("bleu").keys(metrics.Options(n=2)) == ["Bleu_1", "Bleu_2"]
    assert [metrics.display_name(k) for k in ["Bleu_4", "ROUGE_L", "CIDEr-D", "METEOR", "other"]] == ["BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR", "other"]
    assert metrics.report_order(["ROUGE_L", "Bleu_2", "x", "CIDEr-D", "Bleu_1", "METEOR", "CIDEr"]) == [
        "CIDEr-D", "CIDEr", "Bleu_1", "Bleu_2", "METEOR", "ROUGE_L", "x"]
    with pytest.raises(OptionError, match="unknown metric 'spice'"):
        metrics.get("spice")


def test_register_refuses_collisions():
    class Fake(metrics.MeanMetric):
        name = "fake"
        aliases = ("rouge",)  # already ROUGE-L's
        key = "FAKE"

    with pytest.raises(OptionError, match="'rouge' already names metric 'rouge_l'"):
        metrics.register(Fake())
    Fake.aliases = ()
    metrics.register(Fake())
    try:
        with pytest.raises(OptionError, match="already registered"):
            metrics.register(Fake())
    finally:
        metrics.unregister("fake")
    assert "fake" not in metrics.names()


@pytest.mark.parametrize(
    "bad",
    [dict(sigma=float("nan")), dict(sigma=0), dict(sigma=-1.0), dict(sigma=math.inf), dict(sigma="6"), dict(sigma=1e200), dict(sigma=1e-200), dict(n=0), dict(n=-1),
     dict(n=1.5), dict(n=True), dict(tokenizer="moses"), dict(metrics=["spice"]), dict(metrics=[])],
)
def test_bad_options_fail_up_front_with_a_typed_error(bad):
    """Even with input that is also bad, the option error comes first (nothing is tokenized)."""
    with pytest.raises(OptionError):
        capeval.evaluate({1: []}, {2: None}, **bad)


def test_option_errors_name_the_value():
    with pytest.raises(OptionError, match=r"sigma must be a finite number > 0 .*got nan"):
        capeval.cider_d(REFS, PREDS, sigma=float("nan"))
    with pytest.raises(OptionError, match=r"sigma must be a number whose square is finite .*got 1e\+200"):
        capeval.cider_d(REFS, PREDS, sigma=1e200)  # 2 sigma^2 overflows: the penalty would be NaN
    with pytest.raises(OptionError, match="n must be an integer >= 1"):
        capeval.DocumentFrequencies.from_tokenized([["a b"]], n=0)
    with pytest.raises(ValueError):  # OptionError is also a ValueError
        capeval.bleu(REFS, PREDS, n=0)


def test_the_meteor_metric_uses_only_the_public_facade():
    facade = {"meteor_segments", "Meteor", "MeteorResult", "meteor_scores_from_stats", "meteor_summable_stats", "meteor_unavailable_reason",
              "resolve_backend", "jar_tag", "jar_options"}
    source = Path(metrics.__file__).with_name("meteor.py").read_text(encoding="utf-8")
    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module == "meteor":
            used.update(a.name for a in node.names)
    assert used and used <= facade, used - facade
