"""Vocabulary: construction, encoding, decoding, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capeval.errors import FormatError
from capeval_models.data import (
    END_ID,
    NULL_ID,
    SPECIAL_TOKENS,
    START_ID,
    UNK_ID,
    DataFormatError,
    Vocabulary,
    simple_split,
    tokenize_captions,
)

CAPTIONS = [
    "A red square on the left.",
    "a big red square",
    "Two circles, one red and one blue!",
    "a blue circle above a red square",
    "the dog's ball",
]


def test_simple_split():
    assert simple_split("A Dog's BALL, on the  grass.") == "a dog 's ball on the grass"
    assert simple_split("  ") == ""
    assert tokenize_captions(["A red box.", "two  circles"]) == [["a", "red", "box"], ["two", "circles"]]


def test_build_orders_by_count_with_specials_first():
    v = Vocabulary.build(CAPTIONS, min_count=2)
    assert tuple(v.idx_to_word[:4]) == SPECIAL_TOKENS
    assert [v.word_to_idx[t] for t in SPECIAL_TOKENS] == [NULL_ID, START_ID, END_ID, UNK_ID] == [0, 1, 2, 3]
    # a x4, red x4, square x3, ... ties broken alphabetically; words seen once are dropped
    assert v.idx_to_word[4:7] == ["a", "red", "square"]
    assert "dog" not in v and "blue" in v
    words = set(" ".join(map(simple_split, CAPTIONS)).split())
    assert set(v.idx_to_word[4:]) == {w for w in words if _count(w) >= 2}
    assert Vocabulary.build(CAPTIONS, min_count=1).word_to_idx["'s"] > 3


def _count(word):
    return sum(simple_split(c).split().count(word) for c in CAPTIONS)


def test_encode_decode_round_trip():
    v = Vocabulary.build(CAPTIONS)
    for cap in CAPTIONS:
        ids = v.encode(cap)
        assert ids.dtype == np.int32 and ids.shape == (18,)
        assert ids[0] == START_ID
        assert v.decode(ids) == simple_split(cap)
    row = v.encode("a red zebra")
    assert row.tolist()[:5] == [START_ID, v.word_to_idx["a"], v.word_to_idx["red"], UNK_ID, END_ID]
    assert (row[5:] == NULL_ID).all()
    assert v.decode(row) == "a red <UNK>"
    assert v.decode(row, strip_unk=True) == "a red"


def test_encode_truncates_to_max_words():
    v = Vocabulary.build(["a b c d e f g h i j k l m n o p q r s t"])
    long = " ".join("abcdefghijklmnopqrst")
    ids = v.encode(long)
    assert ids.shape == (18,) and ids[-1] == END_ID
    assert v.decode(ids).split() == list("abcdefghijklmnop")
    assert v.encode(long, max_words=3).tolist() == [START_ID, *v.words_to_ids(list("abc")), END_ID]
    unpadded = v.encode("a b", pad=False)
    assert unpadded.tolist() == [START_ID, *v.words_to_ids(["a", "b"]), END_ID]
    batch = v.encode_batch(["a b", "c"], max_words=4)
    assert batch.shape == (2, 6) and batch.dtype == np.int32


def test_decode_stops_at_end_and_skips_null_start():
    v = Vocabulary(list(SPECIAL_TOKENS) + ["a", "cat"])
    assert v.decode([START_ID, 4, NULL_ID, 5, END_ID, 4, 4]) == "a cat"
    assert v.decode(np.array([[START_ID, 5, END_ID], [4, 4, NULL_ID]])) == ["cat", "a a"]
    assert v.decode([]) == ""
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.decode([START_ID, 99])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        v.decode(np.zeros((1, 1, 1), dtype=int))


def test_save_load_json(tmp_path):
    v = Vocabulary.build(CAPTIONS)
    v.save(tmp_path / "vocab.json")
    w = Vocabulary.load(tmp_path / "vocab.json")
    assert w == v and len(w) == len(v) and w.word_to_idx == v.word_to_idx
    obj = json.loads((tmp_path / "vocab.json").read_text())
    assert obj["idx_to_word"][:4] == list(SPECIAL_TOKENS)
    assert not list(tmp_path.glob(".*.tmp"))


def test_cs231n_style_json_and_errors(tmp_path):
    words = list(SPECIAL_TOKENS) + ["a", "man"]
    p = tmp_path / "coco2014_vocab.json"
    p.write_text(json.dumps({"idx_to_word": words, "word_to_idx": {w: i for i, w in enumerate(words)}}))
    assert Vocabulary.load(p).idx_to_word == words
    p.write_text(json.dumps({"idx_to_word": words, "word_to_idx": {"a": 5, "man": 4}}))
    with pytest.raises(DataFormatError, match="disagrees"):
        Vocabulary.load(p)
    p.write_text(json.dumps({"word_to_idx": {}}))
    with pytest.raises(DataFormatError, match="idx_to_word"):
        Vocabulary.load(p)
    p.write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        Vocabulary.load(p)
    with pytest.raises(DataFormatError, match="must start with"):
        Vocabulary(["<START>", "<NULL>", "<END>", "<UNK>"])
    with pytest.raises(DataFormatError, match="twice"):
        Vocabulary(list(SPECIAL_TOKENS) + ["a", "a"])
