"""Meteor 1.5's score from its statistics (``edu.cmu.meteor.scorer.MeteorStats`` / ``MeteorScorer``).

numpy only: no Java, no subprocess. Rows of 23 statistics (:data:`STATS_FIELDS`, as the jar prints them
for a ``SCORE`` line) give per-segment scores, bit-identical to the jar's ``EVAL`` on every test segment;
sums of rows in summable form (:func:`meteor_summable_stats`) give the corpus score of any subset or
resample, as the jar's aggregate does.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "STATS_FIELDS",
    "STATS_LENGTH",
    "EVAL_ID",
    "meteor_score_from_stats",
    "meteor_scores_from_stats",
    "meteor_summable_stats",
]

VERSION = "1.5"
FLAGS = "-l en -norm"
STAGES = ("exact", "stem", "synonym", "paraphrase")
STATS_FIELDS: tuple[str, ...] = (
    "test_length",
    "ref_length",
    "test_function_words",
    "ref_function_words",
    *(
        f"{side}_{stage}_{kind}"
        for stage in STAGES
        for kind, side in (("content", "test"), ("content", "ref"), ("function", "test"), ("function", "ref"))
    ),
    "chunks",
    "test_word_matches",
    "ref_word_matches",
)
STATS_LENGTH = len(STATS_FIELDS)  # 23
# `-l en` with the default task ("Ranking"): Eval ID meteor-1.5-wo-en-norm-0.85_0.2_0.6_0.75-ex_st_sy_pa-1.0_0.6_0.8_0.6
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
EVAL_ID = "meteor-1.5-wo-en-norm-0.85_0.2_0.6_0.75-ex_st_sy_pa-1.0_0.6_0.8_0.6"
_CHUNKS, _TEST_WORD_MATCHES, _REF_WORD_MATCHES = 20, 21, 22


def _scalar_pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except (ValueError, OverflowError):  # pragma: no cover - statistics are non-negative counts
        return math.nan


_POW = np.frompyfunc(_scalar_pow, 2, 1)


def _java_pow(x: np.ndarray, y: float) -> np.ndarray:
    """C's pow, element by element: np.power is off by one ulp from it (and from Java's Math.pow) for a
    few percent of inputs, math.pow agrees with the jar on every test segment."""
    return np.asarray(_POW(x, y), dtype=np.float64)


def _as_stats(stats) -> np.ndarray:
    arr = np.asarray(stats, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != STATS_LENGTH:
        raise ValueError(f"METEOR statistics must have {STATS_LENGTH} columns, got shape {arr.shape}")
    return arr


def _total_matches(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MeteorStats(String): testTotalMatches += content_i, += function_i, stage by stage."""
    test_total = np.zeros(s.shape[:-1])
    ref_total = np.zeros(s.shape[:-1])
    for i in range(len(STAGES)):
        test_total = test_total + s[..., 4 + 4 * i]
        ref_total = ref_total + s[..., 5 + 4 * i]
        test_total = test_total + s[..., 6 + 4 * i]
        ref_total = ref_total + s[..., 7 + 4 * i]
    return test_total, ref_total


def _one_perfect_chunk(s: np.ndarray) -> np.ndarray:
    """Every word of both sides matched, in one single chunk (Meteor then counts no fragmentation)."""
    test_total, ref_total = _total_matches(s)
    return (test_total == s[..., 0]) & (ref_total == s[..., 1]) & (s[..., _CHUNKS] == 1.0)


def meteor_summable_stats(stats) -> np.ndarray:
    """Per-segment statistics in the form that sums to the jar's aggregate (a copy).

    ``MeteorStats.addStats`` does not count the chunks of a perfect segment (every word of both sides
    matched) that is one single chunk; this sets those chunks to 0. A segment's own score is the same
    either way, so :attr:`MeteorResult.stats` holds this form and plain sums of its rows (over any
    subset or resample, with any weights) give the jar's corpus statistics.
    """
    s = np.array(_as_stats(stats), dtype=np.float64, copy=True)
    s[..., _CHUNKS] = np.where(_one_perfect_chunk(s), 0.0, s[..., _CHUNKS])
    return s


def meteor_scores_from_stats(sums) -> np.ndarray:
    """Meteor 1.5 scores from (summed) statistics, vectorized over any leading shape: ``(..., 23) -> (...)``.

    Each row is scored as ``MeteorScorer.computeMetrics`` does, operation by operation (IEEE doubles,
    same order), with the ``-l en`` parameters. A row of one segment's statistics gives that segment's
    score; the sum of rows of :func:`meteor_summable_stats` (e.g. ``weights @ stats`` for bootstrap
    resamples, or rows of :attr:`MeteorResult.stats`) gives the corpus score of that (multi)set.
    """
    s = _as_stats(sums)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        test_length, ref_length, test_function, ref_function = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
        test_weighted_length = DELTA * (test_length - test_function) + (1.0 - DELTA) * test_function
        ref_weighted_length = DELTA * (ref_length - ref_function) + (1.0 - DELTA) * ref_function
        # the jar's summation order: content matches of every stage, then function-word matches
        test_weighted = np.zeros(s.shape[:-1])
        ref_weighted = np.zeros(s.shape[:-1])
        for i, w in enumerate(MODULE_WEIGHTS):
            test_weighted = test_weighted + s[..., 4 + 4 * i] * w * DELTA
        for i, w in enumerate(MODULE_WEIGHTS):
            ref_weighted = ref_weighted + s[..., 5 + 4 * i] * w * DELTA
        for i, w in enumerate(MODULE_WEIGHTS):
            test_weighted = test_weighted + s[..., 6 + 4 * i] * w * (1.0 - DELTA)
        for i, w in enumerate(MODULE_WEIGHTS):
            ref_weighted = ref_weighted + s[..., 7 + 4 * i] * w * (1.0 - DELTA)
        precision = test_weighted / test_weighted_length
        recall = ref_weighted / ref_weighted_length
        fmean = 1.0 / ((1.0 - ALPHA) / precision + ALPHA / recall)
        chunks = s[..., _CHUNKS]
        word_matches = (s[..., _TEST_WORD_MATCHES] + s[..., _REF_WORD_MATCHES]) / 2.0
        fragmentation = np.where(_one_perfect_chunk(s), 0.0, chunks / word_matches)
        penalty = GAMMA * _java_pow(fragmentation, BETA)
        score = fmean * (1.0 - penalty)
        score = np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))
    return score if score.ndim else np.float64(score)


def meteor_score_from_stats(stats) -> float:
    """The corpus METEOR of per-segment statistics ``(N, 23)`` (raw jar rows or summable rows), as the
    jar's ``EVAL`` computes it; a single row ``(23,)`` gives that row's score."""
    s = _as_stats(stats)
    if s.ndim == 1:
        return float(meteor_scores_from_stats(s))
    if s.ndim != 2:
        raise ValueError(f"expected (N, {STATS_LENGTH}) statistics, got shape {s.shape}")
    return float(meteor_scores_from_stats(meteor_summable_stats(s).sum(axis=0)))
