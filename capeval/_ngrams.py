"""Vectorized n-gram encoding shared by BLEU and CIDEr.

A corpus of tokenized captions becomes integer arrays once:

* word ids (dense, in order of first appearance) and caption offsets;
* for every n-gram order 1..n, a dense n-gram id per start position, built level by level
  (an n-gram id is the id of the pair (its (n-1)-gram prefix id, its last word));
* the unique (n-gram, caption) pairs with their counts, sorted by n-gram then caption.

Sorting packed int64 keys (``key * n_positions + position``) with ``np.sort`` is the one heavy step;
since positions follow caption order, captions come out ascending inside every n-gram group, which
is what the metrics' segment reductions rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, count

import numpy as np

_INT64_LIMIT = 2**62


@dataclass
class TokenizedCorpus:
    """Captions as word ids: ``word_ids[offsets[c]:offsets[c + 1]]`` are caption ``c``'s words."""

    word_ids: np.ndarray  # (P,) int64
    offsets: np.ndarray  # (C + 1,) int64
    words: list[str]  # id -> word

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_captions(self) -> int:
        return len(self.offsets) - 1


def encode_words(token_lists: list[list[str]], vocab: dict[str, int] | None = None) -> TokenizedCorpus:
    """Map token lists to dense word ids. ``vocab`` (word -> id) is extended in place if given."""
    flat = list(chain.from_iterable(token_lists))
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    if vocab is None:
        vocab = {w: i for i, w in enumerate(dict.fromkeys(flat))}
    else:
        for w in dict.fromkeys(flat):
            if w not in vocab:
                vocab[w] = len(vocab)
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    words = [""] * len(vocab)
    for w, i in vocab.items():
        words[i] = w
    return TokenizedCorpus(ids, offsets, words)


_SENTINEL = "\x00"


def encode_captions(captions: list[str]) -> TokenizedCorpus:
    """Word ids of ``str.split()`` tokens of every caption, with one C-level split of the whole text.

    Captions are joined around a NUL sentinel token whose positions give the caption boundaries."""
    joined = f" {_SENTINEL} ".join(captions)
    if _SENTINEL in "".join(captions):  # a NUL inside a caption: split them one by one
        return encode_words([c.split() for c in captions])
    flat = joined.split()
    # one C-level pass: each word's id is the position of its first occurrence, made dense below
    first_seen: dict[str, int] = {}
    ids = np.fromiter(map(first_seen.setdefault, flat, count()), dtype=np.int64, count=len(flat))
    firsts = np.flatnonzero(ids == np.arange(len(ids)))
    dense = np.zeros(len(ids), dtype=np.int64)
    dense[firsts] = np.arange(len(firsts))
    ids = dense[ids]
    vocab = dict(zip(first_seen, range(len(firsts))))  # dicts keep insertion (= first-seen) order
    sentinel = vocab.pop(_SENTINEL, None)
    if sentinel is None:  # a single caption
        bounds = np.zeros(0, dtype=np.int64)
    else:
        bounds = np.flatnonzero(ids == sentinel)
        keep = np.ones(len(ids), dtype=bool)
        keep[bounds] = False
        ids = ids[keep]
        ids[ids > sentinel] -= 1  # close the gap the sentinel's id leaves
        vocab = {w: (i - 1 if i > sentinel else i) for w, i in vocab.items()}
    ends = np.append(bounds - np.arange(len(bounds)), len(ids))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    words = [""] * len(vocab)
    for w, i in vocab.items():
        words[i] = w
    return TokenizedCorpus(ids, offsets, words)


@dataclass
class NgramCounts:
    """Unique (n-gram, caption) pairs of a corpus, sorted by n-gram id then caption.

    N-gram ids are global: order ``n`` uses ids ``order_start[n-1] <= id < order_start[n]``.
    """

    gram: np.ndarray  # (E,) int32 global n-gram id (int64 for astronomically large corpora)
    caption: np.ndarray  # (E,) int32 caption index
    count: np.ndarray  # (E,) int32 occurrences of the n-gram in the caption
    order: np.ndarray  # (E,) int8 n-gram order minus one (0..n-1)
    order_start: np.ndarray  # (n + 1,) first global id of each order
    first_position: np.ndarray  # (G,) a word position where each n-gram starts (to recover its words)

    @property
    def n_grams(self) -> int:
        return int(self.order_start[-1])

    def gram_words(self, corpus: TokenizedCorpus, gram_ids: np.ndarray) -> np.ndarray:
        """Word ids of the given n-grams as an (len(gram_ids), n) matrix, -1 padded."""
        n_max = len(self.order_start) - 1
        orders = np.searchsorted(self.order_start, gram_ids, side="right")  # 1..n
        start = self.first_position[gram_ids]
        out = np.full((len(gram_ids), n_max), -1, dtype=np.int64)
        for k in range(n_max):
            has = orders > k
            out[has, k] = corpus.word_ids[start[has] + k]
        return out


def count_ngrams(corpus: TokenizedCorpus, n: int = 4) -> NgramCounts:
    """Count every n-gram of orders 1..n in every caption (see the module docstring)."""
    ids = corpus.word_ids
    n_pos = len(ids)
    n_words = max(len(corpus.words), 1)
    lengths = corpus.lengths
    # entry arrays in 32 bits where they fit: half the memory (and memory traffic) of int64
    small = np.int32 if max(n_pos * n, corpus.n_captions) < 2**31 else np.int64
    caption_of_pos = np.repeat(np.arange(corpus.n_captions, dtype=small), lengths)
    # number of words from each position to the end of its caption (inclusive)
    remaining = (np.repeat(corpus.offsets[1:], lengths) - np.arange(n_pos, dtype=np.int64)).astype(small)

    capacity = int(np.maximum(lengths[None, :] - np.arange(n)[:, None], 0).sum())  # all occurrences
    gram_out = np.empty(capacity, dtype=small)
    cap_out = np.empty(capacity, dtype=small)
    count_out = np.empty(capacity, dtype=small)
    order_out = np.empty(capacity, dtype=np.int8)
    filled = 0
    prefix_id = np.zeros(n_pos, dtype=small)  # id of the (k-1)-gram starting at each position
    n_prefix = 1
    first_parts = []
    order_start = [0]
    for k in range(1, n + 1):
        starts = np.arange(n_pos, dtype=np.int64) if k == 1 else np.flatnonzero(remaining >= k)
        if k == 1:
            key = ids.copy()
        else:
            key = prefix_id[starts].astype(np.int64)
            key *= n_words
            key += ids[starts + k - 1]
        shift = max(n_pos, 1).bit_length()
        if n_prefix * n_words < _INT64_LIMIT >> shift:
            key <<= shift  # pack (key, position) and sort once: positions ascend within a key
            key |= starts
            key.sort()
            pos_sorted = key & ((1 << shift) - 1)
            key >>= shift
            key_sorted = key
        else:  # astronomically large corpus: a (slower) stable sort keeps positions ascending per key
            order = np.argsort(key, kind="stable")
            key_sorted, pos_sorted = key[order], starts[order]
        del starts
        new_gram = segment_starts(key_sorted)
        del key_sorted, key
        dense = np.cumsum(new_gram, dtype=small)
        dense -= 1
        n_k = int(dense[-1]) + 1 if len(dense) else 0
        if k < n:  # the next order extends these n-grams by one word
            prefix_id[pos_sorted] = dense
        n_prefix = max(n_k, 1)

        first_parts.append(pos_sorted[new_gram])
        cap_sorted = caption_of_pos[pos_sorted]
        del pos_sorted
        new_pair = new_gram  # n-gram starts, extended in place with caption starts
        new_pair[1:] |= cap_sorted[1:] != cap_sorted[:-1]
        pair_idx = np.flatnonzero(new_pair)
        m = len(pair_idx)
        end = filled + m
        np.add(dense[pair_idx], order_start[-1], out=gram_out[filled:end], casting="unsafe")
        np.take(cap_sorted, pair_idx, out=cap_out[filled:end])
        np.subtract(np.append(pair_idx[1:], len(cap_sorted)), pair_idx, out=count_out[filled:end], casting="unsafe")
        order_out[filled:end] = k - 1
        filled = end
        order_start.append(order_start[-1] + n_k)
    return NgramCounts(
        gram=gram_out[:filled],
        caption=cap_out[:filled],
        count=count_out[:filled],
        order=order_out[:filled],
        order_start=np.asarray(order_start, dtype=np.int64),
        first_position=np.concatenate(first_parts),
    )


def segment_starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal consecutive key tuples."""
    size = len(keys[0])
    start = np.empty(size, dtype=bool)
    start[:1] = True
    start[1:] = False
    for key in keys:
        start[1:] |= key[1:] != key[:-1]
    return start
