"""METEOR 1.5 in Python: the jar's exact statistics without a JVM.

``segment_statistics(references, hypotheses)`` returns, per segment, the 23 numbers Meteor 1.5 prints
for ``SCORE ||| ref1 ||| ... ||| hyp`` with ``-l en -norm`` (pycocoevalcap's settings); score them
with ``capeval.meteor.meteor_scores_from_stats``. The tables are read from the installed
pycocoevalcap (no Java needed); see docs/meteor_python.md.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Sequence

import numpy as np

from capeval.errors import EmptyReferencesError, InputError, InvalidCaptionError, MeteorUnavailableError

from ._java import java_trim
from .align import Aligner, ParaphraseIndex
from .resources import load_tables, unavailable_reason

__all__ = ["MeteorUnavailableError", "segment_statistics", "unavailable_reason", "load_tables"]

# Below this many segments one process is faster than starting workers.
MIN_SEGMENTS_PER_WORKER = 1500
# A progress bar (progress=None) from this many segments on.
PROGRESS_FROM = 3000
# Score each distinct (hypothesis, references) segment once and copy its statistics to repeats.
REUSE_IDENTICAL_SEGMENTS = True


def _check(references, hypotheses) -> tuple[list[list[str]], list[str]]:
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise InputError(f"hypotheses must be a list of strings, got {type(hypotheses).__name__}")
    if len(references) != len(hypotheses):
        raise InputError(f"{len(references)} reference lists but {len(hypotheses)} hypotheses")
    refs_out, hyps_out = [], []
    for k, (refs, hyp) in enumerate(zip(references, hypotheses)):
        if not isinstance(hyp, str):
            raise InvalidCaptionError(f"hypothesis {k} is not a string: {hyp!r}")
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise InvalidCaptionError(f"the references of segment {k} are not a list of strings: {refs!r}")
        if not refs:
            raise EmptyReferencesError(f"segment {k} has no references")
        for r, text in enumerate([*refs, hyp]):
            if not isinstance(text, str):
                raise InvalidCaptionError(f"reference {r} of segment {k} is not a string: {text!r}")
            # The jar reads one line per segment and splits it on "|||": such text cannot be sent to it
            # as it stands (capeval.meteor.clean_caption removes both).
            if "|||" in text or "\n" in text or "\r" in text:
                what = "the hypothesis" if r == len(refs) else f"reference {r}"
                raise InvalidCaptionError(
                    f"{what} of segment {k} contains '|||' or a line break; clean it first "
                    f"(capeval.meteor.clean_caption): {text!r}"
                )
        refs_out.append([java_trim(r) for r in refs])
        hyps_out.append(java_trim(hyp))
    return refs_out, hyps_out


# Worker state, inherited by forked workers or set by _init_worker.
_WORKER: dict = {}


def _init_worker(jar, paraphrases: ParaphraseIndex) -> None:
    _WORKER["aligner"] = Aligner(load_tables(jar, progress=False), paraphrases)


def _score_chunk(task):
    start, refs, hyps = task
    return start, _score_segments(_WORKER["aligner"], refs, hyps)


def _score_segments(aligner: Aligner, refs: list[list[str]], hyps: list[str], bar=None) -> np.ndarray:
    """Per segment, the statistics of every reference (rows in segment order, then reference order)."""
    rows = []
    sentence = aligner.sentence
    enabled = gc.isenabled()
    gc.disable()  # the search allocates many small lists: the cyclic collector would triple its cost
    try:
        for k, (seg_refs, hyp) in enumerate(zip(refs, hyps)):
            test = sentence(hyp)
            for ref in seg_refs:
                rows.append(aligner.statistics(test, sentence(ref)))
            if bar is not None and k % 256 == 255:
                bar.update(256)
    finally:
        if enabled:
            gc.enable()
    if bar is not None:
        bar.update(len(hyps) % 256)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 23)


def _best_reference(rows: np.ndarray, counts: list[int]) -> np.ndarray:
    """``getMeteorStats(test, references)``: the statistics of the reference that scores highest, the
    first one on ties (``curStats.score > stats.score``)."""
    from capeval.meteor import meteor_scores_from_stats

    scores = np.atleast_1d(meteor_scores_from_stats(rows))
    out = np.empty((len(counts), 23), dtype=np.float64)
    offset = 0
    for k, n in enumerate(counts):
        out[k] = rows[offset + int(np.argmax(scores[offset : offset + n]))]
        offset += n
    return out


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def segment_statistics(
    references: list[list[str]],
    hypotheses: list[str],
    *,
    workers: int = 1,
    progress=None,
    jar=None,
) -> np.ndarray:
    """The jar's raw statistics, shape ``(N, 23)`` (columns ``capeval.meteor.STATS_FIELDS``), for each
    hypothesis against its references, text as sent to the jar (already cleaned).

    ``workers``: processes to score with (0 or None: one per core); results do not depend on it.
    ``progress``: a tqdm bar (None: when building the cache and from 3,000 segments; True/False).
    Raises ``MeteorUnavailableError`` when pycocoevalcap's data files are not installed.
    """
    refs, hyps = _check(references, hypotheses)
    tables = load_tables(jar, progress=progress)
    if not hyps:
        return np.zeros((0, 23), dtype=np.float64)
    if REUSE_IDENTICAL_SEGMENTS:
        first: dict[tuple, int] = {}
        where = [first.setdefault((hyp, *seg_refs), len(first)) for seg_refs, hyp in zip(refs, hyps)]
        if len(first) < len(hyps):  # keys in order of first occurrence, so row k is key k
            keys = list(first)
            stats = _segment_statistics([list(k[1:]) for k in keys], [k[0] for k in keys], tables, workers, progress)
            return stats[np.asarray(where, dtype=np.intp)]
    return _segment_statistics(refs, hyps, tables, workers, progress)


def _segment_statistics(refs, hyps, tables, workers, progress) -> np.ndarray:
    aligner = Aligner(tables)
    texts = dict.fromkeys(hyps)
    for seg_refs in refs:
        texts.update(dict.fromkeys(seg_refs))
    sentences = [aligner.words(t) for t in texts]
    paraphrases = ParaphraseIndex.for_sentences(tables, sentences)
    aligner.paraphrases = paraphrases
    for words in sentences:  # per-word data (stems...) here, before any worker starts
        for w in words:
            aligner.info(w)
    tables.remember_stems(aligner.stemmer.new_stems)

    n = len(hyps)
    show = progress if progress is not None else n >= PROGRESS_FROM
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="METEOR (python)", unit="seg")
    if not workers:
        workers = _default_workers()
    workers = max(1, min(int(workers), n // MIN_SEGMENTS_PER_WORKER or 1))
    try:
        if workers == 1:
            rows = _score_segments(aligner, refs, hyps, bar)
        else:
            rows = _score_parallel(tables, paraphrases, aligner, refs, hyps, workers, bar)
    finally:
        if bar is not None:
            bar.close()
    return _best_reference(rows, [len(r) for r in refs])


def _score_parallel(tables, paraphrases, aligner, refs, hyps, workers, bar) -> np.ndarray:
    # Contiguous chunks, several per worker for balance; reassembled by position, so the result is
    # the same for any number of workers.
    n = len(hyps)
    size = max(200, -(-n // (workers * 4)))
    tasks = [(s, refs[s : s + size], hyps[s : s + size]) for s in range(0, n, size)]
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods:
        _WORKER["aligner"] = aligner  # inherited, words already normalized
        context = multiprocessing.get_context("fork")
        pool = context.Pool(workers)
    else:  # pragma: no cover - platforms without fork
        context = multiprocessing.get_context("spawn")
        pool = context.Pool(workers, initializer=_init_worker, initargs=(tables.jar, paraphrases))
    parts: dict[int, np.ndarray] = {}
    try:
        for start, part in pool.imap_unordered(_score_chunk, tasks):
            parts[start] = part
            if bar is not None:
                bar.update(min(size, n - start))
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _WORKER.pop("aligner", None)
    return np.concatenate([parts[s] for s, _, _ in tasks])
