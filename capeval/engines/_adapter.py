"""What the scale engines need from the metrics, through the metric registry (:mod:`capeval.metrics`).

The engines (``stream``, ``dask_engine``) only move chunks around; what a chunk contributes is
decided by each registered :class:`~capeval.metrics.Metric`, the same objects ``evaluate`` uses:

* :func:`fit_part` / :func:`merge_parts` / :func:`finish_state`: the corpus state that needs all
  references (document frequencies, for metrics with ``uses_document_frequencies``: exact n-gram
  rows, counts that add across parts, and ``ref_len = log(total items)`` only at the end); it
  reaches the metrics as ``options.df``, as precomputed frequencies would;
* :func:`chunk_statistics`: each metric's per-item sufficient statistics of one chunk;
* :func:`score_chunk` and :class:`RunningTotals`: what a chunk contributes (sums of statistics,
  per-item scores) and their sum over the job, in input order;
* :func:`scores_from_sums` and :func:`per_item_scores`: ``Metric.scores`` of summed statistics and
  ``Metric.per_item``; :func:`signatures_of`: ``evaluate``'s own signature builder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .._corpus import ScoringCorpus
from .._ngrams import pack_ngram_rows, packs_exactly, unpack_ngram_keys
from ..df import DocumentFrequencies, PackedLookup
from ..evaluate import build_signatures, end_metrics, start_metrics
from ..metrics import SIGMA, Options, get, resolve
from ._output import ScaleResult

CORPUS_DF = "corpus"  # the df signature of frequencies fitted on the references being scored


@dataclass(frozen=True)
class MetricPlan:
    """The metrics and options of one scoring job (what ``evaluate``'s keywords say)."""

    metrics: tuple[str, ...]  # registered names, in evaluate's order
    explicit: bool  # metrics named by the caller (an unavailable one is then an error)
    options: Options

    @classmethod
    def build(cls, metrics=None, *, tokenizer="ptb", n=4, sigma=SIGMA, df=None, meteor_options=None, allow_df_mismatch=False) -> MetricPlan:
        df = DocumentFrequencies.coerce(df, tokenizer=tokenizer, n=n, allow_mismatch=allow_df_mismatch)
        options = Options(n=n, sigma=sigma, tokenizer=tokenizer, df=df, meteor=dict(meteor_options or {}))
        return cls(tuple(m.name for m in resolve(metrics)), metrics is not None, options)

    @property
    def tokenizer(self) -> str:
        return self.options.tokenizer

    @property
    def n(self) -> int:
        return self.options.n

    @property
    def df(self) -> DocumentFrequencies | None:
        return self.options.df

    @property
    def meteor_options(self) -> Mapping:
        return self.options.meteor

    @property
    def metric_objects(self) -> list:
        return [get(name) for name in self.metrics]

    @property
    def needs_corpus_state(self) -> bool:
        """True when a first pass over all references must fit the document frequencies."""
        return self.df is None and any(m.uses_document_frequencies for m in self.metric_objects)

    def without_df(self) -> MetricPlan:
        return replace(self, options=replace(self.options, df=None))

    def without(self, names) -> MetricPlan:
        return replace(self, metrics=tuple(m for m in self.metrics if m not in names))


# -- the corpus state: document frequencies that add across parts ------------------------------------
@dataclass
class DfPart:
    """Document frequencies of some items' references: ``words``, ``grams[k-1]`` (K, k) int32 distinct
    rows of word ids, ``counts[k-1]`` (K,) int64, over ``n_items`` items."""

    words: list[str]
    grams: list[np.ndarray]
    counts: list[np.ndarray]
    n_items: int


def chunk_frequency_rows(tokenized_references: Sequence[Sequence[str]], n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(words, rows, counts)`` of one chunk's tokenized reference lists: its distinct n-grams of
    orders 1..n as (G, n) word ids into ``words`` (-1 padded), and for each the number of items whose
    references contain it (what ``DocumentFrequencies.from_tokenized`` counts, without building one)."""
    corpus = ScoringCorpus([""] * len(tokenized_references), tokenized_references)
    grams = corpus.ngrams(n)
    doc_freq = corpus.document_frequencies(n)
    present = np.flatnonzero(doc_freq > 0)
    rows = grams.gram_words(corpus.tokens, present)
    return corpus.tokens.words, rows, doc_freq[present].astype(np.int64)


def fit_part(tokenized_references: Sequence[Sequence[str]], plan: MetricPlan) -> DfPart:
    """The document-frequency part of one chunk's tokenized references."""
    words, rows, counts = chunk_frequency_rows(tokenized_references, plan.n)
    orders = (rows >= 0).sum(axis=1)
    grams = [rows[orders == k, :k].astype(np.int32) for k in range(1, plan.n + 1)]
    return DfPart(words, grams, [counts[orders == k] for k in range(1, plan.n + 1)], len(tokenized_references))


def _sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` (sorted) and the summed ``counts`` of each."""
    order = np.argsort(keys)
    keys, counts = keys[order], counts[order]
    del order
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[first], np.add.reduceat(counts, first)


def _unique_rows(rows: np.ndarray, counts: np.ndarray, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows (lexicographic order) and their summed counts: exact, no hashing."""
    if not len(rows):
        return rows, counts
    width, base = rows.shape[1], n_words + 1
    if packs_exactly(base, width):  # one int64 key per row, in the rows' lexicographic order
        keys, total = _sum_by_key(pack_ngram_rows(rows, base), counts)
        return unpack_ngram_keys(keys, width, base, dtype=rows.dtype), total
    order = np.lexsort(rows.T[::-1])  # huge vocabularies: column-wise sort
    rows, counts = rows[order], counts[order]
    first = np.flatnonzero(np.concatenate(([True], (rows[1:] != rows[:-1]).any(axis=1))))
    return rows[first], np.add.reduceat(counts, first)


def merge_parts(parts: Sequence[DfPart]) -> DfPart:
    """One part holding the summed document frequencies of ``parts`` (of disjoint item sets).

    Each part's rows are packed into keys of the merged vocabulary as they are remapped, so the rows
    of all parts are never concatenated (the merge's peak: the keys, counts and their sort order)."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    words = sorted(set().union(*(p.words for p in parts)))
    index = {w: i for i, w in enumerate(words)}
    remaps = [np.fromiter((index[w] for w in p.words), dtype=np.int32, count=len(p.words)) for p in parts]
    n_orders, base = max(len(p.grams) for p in parts), len(words) + 1
    grams, counts = [], []
    for k in range(n_orders):
        summed = np.concatenate([p.counts[k] for p in parts])
        if packs_exactly(base, k + 1) and len(summed):
            keys = np.concatenate([pack_ngram_rows(remap[p.grams[k]], base) for remap, p in zip(remaps, parts)])
            keys, total = _sum_by_key(keys, summed)
            unique = unpack_ngram_keys(keys, k + 1, base, dtype=np.int32)
        else:
            rows = np.concatenate([remap[p.grams[k]] for remap, p in zip(remaps, parts)]).reshape(-1, k + 1)
            unique, total = _unique_rows(rows, summed, len(words))
        grams.append(unique)
        counts.append(total)
    return DfPart(words, grams, counts, sum(p.n_items for p in parts))


class LeanFrequencies(PackedLookup):
    """The finished document frequencies of all references, lean: per order one sorted int64 key per
    n-gram (word ids + 1 in base ``len(words) + 1``) and an int32 count, 12 bytes per n-gram (a
    :class:`DocumentFrequencies` holds 24-40, plus its lookup index). It answers the lookups
    ``cider_scores(corpus, df=...)`` makes (``lookup``, ``ref_len``) with the same numbers and code."""

    def __init__(self, part: DfPart):
        self.words = part.words
        self.word_index = {w: i for i, w in enumerate(part.words)}
        self.n = len(part.grams)
        self.n_images = float(part.n_items)
        self.ref_len = float(np.log(self.n_images))  # as DocumentFrequencies and evaluate() compute it
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        for rows, counts in zip(part.grams, part.counts):
            keys = pack_ngram_rows(rows, len(self.words) + 1)
            if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
                order = np.argsort(keys)
                keys, counts = keys[order], counts[order]
            self.keys.append(keys)
            self.counts.append(counts.astype(np.int32 if part.n_items < 2**31 else np.int64))

    @staticmethod
    def fits(n_words: int, n: int) -> bool:
        return packs_exactly(n_words + 1, n)

    def _packed_order(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.keys[k - 1], self.counts[k - 1]

    def __len__(self) -> int:
        return int(sum(len(k) for k in self.keys))


def finish_state(part: DfPart):
    """The document frequencies of the whole corpus: ``ref_len = log(total items)`` as evaluate() has.
    Lean (:class:`LeanFrequencies`) unless the vocabulary is too large to pack an n-gram in 62 bits."""
    if LeanFrequencies.fits(len(part.words), len(part.grams)):
        return LeanFrequencies(part)
    return DocumentFrequencies(part.words, part.grams, part.counts, n_images=part.n_items, source=CORPUS_DF)


# -- per-chunk statistics ---------------------------------------------------------------------------
def start(plan: MetricPlan, n_items: int) -> tuple[dict, dict]:
    """``(handles, skipped)``: what each metric starts before scoring (METEOR's engine), as evaluate."""
    return start_metrics(plan.metric_objects, plan.options, n_items, plan.explicit, stacklevel=3)


def end(plan: MetricPlan, handles: Mapping) -> None:
    end_metrics(plan.metric_objects, handles)


def unavailable(plan: MetricPlan) -> dict[str, str]:
    """``{metric name: why it cannot run here}``, checked without starting anything."""
    reasons = {m.name: m.unavailable_reason(plan.options) for m in plan.metric_objects}
    return {name: why for name, why in reasons.items() if why}


def skipped_keys(plan: MetricPlan, reasons: Mapping[str, str]) -> dict[str, str]:
    """``{output key: reason}`` of unavailable metrics, the form of ``EvaluationResult.skipped``."""
    return {k: reasons[m.name] for m in plan.metric_objects if m.name in reasons for k in m.keys(plan.options)}


def _chunk_options(plan: MetricPlan, state: DocumentFrequencies | None) -> Options:
    """The options a chunk is scored with: the corpus-wide document frequencies as ``df``."""
    return plan.options if state is None or plan.df is not None else replace(plan.options, df=state)


def chunk_statistics(corpus: ScoringCorpus, state: DocumentFrequencies | None, plan: MetricPlan, handles: Mapping) -> tuple[dict, dict]:
    """``({metric: (N, k) float64 statistics}, {metric: signature parts})`` of one chunk.

    ``state``: the corpus document frequencies (or None with ``plan.df``); ``handles``: what
    :func:`start` returned (metrics without a handle are skipped)."""
    options = _chunk_options(plan, state)
    stats: dict[str, np.ndarray] = {}
    parts: dict[str, dict] = {}
    for metric in plan.metric_objects:
        if metric.name not in handles:
            continue
        fitted = metric.fit(corpus, options, handles[metric.name])
        stats[metric.name] = np.asarray(metric.statistics(corpus, fitted, options), dtype=np.float64)
        parts[metric.name] = metric.signature(plan.options, fitted)  # the plan's df: "corpus" when fitted here
    return stats, parts


def score_chunk(corpus: ScoringCorpus, state, plan: MetricPlan, handles: Mapping) -> dict:
    """What one chunk contributes to a job: its ids, the column sums of each metric's statistics, its
    per-item scores, the metrics' signature parts and its range of reference counts (small: this is
    what a Dask scoring task sends back)."""
    stats, parts = chunk_statistics(corpus, state, plan, handles)
    return {
        "ids": corpus.ids,
        "sums": {metric: s.sum(axis=0) for metric, s in stats.items()},
        "per_item": per_item_scores(stats, plan),
        "signature_parts": parts,
        "min_refs": int(corpus.n_refs.min()),
        "max_refs": int(corpus.n_refs.max()),
    }


class RunningTotals:
    """Chunk contributions (:func:`score_chunk`) added in input order: sums of statistics, per-item
    rows written to ``sink`` as they come, the reference-count range; then the job's scores."""

    def __init__(self, plan: MetricPlan, sink):
        self.plan, self.sink = plan, sink
        self.sums: dict[str, np.ndarray] = {}
        self.n_items = self.n_chunks = 0
        self.min_refs, self.max_refs = None, 0
        self.parts: dict = {}

    def add(self, contribution: Mapping) -> None:
        for metric, s in contribution["sums"].items():
            self.sums[metric] = self.sums[metric] + s if metric in self.sums else np.array(s, dtype=np.float64)
        self.parts = self.parts or contribution["signature_parts"]
        self.sink.write(contribution["ids"], contribution["per_item"], contribution.get("per_item_text"))
        self.n_items += len(contribution["ids"])
        self.n_chunks += 1
        low = contribution["min_refs"]
        self.min_refs = low if self.min_refs is None else min(self.min_refs, low)
        self.max_refs = max(self.max_refs, contribution["max_refs"])

    def result(self, engine: str, skipped: Mapping, details: dict):
        """The job's :class:`ScaleResult`, the per-item file committed under the job's signature."""
        signature, signatures = signatures_of(self.plan, self.min_refs, self.max_refs, self.parts)
        path = self.sink.commit(signature)
        return ScaleResult(
            scores_from_sums(self.sums, self.plan), signature, signatures, self.n_items, engine, dict(skipped), self.sink.frame(), path, details
        )


def per_item_scores(stats: Mapping[str, np.ndarray], plan: MetricPlan) -> dict[str, np.ndarray]:
    """``{output key: (N,) scores}`` in evaluate()'s column order."""
    out: dict[str, np.ndarray] = {}
    for metric in plan.metric_objects:
        if metric.name in stats:
            out.update(metric.per_item(stats[metric.name]))
    return out


def scores_from_sums(sums: Mapping[str, np.ndarray], plan: MetricPlan) -> dict[str, float]:
    """Corpus scores from the column sums of all items' statistics."""
    scores: dict[str, float] = {}
    for metric in plan.metric_objects:
        if metric.name in sums:
            scores.update({k: float(v) for k, v in metric.scores(sums[metric.name]).items()})
    return scores


def signatures_of(plan: MetricPlan, min_refs: int, max_refs: int, parts: Mapping[str, Mapping]) -> tuple[str, dict[str, str]]:
    """``(signature, {metric: signature})`` exactly as :func:`capeval.evaluate` builds them."""
    nrefs = str(min_refs) if min_refs == max_refs else f"{min_refs}-{max_refs}"
    computed = [m for m in plan.metric_objects if m.name in parts]
    return build_signatures(nrefs, plan.options, computed, parts)
