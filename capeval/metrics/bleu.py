"""BLEU-1..n exactly as pycocoevalcap 1.2's ``Bleu`` (``option="closest"``).

Per item the sufficient statistics are ``[testlen, reflen, guess_1..n, correct_1..n]``; corpus BLEU is
the same formula applied to their column sums, so bootstrap resamples just re-sum rows.
coco's quirks kept on purpose: the closest reference length with ties to the shorter one,
``tiny = 1e-15`` and ``small = 1e-9`` smoothing, the brevity penalty from summed lengths.
"""

from __future__ import annotations

import re

import numpy as np

from .._corpus import ScoringCorpus
from .._ngrams import segment_starts
from .base import Metric, Options

TINY = 1e-15
SMALL = 1e-9


def bleu_statistics(corpus: ScoringCorpus, n: int = 4) -> np.ndarray:
    """Per-item sufficient statistics, shape (N, 2 + 2n): testlen, reflen, guess_1..n, correct_1..n."""
    lengths = corpus.tokens.lengths
    hyp_len = lengths[corpus.hyp_caption]
    ref_len = lengths[corpus.ref_caption]
    stats = np.zeros((corpus.n_items, 2 + 2 * n), dtype=np.float64)
    stats[:, 0] = hyp_len
    # closest reference length, ties to the shorter: minimise (|l - testlen|, l) lexicographically
    big = np.int64(2**31)
    closeness = np.abs(ref_len - hyp_len[corpus.ref_item]) * big + ref_len
    stats[:, 1] = np.minimum.reduceat(closeness, corpus.ref_start[:-1]) % big
    for k in range(n):
        stats[:, 2 + k] = np.maximum(0, hyp_len - k)

    # each hypothesis n-gram's largest count in its item's references: the reference entries it meets
    # follow it, a run per hypothesis entry (see ScoringCorpus.hypothesis_pairs)
    grams = corpus.ngrams(n)
    pairs = corpus.hypothesis_pairs(n)
    hyp_entry = pairs.hyp_entry
    max_ref_count = np.zeros(len(hyp_entry), dtype=grams.count.dtype)
    if len(pairs.owner):
        run_start = np.flatnonzero(segment_starts(pairs.owner))
        max_ref_count[pairs.owner[run_start]] = np.maximum.reduceat(grams.count[pairs.ref_entry], run_start)
        del run_start
    clipped = np.minimum(grams.count[hyp_entry], max_ref_count).astype(np.float64)
    del max_ref_count
    slot = corpus.caption_item[grams.caption[hyp_entry]]  # the item, then its (item, order) slot
    slot *= n
    slot += grams.order[hyp_entry]
    correct = np.bincount(slot, weights=clipped, minlength=corpus.n_items * n)
    stats[:, 2 + n :] = correct.reshape(corpus.n_items, n)
    return stats


def bleu_from_statistics(stats: np.ndarray, n: int = 4) -> np.ndarray:
    """BLEU-1..n from statistics rows (one row: per-item BLEU; the column sums: corpus BLEU).

    ``stats`` is (..., 2 + 2n); returns (..., n). Mirrors coco's arithmetic step by step.
    """
    stats = np.asarray(stats, dtype=np.float64)
    testlen, reflen = stats[..., 0], stats[..., 1]
    guess, correct = stats[..., 2 : 2 + n], stats[..., 2 + n : 2 + 2 * n]
    scores = np.empty(stats.shape[:-1] + (n,), dtype=np.float64)
    running = np.ones(stats.shape[:-1], dtype=np.float64)
    for k in range(n):
        running = running * ((correct[..., k] + TINY) / (guess[..., k] + SMALL))
        scores[..., k] = running ** (1.0 / (k + 1))
    ratio = (testlen + TINY) / (reflen + SMALL)
    with np.errstate(over="ignore", divide="ignore"):
        penalty = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return scores * penalty[..., None]


_KEY = re.compile(r"Bleu_([1-9][0-9]*)$")


class Bleu(Metric):
    """BLEU-1..n: statistics ``testlen, reflen, guess_1..n, correct_1..n`` per item; corpus BLEU is the
    formula on their sums (not a mean of per-item BLEU)."""

    name = "bleu"
    default = True
    report_rank = 20
    coco = ("Bleu", {})  # keys as pycocoevalcap's

    def keys(self, options: Options | None = None) -> list[str]:
        n = (options or Options()).n
        return [f"Bleu_{k}" for k in range(1, n + 1)]

    def owns_key(self, key: str) -> bool:
        return _KEY.match(key) is not None

    def display_name(self, key: str) -> str:
        match = _KEY.match(key)
        return f"BLEU-{match.group(1)}" if match else key

    def key_rank(self, key: str) -> int:
        match = _KEY.match(key)
        return int(match.group(1)) if match else 0

    def statistics(self, corpus, state, options: Options) -> np.ndarray:
        return bleu_statistics(corpus, options.n)

    def scores(self, sums: np.ndarray) -> dict:
        sums = np.asarray(sums, dtype=np.float64)
        n = (sums.shape[-1] - 2) // 2
        values = bleu_from_statistics(sums, n)
        return {f"Bleu_{k + 1}": values[..., k] for k in range(n)}

    def signature(self, options: Options, state=None) -> dict:
        return {"n": options.n, "reflen": "closest"}


BLEU = Bleu()
