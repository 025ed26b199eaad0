"""The shared encoding: whitespace handling and n-gram counting against direct Python counts."""

from collections import Counter

import numpy as np

from capeval._corpus import ScoringCorpus, _single_spaced
from capeval._ngrams import OTHER_WHITESPACE, _dense_ranks, count_ngrams, encode_captions, encode_words


def test_other_whitespace_is_exactly_what_str_split_splits_on():
    expected = {chr(c) for c in range(0x110000) if chr(c).isspace()} - {" "}
    assert set(OTHER_WHITESPACE) == expected


def test_single_spaced_detection():
    assert _single_spaced(["a b", "", "c"])
    assert encode_captions(["a b", "", "c"]).single_spaced
    for bad in (["a  b"], [" a"], ["a "], ["a\tb"], ["a\u3000b"], ["a", " b"], ["a", " ", "b"], ["", " "]):
        assert not _single_spaced(bad), bad
        assert encode_captions(bad).single_spaced in (False, None), bad  # None: the encoder's slow path


def test_encoding_matches_str_split():
    captions = ["a b c", "", "b  a\tq", "x", "a a a", "\u00e9t\u00e9 caf\u00e9"]
    fast, slow = encode_captions(captions), encode_words([c.split() for c in captions])
    assert [fast.words[i] for i in fast.word_ids] == [w for c in captions for w in c.split()]
    assert fast.offsets.tolist() == slow.offsets.tolist()


def assert_encodes_like_str_split(captions):
    tok = encode_captions(captions)
    assert len(set(tok.words)) == len(tok.words)  # one id per distinct word
    assert [tok.words[i] for i in tok.word_ids] == [w for c in captions for w in c.split()]
    assert tok.lengths.tolist() == [len(c.split()) for c in captions]


def test_byte_keys_cover_every_word_length_and_prefix():
    # 8 bytes is one key; longer words extend it 8 bytes at a time; beyond 64 bytes a dict takes over
    stems = ["sandwich", "sandwiche", "sandwiches", "s" * 15, "s" * 16, "s" * 17, "x" * 63, "x" * 64, "x" * 65, "x" * 200]
    captions = [" ".join(stems), " ".join(reversed(stems)), "", "sandwich sandwich", "s" * 8, "  a   b  ", " ", "a"]
    assert_encodes_like_str_split(captions)


def test_byte_keys_with_unicode_and_odd_characters():
    captions = [
        "caf\u00e9 cafe caf\u00e9s \u00e9t\u00e9",
        "\u732b\u304c \u732b\u304c\u5ea7\u3063\u3066\u3044\u308b \U0001F600\U0001F600\U0001F600",  # 3- and 4-byte characters
        "\ud800 lone \udfff surrogates",
        "\x01ctrl\x7f del",  # control characters that str.split() keeps inside words
        "tab\there nbsp\u00a0here ideographic\u3000space \x1cfile",  # other whitespace
        "nul\x00byte",
    ]
    assert_encodes_like_str_split(captions)
    for caption in captions:  # each alone: the fast path and the fallbacks
        assert_encodes_like_str_split([caption, "a b"])


def test_byte_keys_on_a_large_random_vocabulary():
    rng = np.random.default_rng(3)
    alphabet = np.array(list("abcdefghij\u00e9\u4e00"))
    vocab = np.array(["".join(alphabet[rng.integers(0, len(alphabet), size=rng.integers(1, 20))]) for _ in range(30_000)])
    captions = [" ".join(vocab[rng.integers(0, len(vocab), size=rng.integers(0, 15))]) for _ in range(5_000)]
    assert_encodes_like_str_split(captions)


def test_dense_ranks_equal_numpy_unique():
    rng = np.random.default_rng(5)
    for distinct, size in ((1, 10), (3, 5000), (50_000, 200_000), (200_000, 300_000)):
        pool = rng.integers(0, 2**64, size=distinct, dtype=np.uint64)
        keys = pool[rng.integers(0, distinct, size=size)]
        ranks, n_distinct = _dense_ranks(keys)
        unique, inverse = np.unique(keys, return_inverse=True)
        assert n_distinct == len(unique)
        assert np.array_equal(ranks, inverse)


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


def _direct_ngrams(words, n):
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def test_ngram_counts_of_long_captions_match_a_direct_count():
    # counts above 255 and above 65535 (the count array narrows to the longest caption)
    captions = ["a " * 300 + "b", "a a b", " ".join(["a"] * 70000), ""]
    tok = encode_captions(captions)
    grams = count_ngrams(tok, 3)
    got = {}
    for g, c, k in zip(grams.gram.tolist(), grams.caption.tolist(), grams.count.tolist()):
        words = grams.gram_words(tok, np.array([g]))[0]
        got[(c, tuple(tok.words[w] for w in words if w >= 0))] = k
    expected = {(c, g): k for c, text in enumerate(captions) for g, k in _direct_ngrams(text.split(), 3).items()}
    assert got == expected


def _random_corpus(seed):
    rng = np.random.default_rng(seed)
    words = list("abcd")

    def caption():
        return " ".join(rng.choice(words, size=rng.integers(0, 7)))

    hyps = [caption() for _ in range(60)]
    refs = [[caption() for _ in range(rng.integers(1, 6))] for _ in hyps]
    return hyps, refs


def _gram_words(corpus, grams, g):
    return tuple(corpus.tokens.words[w] for w in grams.gram_words(corpus.tokens, np.array([g]))[0] if w >= 0)


def test_document_frequencies_match_a_direct_count():
    for seed in range(3):
        hyps, refs = _random_corpus(seed)
        corpus = ScoringCorpus(hyps, refs)
        grams = corpus.ngrams(4)
        per_item = [set().union(*(_direct_ngrams(r.split(), 4) for r in rs)) for rs in refs]
        expected = [sum(_gram_words(corpus, grams, g) in s for s in per_item) for g in range(grams.n_grams)]
        assert corpus.document_frequencies(4).tolist() == expected


def test_hypothesis_pairs_are_the_reference_entries_of_the_same_ngram_and_item():
    for seed in range(3):
        hyps, refs = _random_corpus(seed)
        corpus = ScoringCorpus(hyps, refs)
        grams = corpus.ngrams(4)
        pairs = corpus.hypothesis_pairs(4)
        got = sorted(zip(pairs.hyp_entry[pairs.owner].tolist(), pairs.ref_entry.tolist()))
        item_of = corpus.caption_item[grams.caption].tolist()
        is_hyp = corpus.caption_is_hyp[grams.caption].tolist()
        gram = grams.gram.tolist()
        expected = sorted(
            (h, r) for h in range(len(gram)) if is_hyp[h] for r in range(len(gram)) if not is_hyp[r] and gram[r] == gram[h] and item_of[r] == item_of[h]
        )
        assert got == expected
        assert pairs.hyp_entry.tolist() == [e for e in range(len(gram)) if is_hyp[e]]
