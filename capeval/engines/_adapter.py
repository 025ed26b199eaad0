"""Everything metric-specific the scale engines need, in one place, on today's metric functions.

The engines (``stream``, ``dask_engine``) only move chunks around; what a chunk contributes is
decided here, in the shape of the metric protocol:

* :func:`fit_part` / :func:`merge_parts` / :func:`finish_state`: the corpus state that needs all
  references (CIDEr's document frequencies: exact n-gram rows, counts that add across parts, and
  ``ref_len = log(total items)`` only at the end);
* :func:`chunk_statistics`: per-item sufficient statistics of one chunk, one float64 array per metric
  (mean metrics carry a count column, so the column sums of any parts add up);
* :func:`scores_from_sums` and :func:`per_item_scores`: corpus and per-item scores;
* :func:`signatures`: the same signature strings as :func:`capeval.evaluate`.

At merge time this module can be replaced by the metric registry without touching the engines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from .._corpus import ScoringCorpus
from ..bleu import bleu_from_statistics, bleu_statistics
from ..cider import SIGMA, cider_scores
from ..df import DocumentFrequencies
from ..evaluate import make_signature, metric_keys, normalize_metrics
from ..rouge import BETA, rouge_l_scores

CORPUS_DF = "corpus"  # the df signature of frequencies fitted on the references being scored


@dataclass(frozen=True)
class MetricPlan:
    """The metrics and options of one scoring job (what ``evaluate``'s keywords say)."""

    metrics: tuple[str, ...]
    explicit: bool  # metrics named by the caller (an unavailable METEOR is then an error)
    tokenizer: str = "ptb"
    n: int = 4
    sigma: float = SIGMA
    df: DocumentFrequencies | None = None  # precomputed; None: fitted on the references
    meteor_options: Mapping = field(default_factory=dict)

    @classmethod
    def build(cls, metrics=None, *, tokenizer="ptb", n=4, sigma=SIGMA, df=None, meteor_options=None) -> MetricPlan:
        from ..tokenize import TOKENIZERS

        if tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {TOKENIZERS}")
        return cls(
            tuple(normalize_metrics(metrics, n)),
            metrics is not None,
            tokenizer,
            n,
            sigma,
            DocumentFrequencies.coerce(df),
            dict(meteor_options or {}),
        )

    @property
    def needs_corpus_state(self) -> bool:
        """True when a first pass over all references must fit the document frequencies."""
        return self.df is None and any(m in ("cider_d", "cider") for m in self.metrics)

    def keys(self, skipped: Mapping = ()) -> list[str]:
        return [k for m in self.metrics for k in metric_keys(m, self.n) if k not in skipped]


# -- the corpus state: document frequencies that add across parts ------------------------------------
@dataclass
class DfPart:
    """Document frequencies of some items' references: ``words`` sorted, ``grams[k-1]`` (K, k) int32
    word ids with rows in lexicographic order, ``counts[k-1]`` (K,) int64, over ``n_items`` items."""

    words: list[str]
    grams: list[np.ndarray]
    counts: list[np.ndarray]
    n_items: int

    @property
    def nbytes(self) -> int:
        return int(sum(g.nbytes + c.nbytes for g, c in zip(self.grams, self.counts)))


def fit_part(tokenized_references: Sequence[Sequence[str]], plan: MetricPlan) -> DfPart:
    """The document-frequency part of one chunk's tokenized references."""
    df = DocumentFrequencies.from_tokenized(tokenized_references, n=plan.n)
    counts = [np.asarray(c).astype(np.int64) for c in df.counts]
    return DfPart(df.words, [np.asarray(g, dtype=np.int32) for g in df.grams], counts, len(tokenized_references))


def _pack_rows(rows: np.ndarray, bits: int) -> np.ndarray:
    key = np.zeros(len(rows), dtype=np.int64)
    for j in range(rows.shape[1]):
        key <<= bits
        key |= rows[:, j]
    return key


def _unpack_rows(keys: np.ndarray, width: int, bits: int) -> np.ndarray:
    out = np.empty((len(keys), width), dtype=np.int32)
    mask = (1 << bits) - 1
    for j in range(width - 1, -1, -1):
        out[:, j] = keys & mask
        keys = keys >> bits
    return out


def _unique_rows(rows: np.ndarray, counts: np.ndarray, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows (lexicographic order) and their summed counts: exact, no hashing."""
    if not len(rows):
        return rows, counts
    width = rows.shape[1]
    bits = max(int(n_words - 1).bit_length(), 1)
    if width * bits <= 63:  # one int64 key per row, in the rows' lexicographic order
        keys = _pack_rows(rows.astype(np.int64), bits)
        order = np.argsort(keys, kind="stable")
        keys, counts = keys[order], counts[order]
        first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        return _unpack_rows(keys[first], width, bits), np.add.reduceat(counts, first)
    order = np.lexsort(rows.T[::-1])  # huge vocabularies: column-wise sort
    rows, counts = rows[order], counts[order]
    first = np.flatnonzero(np.concatenate(([True], (rows[1:] != rows[:-1]).any(axis=1))))
    return rows[first], np.add.reduceat(counts, first)


def merge_parts(parts: Sequence[DfPart]) -> DfPart:
    """One part holding the summed document frequencies of ``parts`` (of disjoint item sets)."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    words = sorted(set().union(*(p.words for p in parts)))
    index = {w: i for i, w in enumerate(words)}
    remaps = [np.fromiter((index[w] for w in p.words), dtype=np.int32, count=len(p.words)) for p in parts]
    n_orders = max(len(p.grams) for p in parts)
    grams, counts = [], []
    for k in range(n_orders):
        rows = np.concatenate([remap[p.grams[k]] for remap, p in zip(remaps, parts)]).reshape(-1, k + 1)
        summed = np.concatenate([p.counts[k] for p in parts])
        unique, total = _unique_rows(rows, summed, len(words))
        grams.append(unique)
        counts.append(total)
    return DfPart(words, grams, counts, sum(p.n_items for p in parts))


class CorpusFrequencies:
    """The finished document frequencies of all references, lean: per order one sorted int64 key per
    n-gram (word ids + 1 in base ``len(words) + 1``) and an int32 count, 12 bytes per n-gram (a
    :class:`DocumentFrequencies` holds 24-40, plus its lookup index). It answers the lookups
    ``cider_scores(corpus, df=...)`` makes (``lookup``, ``ref_len``) with the same numbers."""

    def __init__(self, part: DfPart):
        self.words = part.words
        self.word_index = {w: i for i, w in enumerate(part.words)}
        self.n = len(part.grams)
        self.n_images = float(part.n_items)
        self.ref_len = float(np.log(self.n_images))  # as DocumentFrequencies and evaluate() compute it
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        for rows, counts in zip(part.grams, part.counts):
            keys = self._pack(rows)
            if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
                order = np.argsort(keys)
                keys, counts = keys[order], counts[order]
            self.keys.append(keys)
            self.counts.append(counts.astype(np.int32 if part.n_items < 2**31 else np.int64))

    @staticmethod
    def fits(n_words: int, n: int) -> bool:
        return (n_words + 1) ** n < 2**62

    def _pack(self, rows: np.ndarray) -> np.ndarray:
        base = len(self.words) + 1
        keys = np.zeros(len(rows), dtype=np.int64)
        for j in range(rows.shape[1]):
            keys *= base
            keys += rows[:, j].astype(np.int64) + 1
        return keys

    def lookup(self, gram_words: np.ndarray, corpus_words) -> np.ndarray:
        """Document frequency of n-grams given as (G, n) word ids of another vocabulary (-1 padded)."""
        to_own = np.array([self.word_index.get(w, -1) for w in corpus_words] + [-1], dtype=np.int64)
        gram_words = np.asarray(gram_words, dtype=np.int64)
        orders = (gram_words >= 0).sum(axis=1)
        own = to_own[gram_words]  # the -1 padding maps to the trailing -1
        out = np.zeros(len(own), dtype=np.float64)
        for k in range(1, min(self.n, own.shape[1]) + 1):
            table = self.keys[k - 1]
            rows = np.flatnonzero((orders == k) & (own[:, :k] >= 0).all(axis=1))
            if not len(rows) or not len(table):
                continue
            keys = self._pack(own[rows, :k])
            pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
            hit = table[pos] == keys
            out[rows[hit]] = self.counts[k - 1][pos[hit]]
        return out

    def __len__(self) -> int:
        return int(sum(len(k) for k in self.keys))


def finish_state(part: DfPart):
    """The document frequencies of the whole corpus: ``ref_len = log(total items)`` as evaluate() has.
    Lean (:class:`CorpusFrequencies`) unless the vocabulary is too large to pack an n-gram in 62 bits."""
    if CorpusFrequencies.fits(len(part.words), len(part.grams)):
        return CorpusFrequencies(part)
    return DocumentFrequencies(part.words, part.grams, part.counts, n_images=part.n_items, source=CORPUS_DF)


# -- per-chunk statistics ---------------------------------------------------------------------------
METEOR_COLUMNS = 23  # the jar's summable statistics; one more column holds the segment's own score


def chunk_statistics(
    corpus: ScoringCorpus,
    references: list[list[str]],
    predictions: list[str],
    state,
    plan: MetricPlan,
    meteor_pool=None,
) -> dict[str, np.ndarray]:
    """Per-item statistics of one chunk, ``{metric: (N, k) float64}``.

    ``bleu``: coco's ``[testlen, reflen, guess_1..n, correct_1..n]``; ``rouge_l``, ``cider_d``,
    ``cider``: ``[score, 1]``; ``meteor``: the jar's 23 summable statistics and the segment's score.
    ``state``: the corpus document frequencies (or ``plan.df``); ``meteor_pool``: an open pool."""
    stats: dict[str, np.ndarray] = {}
    df = plan.df if plan.df is not None else state
    for metric in plan.metrics:
        if metric == "bleu":
            stats[metric] = bleu_statistics(corpus, plan.n)
        elif metric == "rouge_l":
            stats[metric] = _with_count(rouge_l_scores(corpus))
        elif metric in ("cider_d", "cider"):
            if df is None:
                raise ValueError("CIDEr needs the corpus document frequencies: fit them first (finish_state)")
            per = cider_scores(corpus, df=df, n=plan.n, sigma=plan.sigma, defended=metric == "cider_d")
            stats[metric] = _with_count(per)
        elif metric == "meteor" and meteor_pool is not None:
            from ..meteor import meteor_segments

            result = meteor_segments(references, predictions, scorer=meteor_pool)
            stats[metric] = np.column_stack([np.asarray(result.stats, dtype=np.float64), np.asarray(result.per_item, dtype=np.float64)])
    return stats


def _with_count(per_item: np.ndarray) -> np.ndarray:
    return np.column_stack([per_item, np.ones(len(per_item))])


def sum_statistics(stats: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {metric: s.sum(axis=0) for metric, s in stats.items()}


def add_sums(total: dict[str, np.ndarray] | None, sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if total is None:
        return {m: np.array(s, dtype=np.float64) for m, s in sums.items()}
    for metric, s in sums.items():
        total[metric] = total[metric] + s
    return total


def per_item_scores(stats: Mapping[str, np.ndarray], plan: MetricPlan) -> dict[str, np.ndarray]:
    """``{output key: (N,) scores}`` in evaluate()'s column order."""
    out: dict[str, np.ndarray] = {}
    for metric in plan.metrics:
        if metric not in stats:
            continue
        s = stats[metric]
        if metric == "bleu":
            per = bleu_from_statistics(s, plan.n)
            for k, key in enumerate(metric_keys("bleu", plan.n)):
                out[key] = per[:, k]
        elif metric == "meteor":
            out["METEOR"] = s[:, METEOR_COLUMNS]
        else:
            out[metric_keys(metric)[0]] = s[:, 0]
    return out


def scores_from_sums(sums: Mapping[str, np.ndarray], plan: MetricPlan) -> dict[str, float]:
    """Corpus scores from the column sums of all items' statistics."""
    from ..meteor import meteor_scores_from_stats

    scores: dict[str, float] = {}
    for metric in plan.metrics:
        if metric not in sums:
            continue
        s = sums[metric]
        if metric == "bleu":
            total = bleu_from_statistics(s, plan.n)
            for k, key in enumerate(metric_keys("bleu", plan.n)):
                scores[key] = float(total[k])
        elif metric == "meteor":
            scores["METEOR"] = float(meteor_scores_from_stats(s[:METEOR_COLUMNS]))
        else:
            scores[metric_keys(metric)[0]] = float(s[0] / s[1])
    return scores


# -- signatures -------------------------------------------------------------------------------------
def signatures(plan: MetricPlan, min_refs: int, max_refs: int, meteor_parts: Mapping[str, str], skipped: Mapping) -> tuple[str, dict[str, str]]:
    """``(signature, {metric: signature})`` exactly as :func:`capeval.evaluate` builds them."""
    nrefs = str(min_refs) if min_refs == max_refs else f"{min_refs}-{max_refs}"
    common = {"nrefs": nrefs, "tok": plan.tokenizer}
    version = {"version": __version__}
    df_sig = CORPUS_DF if plan.df is None else plan.df.signature
    out: dict[str, str] = {}
    for metric in plan.metrics:
        if metric == "bleu":
            out[metric] = make_signature({**common, "n": plan.n, "reflen": "closest", **version})
        elif metric == "rouge_l":
            out[metric] = make_signature({**common, "beta": BETA, **version})
        elif metric in ("cider_d", "cider"):
            extra = {"sigma": plan.sigma} if metric == "cider_d" else {}
            out[metric] = make_signature({**common, "df": df_sig, "n": plan.n, **extra, **version})
        elif metric == "meteor" and "METEOR" not in skipped:
            out[metric] = make_signature({**common, **meteor_parts, **version})
    computed = [m for m in plan.metrics if not (m == "meteor" and "METEOR" in skipped)]
    overall = {**common, "df": df_sig, "n": plan.n, "sigma": plan.sigma, **meteor_parts, "metrics": "+".join(computed), **version}
    return make_signature(overall), out


def start_meteor(plan: MetricPlan, n_items: int):
    """An open METEOR pool (when METEOR is wanted), or why it is skipped (a string), or None."""
    if "meteor" not in plan.metrics:
        return None
    from ..evaluate import _start_meteor

    return _start_meteor(n_items, plan.explicit, plan.meteor_options)


def meteor_signature_parts(pool) -> dict[str, str]:
    from ..evaluate import _jar_tag
    from ..meteor import FLAGS, VERSION

    jar = str(getattr(pool, "jar", "") or "")
    return {"meteor": f"{VERSION} {FLAGS}", **({"jar": _jar_tag(jar)} if jar else {})}
