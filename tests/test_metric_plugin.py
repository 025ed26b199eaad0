"""The protocol's proof: a metric defined here, registered, flows through evaluate, the bootstrap,
``capeval score`` and the leaderboard report without any other file knowing it."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

import capeval
from capeval import metrics
from capeval.cli import EXIT_OK, main
from capeval.report import Leaderboard
from capeval.stats import bootstrap_ci, corpus_scores

REFS = {"1": ["a dog runs"], "2": ["a cat sleeps", "the cat"]}
PREDS = {"1": "a dog barks loudly", "2": "the cat sleeps"}
# worked out by hand: item 1 matches {a, dog}: P = 2/4, R = 2/3, F1 = 4/7; item 2: against "a cat
# sleeps" P = R = 2/3, F1 = 2/3, against "the cat" P = 2/3, R = 1, F1 = 4/5; the best is 4/5
EXPECTED = {"1": 4 / 7, "2": 4 / 5}


class UnigramF1(metrics.MeanMetric):
    """Best unigram F1 of the hypothesis against any one reference."""

    name = "unigram_f1"
    aliases = ("uf1",)
    key = "UF1"
    display = {"UF1": "Unigram-F1"}
    report_rank = 5

    def item_scores(self, corpus, state, options):
        out = np.zeros(corpus.n_items)
        for i, (hyp, refs) in enumerate(zip(corpus.hypotheses, corpus.references)):
            h = Counter(hyp.split())
            for ref in refs:
                r = Counter(ref.split())
                match = sum((h & r).values())
                if match:
                    p, rec = match / sum(h.values()), match / sum(r.values())
                    out[i] = max(out[i], 2 * p * rec / (p + rec))
        return out

    def signature(self, options, state=None):
        return {"unigrams": "best-ref"}


@pytest.fixture
def registered():
    metric = metrics.register(UnigramF1())
    yield metric
    metrics.unregister("unigram_f1")


def test_registry_names_it(registered):
    assert metrics.get("UF1") is registered
    assert metrics.get("uf1") is registered and "unigram_f1" in metrics.names()
    assert "unigram_f1" not in metrics.default_names()
    assert metrics.display_name("UF1") == "Unigram-F1"


def test_evaluate_and_the_bootstrap(registered):
    result = capeval.evaluate(REFS, PREDS, metrics=["unigram_f1", "bleu"], tokenizer="none")
    assert result.scores["UF1"] == pytest.approx((4 / 7 + 4 / 5) / 2, abs=1e-15)
    assert result.per_item["UF1"].to_dict() == pytest.approx(EXPECTED, abs=1e-15)
    assert "unigrams:best-ref" in result.signatures["unigram_f1"] and "metrics:bleu+unigram_f1" in result.signature
    ci = bootstrap_ci(result, n_resamples=200, seed=1)
    assert ci["UF1"].low >= 4 / 7 - 1e-12 and ci["UF1"].high <= 4 / 5 + 1e-12 and ci["UF1"].low < ci["UF1"].high
    assert corpus_scores(result, items=["2"])["UF1"] == pytest.approx(4 / 5, abs=1e-15)


def test_capeval_score_on_the_command_line(registered, tmp_path, capsys):
    refs, preds = tmp_path / "refs.json", tmp_path / "preds.json"
    refs.write_text(json.dumps(REFS))
    preds.write_text(json.dumps(PREDS))
    code = main(["score", str(refs), str(preds), "--metrics", "unigram_f1", "--tokenizer", "none", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert json.loads(out)["scores"]["UF1"] == pytest.approx((4 / 7 + 4 / 5) / 2, abs=1e-12)


def test_leaderboard_report(registered):
    board = Leaderboard(metrics=["unigram_f1", "rouge_l"], tokenizer="none", rank_by="UF1", n_resamples=100)
    board.add_split("val", REFS)
    board.add("val", "good", PREDS)
    board.add("val", "bad", {"1": "zebra", "2": "cat"})
    report = board.report()
    assert report.metrics == ["UF1", "ROUGE_L"]  # the metric's report_rank puts it before ROUGE-L
    table = report.table()
    assert list(table["system"]) == ["good", "bad"]
    assert table.iloc[0]["UF1"] == pytest.approx(100 * (4 / 7 + 4 / 5) / 2, abs=1e-9)
    assert "Unigram-F1" in report.to_markdown()


def test_an_unregistered_name_is_refused():
    from capeval.errors import OptionError

    with pytest.raises(OptionError, match="unknown metric 'unigram_f1'"):
        capeval.evaluate(REFS, PREDS, metrics=["unigram_f1"], tokenizer="none")
