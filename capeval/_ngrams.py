"""Vectorized n-gram encoding shared by BLEU and CIDEr.

A corpus of tokenized captions becomes integer arrays once:

* dense word ids (from UTF-8 byte keys, see ``encode_captions``) and caption offsets;
* for every n-gram order 1..n, a dense n-gram id per start position, built level by level
  (an n-gram id is the id of the pair (its (n-1)-gram prefix id, its last word));
* the unique (n-gram, caption) pairs with their counts, sorted by n-gram then caption.

Sorting packed int64 keys (``key * n_positions + position``) with ``np.sort`` is the one heavy step;
since positions follow caption order, captions come out ascending inside every n-gram group, which
is what the metrics' segment reductions rely on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, count

import numpy as np

_INT64_LIMIT = 2**62


def packs_exactly(base: int, width: int) -> bool:
    """Whether rows of ``width`` word ids below ``base - 1`` pack into one exact int64 key."""
    return base**width < _INT64_LIMIT


def pack_ngram_rows(rows: np.ndarray, base: int) -> np.ndarray:
    """One int64 key per row of word ids (an n-gram): the ids + 1 as digits in ``base`` (``len(words) +
    1``), so keys are exact (see :func:`packs_exactly`), sort like the rows, and n-grams of different
    orders never collide. The one key packing of document-frequency tables."""
    rows = np.asarray(rows)
    keys = np.zeros(len(rows), dtype=np.int64)
    for j in range(rows.shape[1] if rows.ndim == 2 else 0):
        keys *= base
        keys += rows[:, j].astype(np.int64) + 1
    return keys


def find_in_sorted(table: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(hit, pos)``: whether each key is in ``table`` (sorted, unique) and where (valid where hit).
    Binary search, which suits one-off lookups in tables much larger than the queries (memory-mapped
    ones included); :func:`find_sorted` is faster for many queries into one table."""
    if not len(table):
        return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.intp)
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return np.asarray(table[pos]) == keys, pos


def map_vocabulary(words: Sequence[str], index: Mapping[str, int]) -> np.ndarray:
    """Ids in another vocabulary (``index``) of ``words``, -1 where absent, plus a trailing -1 so that
    a -1 padded matrix of ids into ``words`` maps through it with its padding kept."""
    return np.array([index.get(w, -1) for w in words] + [-1], dtype=np.int64)


def unpack_ngram_keys(keys: np.ndarray, width: int, base: int, dtype=np.int64) -> np.ndarray:
    """The rows of word ids that :func:`pack_ngram_rows` packed into ``keys``."""
    out = np.empty((len(keys), width), dtype=dtype)
    keys = np.asarray(keys, dtype=np.int64)
    for j in range(width - 1, -1, -1):
        keys, digit = np.divmod(keys, base)
        out[:, j] = digit - 1
    return out


@dataclass
class TokenizedCorpus:
    """Captions as word ids: ``word_ids[offsets[c]:offsets[c + 1]]`` are caption ``c``'s words."""

    word_ids: np.ndarray  # (P,) int64
    offsets: np.ndarray  # (C + 1,) int64
    words: list[str]  # id -> word
    single_spaced: bool | None = None  # words separated by exactly one space (None: not checked)

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


# whitespace str.split() splits on besides " " (all c with c.isspace(); tests/test_corpus.py checks)
OTHER_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_KEY_BYTES = 8  # words of up to 8 UTF-8 bytes are their own exact integer key
_MAX_CHUNKS = 8  # words up to 64 bytes are keyed with numpy, longer ones with a dict
_KEY_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(_KEY_BYTES)] + [2**64 - 1], dtype=np.uint64)


def encode_captions(captions: list[str]) -> TokenizedCorpus:
    """Word ids of the ``str.split()`` tokens of every caption, without a Python-level pass per token.

    The captions, joined by newlines, become one UTF-8 byte array; word boundaries are found with
    numpy, and a word of up to 8 bytes is identified by the 8 bytes read at its start with the bytes
    after its end masked off (no word holds a NUL byte, so the key is exact). Longer words, a few
    per cent in English, extend that id 8 bytes at a time. Captions holding other whitespace (tabs,
    newlines, U+00A0...) or NUL take the plain ``str.split()`` path."""
    joined = "\n".join(captions)
    if not joined.isascii() and any(ch in joined for ch in OTHER_WHITESPACE if ch > "\x7f"):
        return encode_words([c.split() for c in captions])
    raw = joined.encode("utf-8", "surrogatepass")  # lone surrogates stay distinct words
    del joined
    size = len(raw)
    padded = np.zeros(1 + size + _KEY_BYTES, dtype=np.uint8)  # a separator before, room for the last key after
    text = padded[1 : 1 + size]
    text[:] = np.frombuffer(raw, dtype=np.uint8)
    line_ends = np.flatnonzero(text < 32)
    if len(line_ends) != max(len(captions) - 1, 0):  # NUL, tab, newline... inside a caption
        return encode_words([c.split() for c in captions])
    is_separator = padded <= 32  # space, the joining newlines, the zero padding
    # word starts and ends in text coordinates: a separator then a word byte, a word byte then a separator
    starts = np.flatnonzero(is_separator[:-1] > is_separator[1:])
    word_len = np.flatnonzero(is_separator[:-1] < is_separator[1:])
    del is_separator
    word_len -= starts
    windows = np.ndarray(shape=(size + 1,), dtype="<u8", buffer=padded, offset=1, strides=(1,))
    keys = np.empty(len(starts), dtype=np.uint64)
    for lo in range(0, len(starts), _BLOCK):  # in blocks: no word-sized temporaries
        part = slice(lo, lo + _BLOCK)
        keys[part] = windows[starts[part]]
        keys[part] &= _KEY_MASKS[np.minimum(word_len[part], _KEY_BYTES)]

    # longer words: extend the id of their first 8 bytes by the next 8, as n-gram ids are extended
    word_ids, n_ids = _dense_ranks(keys)
    longer = np.flatnonzero(word_len > _KEY_BYTES)
    for chunk in range(1, _MAX_CHUNKS):
        if not len(longer):
            break
        rest = word_len[longer] - chunk * _KEY_BYTES
        next_keys = windows[starts[longer] + chunk * _KEY_BYTES].astype(np.uint64)
        next_keys &= _KEY_MASKS[np.minimum(rest, _KEY_BYTES)]
        next_ranks, n_next = _dense_ranks(next_keys)
        pair_ranks, n_pairs = _dense_ranks(word_ids[longer].astype(np.uint64) * np.uint64(n_next) + next_ranks.astype(np.uint64))
        word_ids[longer] = n_ids + pair_ranks  # new ids: a word that *is* the prefix keeps the old one
        n_ids += n_pairs
        longer = longer[rest > _KEY_BYTES]
    if len(longer):  # words beyond _MAX_CHUNKS * 8 bytes (URLs, junk): by their bytes
        by_bytes: dict[bytes, int] = {}
        spans = zip(starts[longer].tolist(), (starts[longer] + word_len[longer]).tolist())
        word_ids[longer] = n_ids + np.fromiter(map(by_bytes.setdefault, (raw[a:b] for a, b in spans), count()), dtype=np.int64, count=len(longer))
        n_ids += len(longer)
    # dense ids; each word's text from its first occurrence (assigned last to first: the first one stays)
    first_at = np.full(n_ids, -1, dtype=np.int64)
    for hi in range(len(word_ids), 0, -_BLOCK):
        lo = max(hi - _BLOCK, 0)
        first_at[word_ids[lo:hi][::-1]] = np.arange(hi - 1, lo - 1, -1)
    used = np.flatnonzero(first_at >= 0)
    dense = np.zeros(n_ids, dtype=np.int64)
    dense[used] = np.arange(len(used))
    for lo in range(0, len(word_ids), _BLOCK):
        word_ids[lo : lo + _BLOCK] = dense[word_ids[lo : lo + _BLOCK]]
    first = first_at[used]
    spans = zip(starts[first].tolist(), (starts[first] + word_len[first]).tolist())
    words = [raw[a:b].decode("utf-8", "surrogatepass") for a, b in spans]
    offsets = np.empty(len(captions) + 1, dtype=np.int64)
    offsets[0], offsets[-1] = 0, len(starts)
    offsets[1:-1] = np.searchsorted(starts, line_ends)
    # each caption of w >= 1 words has at least w - 1 spaces, exactly that when single-spaced
    n_spaces = np.count_nonzero(text == 32)
    single_spaced = n_spaces == len(starts) - np.count_nonzero(np.diff(offsets))
    return TokenizedCorpus(word_ids, offsets, words, single_spaced)


def _dense_ranks(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Rank of each uint64 key among the distinct keys (``np.unique(keys, return_inverse=True)``)
    and their number: one ``np.sort``, then hashed lookups."""
    ordered = np.sort(keys)
    distinct = ordered[segment_starts(ordered)]
    del ordered
    return find_sorted(distinct, keys, all_present=True), len(distinct)


_SHARED_SLOT = -2
_BLOCK = 1 << 20  # elements per block where a full-size temporary is not needed
_LOOKUP_BLOCK = 1 << 18  # queries per block of a hash lookup
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: a bijection mod 2**64 with well-mixed high bits


def find_sorted(distinct: np.ndarray, queries: np.ndarray, all_present: bool = False) -> np.ndarray:
    """Index of each query in ``distinct`` (sorted, unique, 64-bit integers), -1 where absent
    (``all_present``: the caller knows every query is there). See :class:`SortedKeys`."""
    return SortedKeys(distinct).find(queries, all_present)


class SortedKeys:
    """Sorted, unique 64-bit keys, to look queries up in (:meth:`find`), several times if need be.

    A multiplicative hash table over the keys answers most queries with one gather, 5-10x faster
    than ``np.searchsorted``'s binary search per query, which only queries landing on a slot shared
    by two keys (a few per cent) fall back to. The table is built on the first lookup of 4096
    queries or more; queries are answered in blocks, so the temporaries stay small."""

    def __init__(self, distinct: np.ndarray, build: bool = False):
        self.distinct = distinct.view(np.uint64)
        self._table = None
        if build and len(self.distinct) >= 2:  # now rather than at the first large lookup
            self._build()

    def _build(self):
        n_distinct = len(self.distinct)
        # a load factor of 1/32-1/64 while the table fits in cache (2**20 slots), 1/4-1/8 beyond
        bits = max(n_distinct.bit_length() + 2, min(n_distinct.bit_length() + 5, 20))
        self._shift = np.uint64(64 - bits)
        slot_of_distinct = self.distinct * _MULTIPLIER
        slot_of_distinct >>= self._shift
        table = np.full(1 << bits, -1, dtype=np.int32 if n_distinct < 2**31 else np.int64)
        table[slot_of_distinct] = np.arange(n_distinct)
        slot_of_distinct.sort()
        table[slot_of_distinct[1:][slot_of_distinct[1:] == slot_of_distinct[:-1]]] = _SHARED_SLOT  # slots of 2+ keys
        self._table = table

    def find(self, queries: np.ndarray, all_present: bool = False) -> np.ndarray:
        """Index of each query among the keys, -1 where absent. ``all_present`` skips the check that
        a hit really holds the query, for callers that know every query is a key."""
        distinct, queries = self.distinct, queries.view(np.uint64)
        n_distinct = len(distinct)
        if not n_distinct:
            return np.full(len(queries), -1, dtype=np.int64)
        if self._table is None and (n_distinct < 2 or len(queries) < 4096):
            found = np.minimum(np.searchsorted(distinct, queries), n_distinct - 1).astype(np.int64, copy=False)
            if not all_present:
                found[distinct[found] != queries] = -1
            return found
        if self._table is None:
            self._build()
        table, shift = self._table, self._shift
        found = np.empty(len(queries), dtype=np.int64)
        for lo in range(0, len(queries), _LOOKUP_BLOCK):
            part = queries[lo : lo + _LOOKUP_BLOCK]
            slot = part * _MULTIPLIER
            slot >>= shift
            out = found[lo : lo + _LOOKUP_BLOCK]
            out[:] = table[slot.view(np.int64)]  # slots are below 2**bits: the int64 view is exact
            shared = np.flatnonzero(out == _SHARED_SLOT)
            out[shared] = np.minimum(np.searchsorted(distinct, part[shared]), n_distinct - 1)
            if not all_present:
                out[distinct[out] != part] = -1  # an empty slot (-1) reads the last key, never the query
        return found


@dataclass
class NgramCounts:
    """Unique (n-gram, caption) pairs of a corpus, sorted by n-gram id then caption.

    N-gram ids are global: order ``n`` uses ids ``order_start[n-1] <= id < order_start[n]``.
    """

    gram: np.ndarray  # (E,) int32 global n-gram id (int64 for astronomically large corpora)
    caption: np.ndarray  # (E,) int32 caption index
    count: np.ndarray  # (E,) occurrences of the n-gram in the caption (uint8 when every caption has < 256 words)
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

    capacity = int(np.maximum(lengths[None, :] - np.arange(n)[:, None], 0).sum())  # all occurrences
    gram_out = np.empty(capacity, dtype=small)
    cap_out = np.empty(capacity, dtype=small)
    # a count is at most its caption's length: one byte for captions of up to 255 words
    longest = int(lengths.max(initial=0))
    count_out = np.empty(capacity, dtype=np.uint8 if longest < 2**8 else np.uint16 if longest < 2**16 else small)
    order_out = np.empty(capacity, dtype=np.int8)
    filled = 0
    prefix_id = np.zeros(n_pos, dtype=small)  # id of the (k-1)-gram starting at each position
    n_prefix = 1
    first_parts = []
    order_start = [0]
    shift = max(n_pos, 1).bit_length()
    for k in range(1, n + 1):
        packed = n_prefix * n_words < _INT64_LIMIT >> shift
        if k == 1:  # every position: their number, or (for the unpacked sort) the positions
            starts = n_pos if packed else np.arange(n_pos, dtype=np.int64)
        else:  # positions with k - 1 more words in their caption
            starts = np.flatnonzero(caption_of_pos[k - 1 :] == caption_of_pos[: max(n_pos - k + 1, 0)])
        key = _ngram_keys(ids, prefix_id, starts, k, n_words, shift if packed else None)
        if packed:
            del starts
            key.sort()
            new_gram = np.empty(len(key), dtype=bool)
            new_gram[:1] = True
            for lo in range(1, len(key), _BLOCK):  # keys differ in the bits above the position
                hi = min(lo + _BLOCK, len(key))
                np.greater_equal(np.bitwise_xor(key[lo:hi], key[lo - 1 : hi - 1]), 1 << shift, out=new_gram[lo:hi])
            key &= (1 << shift) - 1
            pos_sorted = key
        else:  # astronomically large corpus: a (slower) stable sort keeps positions ascending per key
            order = np.argsort(key, kind="stable")
            key, pos_sorted = key[order], starts[order]
            del starts, order
            new_gram = segment_starts(key)
        del key
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
        del new_pair, new_gram
        m = len(pair_idx)
        end = filled + m
        if m:
            gram_part = gram_out[filled:end]
            np.take(dense, pair_idx, out=gram_part, mode="clip")  # indices are in range ("clip": unbuffered)
            gram_part += order_start[-1]
            np.take(cap_sorted, pair_idx, out=cap_out[filled:end], mode="clip")
            np.subtract(pair_idx[1:], pair_idx[:-1], out=count_out[filled : end - 1], casting="unsafe")
            count_out[end - 1] = len(cap_sorted) - pair_idx[-1]
        order_out[filled:end] = k - 1
        filled = end
        order_start.append(order_start[-1] + n_k)
        del dense, cap_sorted, pair_idx
    return NgramCounts(
        gram=gram_out[:filled],
        caption=cap_out[:filled],
        count=count_out[:filled],
        order=order_out[:filled],
        order_start=np.asarray(order_start, dtype=np.int64),
        first_position=np.concatenate(first_parts),
    )


def _ngram_keys(ids, prefix_id, starts, k: int, n_words: int, shift: int | None) -> np.ndarray:
    """The key of the k-gram at each of ``starts`` (positions, or their number for all of them): its
    (k-1)-gram prefix id and its last word, and, with ``shift``, the position packed below them
    (sorting the keys then sorts positions within a key). Built in blocks: no full-size temporaries."""
    size = starts if isinstance(starts, int) else len(starts)
    key = np.empty(size, dtype=np.int64)
    for lo in range(0, size, _BLOCK):
        at = np.arange(lo, min(lo + _BLOCK, size), dtype=np.int64) if isinstance(starts, int) else starts[lo : lo + _BLOCK]
        part = key[lo : lo + _BLOCK]
        if k == 1:
            part[:] = ids[at]
        else:
            part[:] = prefix_id[at]
            part *= n_words
            part += ids[k - 1 :][at]
        if shift is not None:
            part <<= shift
            part |= at
    return key


def segment_starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal consecutive key tuples."""
    size = len(keys[0])
    start = np.empty(size, dtype=bool)
    start[:1] = True
    start[1:] = False
    for key in keys:
        start[1:] |= key[1:] != key[:-1]
    return start
