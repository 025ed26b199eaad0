"""Corpus document frequencies on disk, in hash buckets: the stream engine's memory stays flat in N.

The frequencies of all references grow with the number of distinct n-grams (almost linearly on
generated captions), so the stream engine does not hold them in memory:

* **fit** (:meth:`FrequencySpill.add`, one chunk at a time): the chunk's distinct reference n-grams
  as rows of *global* word ids (a vocabulary that grows as chunks arrive; ids never change), -1
  padded to ``n`` columns, with the number of the chunk's items whose references contain each;
  rows go to one of ``2**BUCKET_BITS`` append-only files by a hash of the row.
* **finish** (:meth:`FrequencySpill.finish`): bucket by bucket, the rows packed into exact int64
  keys (:func:`~capeval._ngrams.pack_ngram_rows`, base ``len(vocabulary) + 1``), sorted, and equal
  keys' counts summed: one sorted ``.npy`` pair per bucket. Memory: one bucket.
* **lookup** (:meth:`SpilledFrequencies.lookup`, what CIDEr asks of a ``df``): a chunk's n-grams are
  mapped to global ids, hashed to their buckets, and looked up bucket by bucket in memory-mapped
  tables that are unmapped again before the next: memory is the chunk plus one bucket.

Exact: no hash decides an answer (the hash only picks the bucket; keys are compared whole). When the
vocabulary is too large to pack an n-gram into 63 bits, :meth:`FrequencySpill.finish` builds the
in-memory table of the other engines from the buckets instead (correct, not flat).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._ngrams import find_in_sorted, map_vocabulary, pack_ngram_rows, packs_exactly
from ._adapter import DfPart, _sum_by_key, _unique_rows, chunk_frequency_rows, finish_state

BUCKET_BITS = 8  # 256 buckets: a 4M-image generated corpus (~50M distinct n-grams) gives ~2 MB each
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: mixes the high bits, which pick the bucket


def row_buckets(rows: np.ndarray) -> np.ndarray:
    """The bucket of each row of global word ids (-1 padded): a multiplicative hash of all columns."""
    h = np.zeros(len(rows), dtype=np.uint64)
    for j in range(rows.shape[1]):
        h += (rows[:, j] + 1).astype(np.uint64)
        h *= _HASH_MULTIPLIER
    return (h >> np.uint64(64 - BUCKET_BITS)).astype(np.intp)


class FrequencySpill:
    """Document-frequency rows of all references, appended chunk by chunk to bucket files in ``directory``."""

    def __init__(self, directory, n: int):
        self.directory = Path(directory)
        self.n = n
        self.vocabulary: dict[str, int] = {}
        self.n_items = 0
        self._buckets: set[int] = set()  # buckets with rows on disk

    def _path(self, bucket: int, kind: str) -> Path:
        return self.directory / f"df-{bucket:03d}.{kind}"

    def add(self, tokenized_references) -> None:
        """Count one chunk's references (consecutive items, each counted once)."""
        words, rows, counts = chunk_frequency_rows(tokenized_references, self.n)
        self.n_items += len(tokenized_references)
        if not len(rows):
            return
        vocabulary = self.vocabulary
        to_global = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in words] + [-1], dtype=np.int32)
        table = np.empty((len(rows), self.n + 1), dtype=np.int32)  # global ids (-1 padded), then the count
        table[:, : self.n] = to_global[rows]  # the -1 padding indexes the trailing -1
        table[:, self.n] = counts
        buckets = row_buckets(table[:, : self.n])
        order = np.argsort(buckets, kind="stable")
        table, buckets = table[order], buckets[order]
        bounds = np.searchsorted(buckets, np.arange((1 << BUCKET_BITS) + 1))
        for bucket in np.flatnonzero(np.diff(bounds)).tolist():
            # opened per write: 256 files held open would exceed macOS's default limit of 256
            with open(self._path(bucket, "rows"), "ab") as fh:
                fh.write(table[bounds[bucket] : bounds[bucket + 1]].tobytes())
            self._buckets.add(bucket)

    def _bucket_rows(self, bucket: int) -> np.ndarray:
        return np.fromfile(self._path(bucket, "rows"), dtype=np.int32).reshape(-1, self.n + 1)

    def finish(self):
        """The frequencies of everything added: :class:`SpilledFrequencies`, or (vocabulary too large to
        pack) the in-memory table the other engines use."""
        base = len(self.vocabulary) + 1
        buckets = sorted(self._buckets)
        if not packs_exactly(base, self.n):
            return self._in_memory(buckets)
        for bucket in buckets:
            table = self._bucket_rows(bucket)
            keys = pack_ngram_rows(table[:, : self.n], base)
            counts = table[:, self.n].astype(np.int64)
            del table
            keys, counts = _sum_by_key(keys, counts)  # a bucket file is never empty
            np.save(self._path(bucket, "keys.npy"), keys)
            np.save(self._path(bucket, "counts.npy"), counts)
            os.remove(self._path(bucket, "rows"))
        return SpilledFrequencies(self, buckets)

    def _in_memory(self, buckets):
        words = [""] * len(self.vocabulary)
        for word, index in self.vocabulary.items():
            words[index] = word
        table = np.concatenate([self._bucket_rows(b) for b in buckets]) if buckets else np.zeros((0, self.n + 1), np.int32)
        orders = (table[:, : self.n] >= 0).sum(axis=1)
        grams, counts = [], []
        for k in range(1, self.n + 1):
            mine = table[orders == k]
            rows, summed = _unique_rows(mine[:, :k], mine[:, self.n].astype(np.int64), len(words))
            grams.append(rows)
            counts.append(summed)
        return finish_state(DfPart(words, grams, counts, self.n_items))


class SpilledFrequencies:
    """The finished bucket tables; answers CIDEr's ``lookup`` and ``ref_len`` with the numbers of an
    in-memory :class:`~capeval.df.DocumentFrequencies` of the same references."""

    def __init__(self, spill: FrequencySpill, buckets):
        self._spill = spill
        self._buckets = frozenset(int(b) for b in buckets)
        self.n = spill.n
        self.vocabulary = spill.vocabulary
        self.n_images = float(spill.n_items)
        self.ref_len = float(np.log(self.n_images))  # as DocumentFrequencies and evaluate() compute it
        self._base = len(spill.vocabulary) + 1

    def lookup(self, gram_words: np.ndarray, corpus_words) -> np.ndarray:
        """Document frequency of n-grams given as (G, n) word ids of another vocabulary (-1 padded)."""
        gram_words = np.asarray(gram_words, dtype=np.int64)
        out = np.zeros(len(gram_words), dtype=np.float64)
        if not len(gram_words):
            return out
        keep = ~(gram_words[:, self.n :] >= 0).any(axis=1)  # orders above n were not counted: absent
        width = min(gram_words.shape[1], self.n)
        rows = np.full((len(gram_words), self.n), -1, dtype=np.int64)
        rows[:, :width] = map_vocabulary(corpus_words, self.vocabulary)[gram_words[:, :width]]
        # a word no reference has: the n-gram is absent (its -1 must not read as padding)
        keep &= ((rows[:, :width] >= 0) == (gram_words[:, :width] >= 0)).all(axis=1)
        query = np.flatnonzero(keep)
        buckets = row_buckets(rows[query])
        keys = pack_ngram_rows(rows[query], self._base)
        del rows
        order = np.argsort(buckets, kind="stable")
        query, buckets, keys = query[order], buckets[order], keys[order]
        bounds = np.searchsorted(buckets, np.arange((1 << BUCKET_BITS) + 1))
        for bucket in np.flatnonzero(np.diff(bounds)):
            if int(bucket) not in self._buckets:
                continue
            lo, hi = bounds[bucket], bounds[bucket + 1]
            table = np.load(self._spill._path(bucket, "keys.npy"), mmap_mode="r")
            hit, pos = find_in_sorted(table, keys[lo:hi])
            del table  # unmapped: the next bucket's pages replace this one's
            if hit.any():
                counts = np.load(self._spill._path(bucket, "counts.npy"), mmap_mode="r")
                out[query[lo:hi][hit]] = counts[pos[hit]]
                del counts
        return out

    def __len__(self) -> int:
        return int(sum(len(np.load(self._spill._path(b, "keys.npy"), mmap_mode="r")) for b in self._buckets))
