"""DocumentFrequencies: built, saved, reloaded, tamper-checked, imported from legacy pickles."""

import json
import math
import pickle
import re
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


# -- issue 18: damaged files are DocumentFrequencyErrors naming the file --------------------------
def rewrite(path, target, **changes):
    """A copy of the .npz at `path` with arrays replaced (`meta` given as a dict)."""
    with np.load(path) as data:
        arrays = dict(data)
    for name, value in changes.items():
        arrays[name] = np.asarray(json.dumps(value)) if name == "meta" else value
    np.savez(target, **arrays)
    return target


def test_truncated_file(df, tmp_path):
    good = df.save(tmp_path / "good.npz")
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) - 100):
        trunc = tmp_path / "trunc.npz"
        trunc.write_bytes(data[:cut])
        with pytest.raises(DocumentFrequencyError, match=r"trunc\.npz: not a valid capeval document-frequency file"):
            DocumentFrequencies.load(trunc)


def test_crc_error(df, tmp_path):
    """A flipped byte inside a compressed member: zipfile's CRC check (or zlib) fails on read."""
    good = df.save(tmp_path / "good.npz")
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "crc.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(DocumentFrequencyError, match=r"crc\.npz: not a valid .*(CRC|Error -3|BadZipFile)"):
        DocumentFrequencies.load(bad)


def test_damaged_zip_headers(df, tmp_path):
    """Found by tests/test_properties.py: a flipped compression-method field raised NotImplementedError."""
    data = bytearray(df.save(tmp_path / "good.npz").read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last member's central-directory entry
    for offset, value in [(10, 0x63), (8, 0x01)]:  # compression method 99 (unsupported); the "encrypted" flag
        bad = bytearray(data)
        bad[central + offset] = value
        (tmp_path / "bad.npz").write_bytes(bytes(bad))
        with pytest.raises(DocumentFrequencyError, match=r"bad\.npz: not a valid capeval document-frequency file"):
            DocumentFrequencies.load(tmp_path / "bad.npz")


def crafted(df, path, **arrays):
    """A file whose meta hash is recomputed over its (malformed) arrays, as an attacker would."""
    from capeval.df import _content_hash

    meta = df.meta()
    n = meta["n"]
    grams = [arrays.get(f"grams_{k}", df.grams[k - 1]) for k in range(1, n + 1)]
    counts = [arrays.get(f"df_{k}", df.counts[k - 1]) for k in range(1, n + 1)]
    words = arrays.get("words", np.asarray(df.words))
    try:
        meta["sha256"] = _content_hash(n, df.ref_len, words.tolist(), grams, counts)
    except (TypeError, ValueError):  # arrays no hash can be computed over: the original hash stays
        pass
    base = df.save(path.with_name("base.npz"))
    return rewrite(base, path, meta=meta, **arrays)


@pytest.mark.parametrize(
    "arrays, why",
    [
        ({"grams_2": np.zeros((5, 3), np.int32), "df_2": np.ones(5)}, r"'grams_2' must be a 2-D integer array with 2 columns"),
        ({"grams_1": np.full((2, 1), 10**6, np.int32), "df_1": np.ones(2)}, r"'grams_1' holds word ids outside"),
        ({"grams_1": np.full((2, 1), -1, np.int32), "df_1": np.ones(2)}, r"'grams_1' holds word ids outside"),
        ({"df_3": np.ones(3)}, r"'df_3' must be a 1-D float array as long as 'grams_3'"),
        ({"df_1": np.array(["x"])}, r"'df_1' must be a 1-D float array"),
        ({"words": np.arange(3)}, r"'words' must be a 1-D array of strings"),
    ],
)
def test_crafted_arrays_with_a_matching_hash(df, tmp_path, arrays, why):
    """Before the fix these raised ValueError (cannot reshape) or IndexError, or were accepted."""
    path = crafted(df, tmp_path / "crafted.npz", **arrays)
    with pytest.raises(DocumentFrequencyError, match=r"crafted\.npz: .*" + why):
        DocumentFrequencies.load(path)


def test_crafted_meta(df, tmp_path):
    good = df.save(tmp_path / "good.npz")
    for meta, why in [(["a list"], "not a JSON object"), ({**df.meta(), "n": 10**9}, "n must be an integer"), ({**df.meta(), "ref_len": None}, "'ref_len'")]:
        with pytest.raises(DocumentFrequencyError, match=r"bad\.npz: .*" + re.escape(why)):
            DocumentFrequencies.load(rewrite(good, tmp_path / "bad.npz", meta=meta))
    with pytest.raises(DocumentFrequencyError, match=r"bad\.npz: .*array 'df_4' is missing"):
        with np.load(good) as data:
            arrays = {k: v for k, v in data.items() if k != "df_4"}
        np.savez(tmp_path / "bad.npz", **arrays)
        DocumentFrequencies.load(tmp_path / "bad.npz")


def test_pickle_refusal_names_the_file(tmp_path):
    path = tmp_path / "evil-df.p"
    path.write_bytes(pickle.dumps({"document_frequency": {("a",): Path("x")}, "ref_len": 1}))
    with pytest.raises(DocumentFrequencyError, match=r"evil-df\.p: refusing to unpickle pathlib"):
        DocumentFrequencies.load(path)


# -- issue 18: tokenizer and n recorded; a mismatch is refused -------------------------------------
RAW_REFS = {i: refs for i, refs in list(CASE["refs"].items())[:120]}
RAW_PREDS = {i: CASE["preds"][i] for i in RAW_REFS}


def test_tokenizer_n_and_version_are_recorded(tmp_path):
    df = DocumentFrequencies.from_references(RAW_REFS, tokenizer="ptb", n=3)
    loaded = DocumentFrequencies.load(df.save(tmp_path / "df.npz"))
    meta = loaded.meta()
    assert (meta["tokenizer"], meta["n"], meta["capeval_version"], meta["version"]) == ("ptb", 3, capeval.__version__, 2)
    assert loaded.signature == f"corpus@{df.short_hash}"


def test_tokenizer_mismatch_is_refused_unless_allowed(tmp_path):
    """Issue 18.5: a df built on untokenized text changes ptb CIDEr-D silently (0.8958 vs 0.8856 there)."""
    from capeval.errors import DocumentFrequencyMismatchError

    path = DocumentFrequencies.from_references(RAW_REFS, tokenizer="none").save(tmp_path / "none-df.npz")
    with pytest.raises(DocumentFrequencyMismatchError, match=r"none-df\.npz: document frequencies built with tokenizer 'none', scoring uses 'ptb'.*allow_mismatch=True"):
        DocumentFrequencies.load(path, tokenizer="ptb", n=4)
    with pytest.raises(DocumentFrequencyMismatchError):
        DocumentFrequencies.coerce(str(path), tokenizer="ptb")
    loaded = DocumentFrequencies.coerce(path, tokenizer="ptb", allow_mismatch=True)
    ptb = DocumentFrequencies.from_references(RAW_REFS, tokenizer="ptb")
    with pytest.raises(DocumentFrequencyMismatchError):  # evaluate() checks too (the API path)
        capeval.evaluate(RAW_REFS, RAW_PREDS, metrics="cider_d", df=loaded)
    with_none = capeval.evaluate(RAW_REFS, RAW_PREDS, metrics="cider_d", df=loaded, allow_df_mismatch=True).scores["CIDEr-D"]
    with_ptb = capeval.evaluate(RAW_REFS, RAW_PREDS, metrics="cider_d", df=ptb).scores["CIDEr-D"]
    corpus = capeval.evaluate(RAW_REFS, RAW_PREDS, metrics="cider_d").scores["CIDEr-D"]
    assert with_ptb == pytest.approx(corpus, abs=1e-12)  # the right df gives the corpus number ...
    assert abs(with_none - with_ptb) > 1e-3  # ... the wrong one another: why it is refused


def test_n_below_the_scoring_n_is_refused_above_is_equal(tmp_path):
    from capeval.errors import DocumentFrequencyMismatchError

    df2 = DocumentFrequencies.from_references(RAW_REFS, n=2)
    with pytest.raises(DocumentFrequencyMismatchError, match=r"built with n=2, scoring uses n=4"):
        df2.check_compatible("ptb", 4)
    df4 = DocumentFrequencies.from_references(RAW_REFS, n=4)
    df4.check_compatible("ptb", 2)  # k-gram counts do not depend on the largest order
    a = capeval.evaluate(RAW_REFS, RAW_PREDS, metrics="cider_d", n=2, df=df2).per_item["CIDEr-D"]
    b = capeval.evaluate(RAW_REFS, RAW_PREDS, metrics="cider_d", n=2, df=df4).per_item["CIDEr-D"]
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_files_without_a_tokenizer_say_so_in_the_signature(df, tmp_path):
    """Format-1 files and legacy pickles record no tokenizer: loaded, not checkable, flagged."""
    v2 = df.save(tmp_path / "v2.npz")
    meta = {k: v for k, v in df.meta().items() if k not in ("tokenizer", "capeval_version")}
    v1 = rewrite(v2, tmp_path / "v1.npz", meta={**meta, "version": 1})
    old = DocumentFrequencies.load(v1, tokenizer="ptb", n=4)
    assert old.tokenizer is None and old.sha256 == df.sha256
    assert old.signature == f"corpus@{df.short_hash}+tok:unknown"
    pickled = tmp_path / "coco-train-words.p"
    pickled.write_bytes(pickle.dumps({"document_frequency": dict(hand_counts(REFS.values())), "ref_len": 300}, protocol=2))
    legacy = DocumentFrequencies.load(pickled)
    assert legacy.signature.endswith("+tok:unknown") and legacy.meta()["tokenizer"] is None
    result = capeval.evaluate(REFS, CASE["tokenized_preds"], metrics="cider_d", tokenizer="none", df=legacy)
    assert f"df:coco-train-words.p@{legacy.short_hash}+tok:unknown" in result.signature
