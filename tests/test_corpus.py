"""The shared encoding: whitespace handling and n-gram counting against direct Python counts."""

from collections import Counter

import numpy as np

from capeval._corpus import _OTHER_WHITESPACE, ScoringCorpus, _single_spaced
from capeval._ngrams import count_ngrams, encode_captions, encode_words


def test_other_whitespace_is_exactly_what_str_split_splits_on():
    expected = {chr(c) for c in range(0x110000) if chr(c).isspace()} - {" "}
    assert set(_OTHER_WHITESPACE) == expected


def test_single_spaced_detection():
    assert _single_spaced(["a b", "", "c"])
    for bad in (["a  b"], [" a"], ["a "], ["a\tb"], ["a\u3000b"], ["a", " b"]):
        assert not _single_spaced(bad), bad


def test_encoding_matches_str_split():
    captions = ["a b c", "", "b  a\tq", "x", "a a a", "\u00e9t\u00e9 caf\u00e9"]
    fast, slow = encode_captions(captions), encode_words([c.split() for c in captions])
    assert [fast.words[i] for i in fast.word_ids] == [w for c in captions for w in c.split()]
    assert fast.offsets.tolist() == slow.offsets.tolist()


def test_ngram_counts_match_a_direct_count():
    rng = np.random.default_rng(0)
    captions = [" ".join(rng.choice(list("abcde"), size=rng.integers(0, 9))) for _ in range(200)]
    tok = encode_captions(captions)
    grams = count_ngrams(tok, 4)
    got = Counter()
    for g, c, k in zip(grams.gram, grams.caption, grams.count):
        words = grams.gram_words(tok, np.array([g]))[0]
        got[(int(c), tuple(tok.words[w] for w in words if w >= 0))] = int(k)
    expected = Counter()
    for c, text in enumerate(captions):
        w = text.split()
        for n in range(1, 5):
            for i in range(len(w) - n + 1):
                expected[(c, tuple(w[i : i + n]))] += 1
    assert got == expected


def test_rouge_tokens_keep_the_empty_token():
    corpus = ScoringCorpus(["", "a b"], [["x"], ["a"]])
    rt = corpus.rouge_tokens
    assert rt.lengths.tolist() == [1, 1, 2, 1]  # "" -> [""]
