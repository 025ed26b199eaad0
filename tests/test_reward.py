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


def test_a_50k_word_model_vocabulary(train_df):
    """Token ids of a 50,000-word vocabulary (beyond 2**15): the same numbers as evaluate()."""
    ref_words = sorted({w for i in IDS for r in REFS[i] for w in r.split()})
    vocab = ["<NULL>", "<START>", "<END>"] + [f"filler{k}" for k in range(50_000 - 3 - len(ref_words))] + ref_words
    assert len(vocab) == 50_000
    index = {w: k for k, w in enumerate(vocab)}
    reward = CiderDReward({i: REFS[i] for i in IDS}, df=train_df, vocab=vocab, end_token=2)
    sentences = [CASE["tokenized_preds"][i].split()[:15] for i in IDS]
    arr = np.zeros((len(IDS), 16), dtype=np.int64)
    for row, words in enumerate(sentences):
        arr[row, : len(words)] = [index.get(w, index["filler7"]) for w in words]
        arr[row, len(words)] = 2
    expect = expected(train_df, {i: " ".join(w if w in index else "filler7" for w in s) for i, s in zip(IDS, sentences)})
    np.testing.assert_allclose(reward.score(arr, IDS), expect, atol=1e-12, rtol=0)


def test_unseen_words_do_not_accumulate(train_df):
    """Issue 18: after ~32,700 new words every score() raised. 80 batches of 50 x 10 random new words
    (40,000 words) now score, keep the vocabulary at its size, and stay equal to evaluate()."""
    reward = CiderDReward({i: REFS[i] for i in IDS}, df=train_df)
    size = len(reward.word_id)
    rng = np.random.default_rng(0)
    keys = [IDS[k % len(IDS)] for k in range(50)]
    for batch in range(80):
        samples = [" ".join(f"new{batch}x{rng.integers(1 << 40)}" for _ in range(10)) for _ in range(50)]
        assert (reward.score(samples, keys) == 0).all()
    assert len(reward.word_id) == size
    mixed = [CASE["tokenized_preds"][i] + " unseenword another" for i in IDS]
    np.testing.assert_allclose(reward.score(mixed, IDS), expected(train_df, dict(zip(IDS, mixed))), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "samples, error, match",
    [
        ([None], "InvalidCaptionError", "sample 0"),
        (["a dog", 3], "InvalidCaptionError", "sample 1"),
        (np.zeros((1, 4)), "InputError", "integer array"),
        (np.zeros(4, dtype=np.int64), "InputError", r"\(B, T\)"),
        (np.full((1, 3), 10**6), "InputError", "outside the vocabulary"),
    ],
)
def test_bad_samples_are_typed_errors(train_df, samples, error, match):
    import capeval.errors as errors

    reward = CiderDReward({i: REFS[i] for i in IDS}, df=train_df, vocab=["<NULL>", "a", "dog"])
    with pytest.raises(getattr(errors, error), match=match):
        reward.score(samples, [IDS[0]] * len(samples))


@pytest.mark.parametrize("bad", [dict(sigma=float("nan")), dict(sigma=0), dict(n=0), dict(tokenizer="moses")])
def test_bad_options_are_typed_errors(bad):
    from capeval.errors import OptionError

    with pytest.raises(OptionError):
        CiderDReward({i: REFS[i] for i in IDS}, **bad)


def test_old_import_paths():
    from capeval.cider import CiderDReward as from_cider
    from capeval.reward import CiderDReward as from_reward

    assert from_cider is from_reward is CiderDReward
