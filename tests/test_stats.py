"""capeval.stats: resampled scores equal re-scoring the resampled corpus; seeded; fast."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import capeval
from capeval import stats
from capeval.errors import InputError, MissingIdError
from capeval.stats import approximate_randomization, bootstrap_ci, compare, corpus_scores, paired_bootstrap

CASES = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))
COCO = CASES["coco300"]
REFS = COCO["tokenized_refs"]
PREDS = COCO["tokenized_preds"]
IDS = COCO["ids"]
METRICS = ["bleu", "rouge_l", "cider_d"]


@pytest.fixture(scope="module")
def result():
    return capeval.evaluate(REFS, PREDS, metrics=METRICS, tokenizer="none")


@pytest.fixture(scope="module")
def other():
    """A second system: the first reference as the prediction on every third image."""
    preds = {i: (REFS[i][0] if k % 3 == 0 else PREDS[i]) for k, i in enumerate(IDS)}
    return capeval.evaluate(REFS, preds, metrics=METRICS, tokenizer="none")


def rescored(draw, preds=PREDS):
    """capeval.evaluate on the resampled corpus (fresh ids for repeated images)."""
    refs = {f"{k}:{IDS[j]}": REFS[IDS[j]] for k, j in enumerate(draw)}
    hyps = {f"{k}:{IDS[j]}": preds[IDS[j]] for k, j in enumerate(draw)}
    return capeval.evaluate(refs, hyps, metrics=["bleu", "rouge_l"], tokenizer="none")


def test_resampled_bleu_is_the_bleu_of_the_resampled_corpus(result):
    """BLEU from resampled summed statistics == BLEU of the resampled corpus; ROUGE-L == its mean."""
    blocks, skipped = stats._blocks(result)
    assert not skipped
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(IDS), size=(4, len(IDS)))
    weights = np.stack([np.bincount(d, minlength=len(IDS)) for d in draws]).astype(float)
    fast = stats._evaluate_blocks(blocks, weights)
    keys = [k for b in blocks for k in b.keys]
    per_cider = result.per_item["CIDEr-D"].to_numpy()
    for row, draw in enumerate(draws):
        slow = rescored(draw)
        for key in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L"]:
            assert fast[row, keys.index(key)] == pytest.approx(slow.scores[key], abs=1e-12), key
        assert fast[row, keys.index("CIDEr-D")] == pytest.approx(per_cider[draw].mean(), abs=1e-12)
    # not the mean of per-image BLEU
    assert abs(fast[0, keys.index("Bleu_4")] - result.per_item["Bleu_4"].to_numpy()[draws[0]].mean()) > 1e-3


def test_full_weights_reproduce_the_scores(result):
    assert corpus_scores(result) == pytest.approx(result.scores, abs=1e-12)


def test_subset_scores_equal_scoring_the_subset(result):
    ids = IDS[::7]
    sub = capeval.evaluate({i: REFS[i] for i in ids}, {i: PREDS[i] for i in ids}, metrics=["bleu", "rouge_l"], tokenizer="none")
    scores = corpus_scores(result, items=ids)
    for key in ["Bleu_1", "Bleu_4", "ROUGE_L"]:
        assert scores[key] == pytest.approx(sub.scores[key], abs=1e-12)
    mask = np.isin(np.asarray(IDS), ids)
    assert corpus_scores(result, items=mask) == pytest.approx(scores, abs=1e-15)
    with pytest.raises(MissingIdError):
        corpus_scores(result, items=["nope"])


def test_bootstrap_interval_is_seeded_and_sane(result):
    a = bootstrap_ci(result, n_resamples=300, seed=7)
    b = bootstrap_ci(result, n_resamples=300, seed=7)
    c = bootstrap_ci(result, n_resamples=300, seed=8)
    assert a.to_frame().equals(b.to_frame())
    assert not a.to_frame().equals(c.to_frame())
    assert list(a) == list(result.scores)
    for key, interval in a.intervals.items():
        assert interval.score == result.scores[key]
        assert interval.low < interval.score < interval.high, key
        assert interval.std > 0
    low, high = a["CIDEr-D"]
    assert (low, high) == (a["CIDEr-D"].low, a["CIDEr-D"].high)
    assert a.signature == f"ci:percentile|resamples:300|seed:7|alpha:0.05|n:{len(IDS)}"
    narrow = bootstrap_ci(result, n_resamples=300, seed=7, alpha=0.5)
    assert narrow["Bleu_4"].high - narrow["Bleu_4"].low < a["Bleu_4"].high - a["Bleu_4"].low
    json.dumps(a.to_dict())


def test_bootstrap_of_a_category(result):
    ids = IDS[:60]
    ci = bootstrap_ci(result, n_resamples=200, items=ids, metrics=["Bleu_4", "CIDEr-D"])
    assert list(ci) == ["Bleu_4", "CIDEr-D"] and ci.n_items == 60
    assert ci["Bleu_4"].score == pytest.approx(corpus_scores(result, items=ids)["Bleu_4"], abs=1e-15)


def test_a_corpus_metric_without_statistics_is_skipped_with_the_reason(result):
    """BLEU is not a mean of per-image scores: without its statistics it cannot be resampled."""
    fake = SimpleNamespace(scores=result.scores, per_item=result.per_item, statistics={})
    ci = bootstrap_ci(fake, n_resamples=50)
    assert "Bleu_4" not in ci.intervals and "no bleu statistics" in ci.skipped["Bleu_4"]
    assert ci["CIDEr-D"].score == pytest.approx(result.scores["CIDEr-D"], abs=1e-12)  # a mean: from its column


def test_meteor_resampled_from_statistics(monkeypatch):
    """With capeval.meteor's formula, METEOR intervals come from summed segment statistics."""
    meteor = pytest.importorskip("capeval.meteor")
    rng = np.random.default_rng(3)
    n = 200
    raw = np.zeros((n, 23))
    raw[:, 0] = rng.integers(5, 15, n)  # test length
    raw[:, 1] = rng.integers(5, 15, n)  # ref length
    raw[:, 4] = np.minimum(raw[:, 0], rng.integers(0, 10, n))  # exact content matches (test)
    raw[:, 5] = raw[:, 4]  # (ref)
    raw[:, 20] = np.minimum(raw[:, 4], rng.integers(1, 4, n))  # chunks
    raw[:, 21] = raw[:, 4]
    raw[:, 22] = raw[:, 4]
    summable = meteor.meteor_summable_stats(raw)
    corpus = meteor.meteor_score_from_stats(raw)
    fake = SimpleNamespace(
        scores={"METEOR": corpus},
        per_item=pd.DataFrame({"METEOR": meteor.meteor_scores_from_stats(summable)}),
        statistics={"meteor": summable},
    )
    assert corpus_scores(fake)["METEOR"] == pytest.approx(corpus, abs=1e-12)
    ci = bootstrap_ci(fake, n_resamples=200)
    assert ci["METEOR"].low < corpus < ci["METEOR"].high


def test_paired_bootstrap(result, other):
    same = paired_bootstrap(result, result, n_resamples=200)
    assert (same.table["delta"] == 0).all() and (same.table["p_value"] == 1).all()
    test = paired_bootstrap(other, result, n_resamples=500, seed=1)
    row = test["CIDEr-D"]
    assert row["score_a"] == other.scores["CIDEr-D"] and row["delta"] > 0
    assert row["p_value"] < 0.01 and row["ci_low"] < row["delta"] < row["ci_high"]
    assert test.table.loc["Bleu_4", "p_value"] < 0.01
    assert test.signature == f"test:paired-bootstrap|resamples:500|seed:1|n:{len(IDS)}"
    again = paired_bootstrap(other, result, n_resamples=500, seed=1)
    assert again.table.equals(test.table)
    json.dumps(test.to_dict())


def test_paired_tests_align_ids(result, other):
    order = IDS[::-1]
    shuffled = capeval.evaluate({i: REFS[i] for i in order}, {i: other.tokenized.predictions[IDS.index(i)] for i in order}, metrics=METRICS, tokenizer="none")
    a = paired_bootstrap(shuffled, result, n_resamples=100, seed=2)
    b = paired_bootstrap(other, result, n_resamples=100, seed=2)
    np.testing.assert_allclose(a.table["delta"], b.table["delta"], atol=1e-12)
    np.testing.assert_allclose(a.table["p_value"], b.table["p_value"])


def test_paired_tests_refuse_different_images_or_references(result):
    few = capeval.evaluate({i: REFS[i] for i in IDS[:50]}, {i: PREDS[i] for i in IDS[:50]}, metrics=METRICS, tokenizer="none")
    with pytest.raises(MissingIdError, match="cover different images"):
        paired_bootstrap(result, few)
    changed = dict(REFS)
    changed[IDS[5]] = ["something else entirely"]
    other_refs = capeval.evaluate(changed, PREDS, metrics=METRICS, tokenizer="none")
    with pytest.raises(InputError, match="different references"):
        approximate_randomization(result, other_refs)


def test_approximate_randomization_swaps_outputs(result, other):
    """score(A') - score(B') from swapped statistics == re-scoring the swapped corpora."""
    blocks_a, blocks_b, _, n = stats._paired_blocks(other, result, None)
    keys = [k for b in blocks_a for k in b.keys]
    rng = np.random.default_rng(5)
    swaps = (rng.random((3, n)) < 0.5).astype(float)
    fast = stats._swapped_differences(blocks_a, blocks_b, swaps)
    preds_a = dict(zip(IDS, other.tokenized.predictions))
    for row, swap in enumerate(swaps):
        a = {i: (PREDS[i] if s else preds_a[i]) for i, s in zip(IDS, swap)}
        b = {i: (preds_a[i] if s else PREDS[i]) for i, s in zip(IDS, swap)}
        sa = capeval.evaluate(REFS, a, metrics=METRICS, tokenizer="none").scores
        sb = capeval.evaluate(REFS, b, metrics=METRICS, tokenizer="none").scores
        for key in keys:
            assert fast[row, keys.index(key)] == pytest.approx(sa[key] - sb[key], abs=1e-12), key


def test_approximate_randomization(result, other):
    same = approximate_randomization(result, result, n_trials=200)
    assert (same.table["p_value"] == 1).all()
    test = approximate_randomization(other, result, n_trials=1000, seed=3)
    assert (test.table["p_value"] < 0.01).all()
    assert test.table.loc["CIDEr-D", "p_value"] == pytest.approx(1 / 1001)
    assert compare(other, result, "ar", n_resamples=1000, seed=3).table.equals(test.table)
    # a small difference is not significant
    tweak = {i: (REFS[i][0] if k == 0 else PREDS[i]) for k, i in enumerate(IDS)}
    near = capeval.evaluate(REFS, tweak, metrics=METRICS, tokenizer="none")
    assert approximate_randomization(near, result, n_trials=1000).table.loc["CIDEr-D", "p_value"] > 0.05


def test_hand_built_result_resamples_as_weighted_sums():
    """A result built by hand (mean columns only, BLEU statistics) resamples as W @ X, worked out here."""
    rng = np.random.default_rng(0)
    n = 500
    bleu = np.zeros((n, 10))
    bleu[:, 0] = rng.integers(5, 15, n)
    bleu[:, 1] = rng.integers(5, 15, n)
    for k in range(4):
        bleu[:, 2 + k] = np.maximum(bleu[:, 0] - k, 0)
        bleu[:, 6 + k] = rng.integers(0, 5, n)
    per = pd.DataFrame({"ROUGE_L": rng.random(n), "CIDEr-D": 3 * rng.random(n)}, index=pd.RangeIndex(n, name="image_id"))
    fake = SimpleNamespace(scores={"Bleu_1": 0, "Bleu_2": 0, "Bleu_3": 0, "Bleu_4": 0, "ROUGE_L": 0, "CIDEr-D": 0}, per_item=per, statistics={"bleu": bleu})
    ci = bootstrap_ci(fake, n_resamples=3, seed=5, keep_samples=True)
    assert len(ci.intervals) == 6
    weights = stats._bootstrap_weights(np.random.default_rng(5), 3, n)  # the same draws
    np.testing.assert_allclose(ci.samples["CIDEr-D"], weights @ per["CIDEr-D"].to_numpy() / weights.sum(axis=1), rtol=0, atol=1e-12)
    bleu_1 = [capeval.bleu.bleu_from_statistics(w @ bleu, 4)[0] for w in weights]
    np.testing.assert_allclose(ci.samples["Bleu_1"], bleu_1, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", [dict(n_resamples=0), dict(n_resamples=-5), dict(alpha=2.0), dict(alpha=float("nan")), dict(n_resamples=1.5)])
def test_bad_resampling_options_are_typed_errors(result, other, bad):
    from capeval.errors import OptionError

    with pytest.raises(OptionError):
        bootstrap_ci(result, **bad)
    with pytest.raises(OptionError):
        paired_bootstrap(result, other, **bad)
    trials = {"n_trials" if k == "n_resamples" else k: v for k, v in bad.items()}
    with pytest.raises(OptionError):
        approximate_randomization(result, other, **trials)
