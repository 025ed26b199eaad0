"""DocumentFrequencies: built, saved, reloaded, tamper-checked, imported from legacy pickles."""

import json
import math
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import capeval
from capeval.df import DocumentFrequencies
from capeval.errors import DocumentFrequencyError

CASE = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))["coco300"]
REFS = CASE["tokenized_refs"]


def hand_counts(ref_lists, n=4):
    """Document frequencies the obvious way: a set of n-grams per image."""
    df = defaultdict(float)
    for refs in ref_lists:
        grams = set()
        for r in refs:
            w = r.split()
            grams.update(tuple(w[i : i + k]) for k in range(1, n + 1) for i in range(len(w) - k + 1))
        for g in grams:
            df[g] += 1
    return df


@pytest.fixture(scope="module")
def df():
    return DocumentFrequencies.from_tokenized(list(REFS.values()))


def test_counts_match_a_direct_count(df):
    expected = hand_counts(REFS.values())
    assert len(df) == len(expected)
    for g in list(expected)[:2000]:
        assert df[g] == expected[g]
    assert df[("no", "such", "ngram")] == 0.0
    assert df.ref_len == pytest.approx(math.log(300))


def test_corpus_mode_equals_prebuilt_df(df):
    ids = CASE["ids"]
    a = capeval.evaluate(REFS, CASE["tokenized_preds"], metrics="cider_d", tokenizer="none")
    b = capeval.evaluate(REFS, CASE["tokenized_preds"], metrics="cider_d", tokenizer="none", df=df)
    np.testing.assert_allclose(a.per_item["CIDEr-D"], b.per_item["CIDEr-D"], atol=1e-12, rtol=0)
    assert a.per_item.index.tolist() == ids
    assert b.signature.count(df.short_hash) == 1


def test_save_load_round_trip_and_hash(df, tmp_path):
    path = df.save(tmp_path / "coco300-df.npz")
    loaded = DocumentFrequencies.load(path)
    assert loaded.sha256 == df.sha256 and len(loaded) == len(df) and loaded.ref_len == df.ref_len
    assert loaded[("a", "man")] == df[("a", "man")] > 0
    # the same content built in another order hashes the same
    again = DocumentFrequencies.from_tokenized(list(reversed(list(REFS.values()))))
    assert again.sha256 == df.sha256
    # evaluate() takes the path too
    r = capeval.evaluate(REFS, CASE["tokenized_preds"], metrics="cider_d", tokenizer="none", df=str(path))
    assert r.scores["CIDEr-D"] == pytest.approx(
        capeval.evaluate(REFS, CASE["tokenized_preds"], metrics="cider_d", tokenizer="none").scores["CIDEr-D"], abs=1e-12
    )


def test_tampered_file_is_rejected(df, tmp_path):
    path = df.save(tmp_path / "df.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["df_1"] = arrays["df_1"] + 1
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DocumentFrequencyError, match="hash mismatch"):
        DocumentFrequencies.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DocumentFrequencyError):
        DocumentFrequencies.load(tmp_path / "junk.npz")


def test_vrama91_pickle(tmp_path):
    """coco-val-df.p: a bare {ngram: df} (protocol 2, as Python 2 wrote it); ref_len is log(40504)."""
    counts = dict(hand_counts(REFS.values()))
    path = tmp_path / "coco-val-df.p"
    path.write_bytes(pickle.dumps(counts, protocol=2))
    df = DocumentFrequencies.load(path)
    assert df.ref_len == pytest.approx(math.log(40504))
    assert df[("a",)] == counts[("a",)]


def test_ruotianluo_pickle_matches_corpus_mode(tmp_path):
    counts = hand_counts(REFS.values())  # a defaultdict(float), as prepro_ngrams.py writes
    path = tmp_path / "coco-train-words.p"
    path.write_bytes(pickle.dumps({"document_frequency": counts, "ref_len": 300}, protocol=2))
    df = DocumentFrequencies.load(path)
    a = capeval.evaluate(REFS, CASE["tokenized_preds"], metrics="cider_d", tokenizer="none", df=df)
    assert a.scores["CIDEr-D"] == pytest.approx(CASE["scores"]["CIDEr-D"]["corpus"], abs=1e-9)


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps({"document_frequency": {("a",): Evil()}, "ref_len": 1}))
    with pytest.raises(DocumentFrequencyError, match="refusing"):
        DocumentFrequencies.load(path)
