"""capeval's scores equal pycocoevalcap 1.2's (golden fixtures from tests/fixtures/make_golden.py)."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import capeval
from benchmarks import datasets
from capeval.df import DocumentFrequencies

FIXTURES = Path(__file__).parent / "fixtures"
CASES = json.loads((FIXTURES / "golden_cases.json").read_text(encoding="utf-8"))
COCO_KEYS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr-D", "CIDEr"]
TOL = 1e-9


def assert_scores(result, golden, keys):
    for key in keys:
        expected = golden[key]
        assert result.scores[key] == pytest.approx(expected["corpus"], abs=TOL), key
        np.testing.assert_allclose(result.per_item[key].to_numpy(), expected["per_item"], rtol=0, atol=TOL, err_msg=key)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pretokenized_matches_pycocoevalcap(name):
    case = CASES[name]
    result = capeval.evaluate(
        case["tokenized_refs"], case["tokenized_preds"], metrics=["bleu", "rouge_l", "cider_d", "cider"], tokenizer="none"
    )
    assert list(result.per_item.index) == case["ids"]
    assert_scores(result, case["scores"], COCO_KEYS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_raw_captions_match_full_pipeline(name):
    case = CASES[name]
    result = capeval.evaluate(case["refs"], case["preds"], metrics=["bleu", "rouge_l", "cider_d", "cider"])
    assert_scores(result, case["scores"], COCO_KEYS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_precomputed_document_frequencies(name):
    case = CASES[name]
    df = DocumentFrequencies.from_tokenized(case["train_references"])
    result = capeval.evaluate(case["tokenized_refs"], case["tokenized_preds"], metrics="cider_d cider", tokenizer="none", df=df)
    golden = case["scores"]
    for ours, theirs in [("CIDEr-D", "CIDEr-D@train"), ("CIDEr", "CIDEr@train")]:
        assert result.scores[ours] == pytest.approx(golden[theirs]["corpus"], abs=TOL)
        np.testing.assert_allclose(result.per_item[ours].to_numpy(), golden[theirs]["per_item"], rtol=0, atol=TOL)


def test_nlgeval_published_numbers():
    """The nlg-eval README's published pycocoevalcap numbers for its two-sentence example."""
    case = CASES["nlgeval"]
    result = capeval.evaluate(case["refs"], case["preds"], metrics="bleu rouge_l cider_d")
    published = {"Bleu_1": 0.55, "Bleu_2": 0.428174, "Bleu_3": 0.284043, "Bleu_4": 0.201143, "ROUGE_L": 0.522104, "CIDEr-D": 1.242192}
    for key, value in published.items():
        assert result.scores[key] == pytest.approx(value, abs=5e-7), key


def test_single_image_corpus_cider_is_zero_but_df_rescues_it():
    """pycocoevalcap's CIDEr-D of one image is 0 (log(1) idf); a precomputed df gives a real score."""
    case = CASES["one_image"]
    alone = capeval.evaluate(case["refs"], case["preds"], metrics="cider_d")
    assert alone.scores["CIDEr-D"] == case["scores"]["CIDEr-D"]["corpus"] == 0.0
    coco = CASES["coco300"]
    df = DocumentFrequencies.from_tokenized(list(coco["tokenized_refs"].values()))
    rescued = capeval.evaluate(case["refs"], case["preds"], metrics="cider_d", df=df)
    assert rescued.scores["CIDEr-D"] > 0.5


def test_score_does_not_depend_on_batch_with_precomputed_df():
    coco = CASES["coco300"]
    df = DocumentFrequencies.from_tokenized(list(coco["tokenized_refs"].values()))
    ids = coco["ids"][:40]
    refs = {i: coco["tokenized_refs"][i] for i in ids}
    preds = {i: coco["tokenized_preds"][i] for i in ids}
    together = capeval.evaluate(refs, preds, metrics="cider_d", df=df, tokenizer="none").per_item["CIDEr-D"]
    for i in ids[:5]:
        alone = capeval.evaluate({i: refs[i]}, {i: preds[i]}, metrics="cider_d", df=df, tokenizer="none")
        assert alone.per_item["CIDEr-D"].iloc[0] == pytest.approx(together[i], abs=1e-12)


SHARED = json.loads(gzip.open(FIXTURES / "golden_shared.json.gz", "rt", encoding="utf-8").read())
LOADERS = {"coco_loo": datasets.coco_leave_one_out, "nice_retrieval": datasets.nice_retrieval, "coco_fakecap": datasets.coco_fakecap}


@pytest.mark.skipif(not datasets.available(), reason="../shared/data (COCO subset, NICE val) is not present")
@pytest.mark.parametrize("name", sorted(LOADERS))
def test_shared_data_matches_pycocoevalcap(name):
    refs, preds = LOADERS[name]()
    result = capeval.evaluate(refs, preds, metrics=["bleu", "rouge_l", "cider_d", "cider"])
    golden = SHARED[name]
    assert [str(i) for i in result.per_item.index] == golden["ids"]
    assert_scores(result, golden["scores"], COCO_KEYS)
