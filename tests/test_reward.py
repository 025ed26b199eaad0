"""CiderDReward equals evaluate()'s CIDEr-D with the same document frequencies, for strings and ids."""

import json
from pathlib import Path

import numpy as np
import pytest

import capeval
from capeval import CiderDReward, DocumentFrequencies
from capeval.errors import MissingIdError

CASE = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))["coco300"]
REFS = CASE["tokenized_refs"]
IDS = CASE["ids"][:40]


@pytest.fixture(scope="module")
def train_df():
    return DocumentFrequencies.from_tokenized([REFS[i] for i in CASE["ids"][100:]])


def expected(df, preds_by_id):
    r = capeval.evaluate({i: REFS[i] for i in preds_by_id}, preds_by_id, metrics="cider_d", tokenizer="none", df=df)
    return r.per_item["CIDEr-D"].to_numpy()


def test_string_samples_match_evaluate(train_df):
    reward = CiderDReward({i: REFS[i] for i in IDS}, df=train_df)
    donors = CASE["ids"][200:205] + [IDS[0]]
    samples = [CASE["tokenized_preds"][d] for i in IDS for d in donors] + ["", "zebra unicorn xylophone"]
    keys = [i for i in IDS for _ in donors] + [IDS[1], IDS[2]]
    got = reward.score(samples, keys)
    for j, d in enumerate(donors):
        np.testing.assert_allclose(got[j : len(IDS) * len(donors) : len(donors)], expected(train_df, {i: CASE["tokenized_preds"][d] for i in IDS}), atol=1e-12, rtol=0)
    assert got[-2] == 0.0 and got[-1] == 0.0


def test_token_id_samples_stop_at_end(train_df):
    words = sorted({w for i in IDS for r in REFS[i] for w in r.split()})
    vocab = ["<NULL>", "<START>", "<END>", "<UNK>"] + words
    index = {w: k for k, w in enumerate(vocab)}
    reward = CiderDReward({i: REFS[i] for i in IDS}, df=train_df, vocab=vocab, end_token=2)
    sentences = [REFS[i][0] for i in IDS]
    T = 20
    arr = np.zeros((len(IDS), T), dtype=np.int64)
    for row, s in enumerate(sentences):
        toks = [index[w] for w in s.split()][: T - 2]
        arr[row, : len(toks)] = toks
        arr[row, len(toks)] = 2  # <END>
        arr[row, len(toks) + 1 :] = index["a"]  # garbage after <END> is ignored
    got = reward.score(arr, IDS)
    exp = expected(train_df, {i: " ".join(s.split()[: T - 2]) for i, s in zip(IDS, sentences)})
    np.testing.assert_allclose(got, exp, atol=1e-12, rtol=0)


def test_without_df_uses_the_references_frequencies():
    reward = CiderDReward({i: REFS[i] for i in IDS})
    got = reward.score([CASE["tokenized_preds"][i] for i in IDS], IDS)
    np.testing.assert_allclose(got, expected(None, {i: CASE["tokenized_preds"][i] for i in IDS}), atol=1e-12, rtol=0)


def test_unknown_image_key(train_df):
    reward = CiderDReward({i: REFS[i] for i in IDS}, df=train_df)
    with pytest.raises(MissingIdError, match="nope"):
        reward.score(["a dog"], ["nope"])
