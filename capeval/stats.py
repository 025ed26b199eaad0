"""Bootstrap confidence intervals and paired significance tests over images, vectorized.

    result = capeval.evaluate(refs, preds)
    ci = bootstrap_ci(result, n_resamples=1000, seed=12345)
    ci["CIDEr-D"].low, ci["CIDEr-D"].high, ci.to_frame()

    paired_bootstrap(result_a, result_b)            # same ids, same references
    approximate_randomization(result_a, result_b)

Every resample is a vector of per-image weights (how often each image was drawn); a whole batch of
resamples is a ``(B, N)`` weight matrix ``W``, and each metric's resampled scores are its registered
``Metric.scores(W @ X)`` for its per-image sufficient statistics ``X = result.statistics[name]``
(see :mod:`capeval.metrics.base`); no metric is known here by name:

* BLEU and METEOR are *corpus* statistics (``testlen, reflen, guess_1..n, correct_1..n``; the jar's
  23 segment statistics): the corpus formula is applied to the resampled sums. Averaging per-image
  BLEU would be a different metric.
* CIDEr-D, CIDEr and ROUGE-L are means of per-image scores (the document frequencies stay those of
  the full reference set): ``X`` is ``[score, 1]`` per image, so ``W @ X`` is (total, count).

Approximate randomization swaps the two systems' outputs image by image: with ``S`` a ``(T, N)``
0/1 swap matrix, system A's swapped statistics are ``sum(X_a) + S @ (X_b - X_a)``.

All draws come from ``numpy.random.default_rng(seed)``, so equal arguments give equal results.
Intervals are percentile intervals; p-values are two-sided with the add-one correction
``(1 + #{extreme}) / (1 + B)``, so never zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError, MissingIdError, OptionError, format_ids
from .metrics import MeanMetric, Metric, make_signature, mean_statistics, metric_of_key

DEFAULT_SEED = 12345
_CHUNK_ELEMENTS = 1 << 22  # weights per chunk: (chunk, N) float64 stays near 32 MB


# -- per-metric aggregation, from the registry ----------------------------------------------------
@dataclass
class _Block:
    """One metric's per-image statistics ``X`` (N, k) and the requested output keys it aggregates to."""

    keys: list[str]
    data: np.ndarray
    metric: Metric

    def take(self, rows: np.ndarray) -> _Block:
        return _Block(self.keys, self.data[rows], self.metric)

    def scores(self, sums: np.ndarray) -> np.ndarray:
        """(..., len(keys)) values from summed statistics (..., k)."""
        values = self.metric.scores(sums)
        return np.stack([np.asarray(values[k], dtype=np.float64) for k in self.keys], axis=-1)


def _blocks(result, keys: Iterable[str] | None = None) -> tuple[list[_Block], dict[str, str]]:
    """One block per metric for the requested output keys (all of ``result.scores`` by default).

    Statistics come from ``result.statistics[metric name]``; a mean metric without them (a result
    built by hand) uses its per-item column. A metric that is neither is skipped, with the reason."""
    per_item = result.per_item
    statistics = getattr(result, "statistics", None) or {}
    available = list(getattr(result, "scores", None) or per_item.columns)
    wanted = list(available if keys is None else keys)
    unknown = [k for k in wanted if k not in available and k not in per_item.columns]
    if unknown:
        raise KeyError(f"no scores for {unknown}; the result has {available}")
    by_metric: dict[str, tuple[Metric, list[str]]] = {}
    skipped: dict[str, str] = {}
    for key in wanted:
        metric = metric_of_key(key)
        if metric is None:
            skipped[key] = f"{key!r} is no registered metric's output key"
            continue
        by_metric.setdefault(metric.name, (metric, []))[1].append(key)
    blocks: list[_Block] = []
    for name, (metric, metric_keys) in by_metric.items():
        stats = statistics.get(name)
        if stats is None and isinstance(metric, MeanMetric) and metric_keys[0] in per_item.columns:
            stats = mean_statistics(per_item[metric_keys[0]].to_numpy(dtype=np.float64))
        if stats is None:
            skipped.update(dict.fromkeys(metric_keys, f"no {name} statistics in the result (result.statistics[{name!r}])"))
            continue
        blocks.append(_Block(metric_keys, np.asarray(stats, dtype=np.float64), metric))
    order = {k: i for i, k in enumerate(wanted)}
    blocks.sort(key=lambda b: order[b.keys[0]])
    return blocks, skipped


def _check_resampling(count, alpha, what: str = "n_resamples") -> None:
    """Validated up front: a positive integer count, alpha in (0, 1)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise OptionError(f"{what} must be a positive integer, got {count!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise OptionError(f"alpha must be in (0, 1), got {alpha!r}")


def _rows(result, items) -> np.ndarray | None:
    """Positions in ``result.per_item`` of ``items``: a boolean mask or a list of ids."""
    if items is None:
        return None
    index = result.per_item.index
    if isinstance(items, np.ndarray) and items.dtype == bool or (isinstance(items, (list, tuple)) and items and all(isinstance(x, (bool, np.bool_)) for x in items)):
        mask = np.asarray(items, dtype=bool)
        if len(mask) != len(index):
            raise ValueError(f"boolean mask of length {len(mask)} for {len(index)} items")
        return np.flatnonzero(mask)
    items = list(items)
    positions = index.get_indexer(items)
    if (positions < 0).any():
        raise MissingIdError(f"ids not in the result: {format_ids([i for i, p in zip(items, positions) if p < 0])}")
    return positions


def _chunks(n_total: int, n_items: int) -> Iterable[int]:
    size = max(1, _CHUNK_ELEMENTS // max(n_items, 1))
    done = 0
    while done < n_total:
        step = min(size, n_total - done)
        yield step
        done += step


def _bootstrap_weights(rng: np.random.Generator, count: int, n_items: int) -> np.ndarray:
    """(count, n_items) multiplicities of a uniform resample with replacement, one row per resample."""
    draws = rng.integers(0, n_items, size=(count, n_items))
    draws += (np.arange(count) * n_items)[:, None]
    return np.bincount(draws.ravel(), minlength=count * n_items).reshape(count, n_items).astype(np.float64)


def _evaluate_blocks(blocks: Sequence[_Block], weights: np.ndarray) -> np.ndarray:
    """(B, total keys) metric values for a (B, N) weight matrix: each metric's scores of ``W @ X``."""
    return np.concatenate([b.scores(weights @ b.data) for b in blocks], axis=1)


def _full_scores(blocks: Sequence[_Block]) -> np.ndarray:
    return np.concatenate([b.scores(b.data.sum(axis=0)) for b in blocks])


def corpus_scores(result, items=None, metrics: Iterable[str] | None = None) -> dict[str, float]:
    """Corpus scores of a subset of the images (``items``: ids, positions or a boolean mask).

    BLEU (and METEOR) from the subset's summed statistics, the others as the subset's mean. With
    ``items=None`` this reproduces ``result.scores``.
    """
    blocks, _ = _blocks(result, metrics)
    rows = _rows(result, items)
    if rows is not None:
        if not len(rows):
            raise InputError("no items selected")
        blocks = [b.take(rows) for b in blocks]
    keys = [k for b in blocks for k in b.keys]
    return dict(zip(keys, map(float, _full_scores(blocks))))


# -- results --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval around the observed score."""

    metric: str
    score: float
    low: float
    high: float
    std: float
    alpha: float

    def __iter__(self):  # low, high = interval
        return iter((self.low, self.high))

    def __str__(self) -> str:
        return f"{self.metric} {self.score:.4f} [{self.low:.4f}, {self.high:.4f}] ({1 - self.alpha:.0%} CI)"


@dataclass
class BootstrapResult:
    """Confidence intervals per metric key, with the settings that made them."""

    intervals: dict[str, Interval]
    n_resamples: int
    seed: int | None
    alpha: float
    n_items: int
    skipped: dict[str, str] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Interval:
        return self.intervals[key]

    def __contains__(self, key) -> bool:
        return key in self.intervals

    def __iter__(self):
        return iter(self.intervals)

    @property
    def signature(self) -> str:
        return make_signature({"ci": "percentile", "resamples": self.n_resamples, "seed": self.seed, "alpha": f"{self.alpha:g}", "n": self.n_items})

    def to_frame(self):
        import pandas as pd

        rows = {k: {"score": v.score, "low": v.low, "high": v.high, "std": v.std} for k, v in self.intervals.items()}
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=["score", "low", "high", "std"])
        frame.index.name = "metric"
        return frame

    def to_dict(self) -> dict:
        return {
            "intervals": {k: {"score": v.score, "low": v.low, "high": v.high, "std": v.std} for k, v in self.intervals.items()},
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "alpha": self.alpha,
            "n_items": self.n_items,
            "skipped": dict(self.skipped),
            "signature": self.signature,
        }


def bootstrap_ci(
    result,
    *,
    n_resamples: int = 1000,
    seed: int | None = DEFAULT_SEED,
    alpha: float = 0.05,
    metrics: Iterable[str] | None = None,
    items=None,
    keep_samples: bool = False,
) -> BootstrapResult:
    """Percentile bootstrap intervals over images for every metric of ``result``.

    ``result``: a :class:`capeval.EvaluationResult` (anything with ``per_item``, ``statistics`` and
    ``scores``). ``metrics``: output keys (default: all of ``result.scores``). ``items``: resample
    only these images (ids, positions or a boolean mask), e.g. one category. Metrics that cannot be
    resampled faithfully (METEOR without a corpus formula from statistics) are left out and named
    in ``.skipped``.
    """
    _check_resampling(n_resamples, alpha)
    blocks, skipped = _blocks(result, metrics)
    rows = _rows(result, items)
    if rows is not None:
        blocks = [b.take(rows) for b in blocks]
    n_items = len(rows) if rows is not None else len(result.per_item)
    if n_items == 0:
        raise InputError("no items to resample")
    keys = [k for b in blocks for k in b.keys]
    observed = _full_scores(blocks) if blocks else np.zeros(0)
    if rows is None:
        scores = getattr(result, "scores", {})
        observed = np.array([scores.get(k, v) for k, v in zip(keys, observed)], dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples = np.empty((n_resamples, len(keys)), dtype=np.float64)
    done = 0
    if blocks:
        for step in _chunks(n_resamples, n_items):
            samples[done : done + step] = _evaluate_blocks(blocks, _bootstrap_weights(rng, step, n_items))
            done += step
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2], axis=0) if keys else (np.zeros(0), np.zeros(0))
    std = samples.std(axis=0, ddof=1) if n_resamples > 1 else np.zeros(len(keys))
    intervals = {
        k: Interval(k, float(observed[j]), float(low[j]), float(high[j]), float(std[j]), alpha) for j, k in enumerate(keys)
    }
    kept = {k: samples[:, j].copy() for j, k in enumerate(keys)} if keep_samples else {}
    return BootstrapResult(intervals, n_resamples, seed, alpha, n_items, skipped, kept)


# -- paired tests ---------------------------------------------------------------------------------
@dataclass
class Comparison:
    """A paired significance test of system A against system B, one row per metric."""

    method: str
    table: object  # pandas.DataFrame: score_a, score_b, delta, p_value[, ci_low, ci_high] per metric
    n_items: int
    n_resamples: int
    seed: int | None
    alpha: float
    skipped: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> dict:
        return self.table.loc[key].to_dict()

    @property
    def signature(self) -> str:
        name = "paired-bootstrap" if self.method == "paired_bootstrap" else "approximate-randomization"
        return make_signature({"test": name, "resamples": self.n_resamples, "seed": self.seed, "n": self.n_items})

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "metrics": {k: {c: float(v) for c, v in row.items()} for k, row in self.table.to_dict(orient="index").items()},
            "n_items": self.n_items,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "alpha": self.alpha,
            "skipped": dict(self.skipped),
            "signature": self.signature,
        }

    def __repr__(self) -> str:
        return f"Comparison({self.method}, {self.signature})\n{self.table}"


def _paired_blocks(result_a, result_b, metrics):
    ids_a = list(result_a.per_item.index)
    ids_b = list(result_b.per_item.index)
    order = None
    if ids_a != ids_b:
        missing = [i for i in ids_a if i not in set(ids_b)]
        extra = [i for i in ids_b if i not in set(ids_a)]
        if missing or extra or len(ids_a) != len(ids_b):
            raise MissingIdError(
                f"the two results cover different images: {len(missing)} only in A {format_ids(missing)}, "
                f"{len(extra)} only in B {format_ids(extra)}"
            )
        position = {i: p for p, i in enumerate(ids_b)}
        order = np.array([position[i] for i in ids_a], dtype=np.int64)
    tok_a, tok_b = getattr(result_a, "tokenized", None), getattr(result_b, "tokenized", None)
    if tok_a is not None and tok_b is not None:
        refs_b = tok_b.references if order is None else [tok_b.references[p] for p in order]
        if tok_a.references != refs_b:
            bad = [i for i, x, y in zip(ids_a, tok_a.references, refs_b) if x != y]
            raise InputError(f"the two results were scored against different references (ids {format_ids(bad)})")
    for metric, sig in (getattr(result_a, "signatures", None) or {}).items():
        other = (getattr(result_b, "signatures", None) or {}).get(metric)
        if other is not None and other != sig:
            raise InputError(f"the two results were scored with different {metric} settings: {sig!r} vs {other!r}")
    keys_b = set(getattr(result_b, "scores", None) or result_b.per_item.columns)
    wanted = [k for k in (metrics or list(getattr(result_a, "scores", None) or result_a.per_item.columns)) if k in keys_b]
    blocks_a, skipped = _blocks(result_a, wanted)
    blocks_b, skipped_b = _blocks(result_b, [k for b in blocks_a for k in b.keys])
    skipped.update(skipped_b)
    if order is not None:
        blocks_b = [b.take(order) for b in blocks_b]
    return blocks_a, blocks_b, skipped, len(ids_a)


def _comparison_table(keys, score_a, score_b, p_values, extra=None):
    import pandas as pd

    data = {"score_a": score_a, "score_b": score_b, "delta": score_a - score_b, "p_value": p_values}
    data.update(extra or {})
    frame = pd.DataFrame(data, index=pd.Index(keys, name="metric"))
    return frame


def paired_bootstrap(
    result_a,
    result_b,
    *,
    n_resamples: int = 1000,
    seed: int | None = DEFAULT_SEED,
    alpha: float = 0.05,
    metrics: Iterable[str] | None = None,
) -> Comparison:
    """Paired bootstrap over images (both systems resampled with the same images).

    ``p_value``: two-sided, from the resampled differences centred on their mean (the null
    distribution), ``(1 + #{|d* - mean(d*)| >= |d|}) / (1 + B)``; ``ci_low``/``ci_high``: the
    percentile interval of the difference A - B.
    """
    _check_resampling(n_resamples, alpha)
    blocks_a, blocks_b, skipped, n_items = _paired_blocks(result_a, result_b, metrics)
    keys = [k for b in blocks_a for k in b.keys]
    observed_a, observed_b = _full_scores(blocks_a), _full_scores(blocks_b)
    observed = observed_a - observed_b
    rng = np.random.default_rng(seed)
    deltas = np.empty((n_resamples, len(keys)), dtype=np.float64)
    done = 0
    for step in _chunks(n_resamples, n_items):
        weights = _bootstrap_weights(rng, step, n_items)
        deltas[done : done + step] = _evaluate_blocks(blocks_a, weights) - _evaluate_blocks(blocks_b, weights)
        done += step
    centred = np.abs(deltas - deltas.mean(axis=0))
    extreme = (centred >= np.abs(observed) - 1e-12).sum(axis=0)
    p_values = (1.0 + extreme) / (1.0 + n_resamples)
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2], axis=0)
    table = _comparison_table(keys, observed_a, observed_b, p_values, {"ci_low": low, "ci_high": high})
    return Comparison("paired_bootstrap", table, n_items, n_resamples, seed, alpha, skipped)


def approximate_randomization(
    result_a,
    result_b,
    *,
    n_trials: int = 10000,
    seed: int | None = DEFAULT_SEED,
    metrics: Iterable[str] | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """Approximate randomization: swap the systems' outputs image by image with probability 1/2.

    ``p_value = (1 + #{|score(A') - score(B')| >= |score(A) - score(B)|}) / (1 + trials)``.
    BLEU and METEOR are recomputed from the swapped sufficient statistics, the others from the
    swapped per-image scores.
    """
    _check_resampling(n_trials, alpha, "n_trials")
    blocks_a, blocks_b, skipped, n_items = _paired_blocks(result_a, result_b, metrics)
    keys = [k for b in blocks_a for k in b.keys]
    observed_a, observed_b = _full_scores(blocks_a), _full_scores(blocks_b)
    observed = np.abs(observed_a - observed_b)
    rng = np.random.default_rng(seed)
    extreme = np.zeros(len(keys), dtype=np.int64)
    for step in _chunks(n_trials, n_items):
        packed = np.frombuffer(rng.bytes(step * ((n_items + 7) // 8)), dtype=np.uint8).reshape(step, -1)
        swaps = np.unpackbits(packed, axis=1, count=n_items).astype(np.float64)  # fair coins, 8 per byte
        extreme += (np.abs(_swapped_differences(blocks_a, blocks_b, swaps)) >= observed - 1e-12).sum(axis=0)
    p_values = (1.0 + extreme) / (1.0 + n_trials)
    table = _comparison_table(keys, observed_a, observed_b, p_values)
    return Comparison("approximate_randomization", table, n_items, n_trials, seed, alpha, skipped)


def _swapped_differences(blocks_a, blocks_b, swaps: np.ndarray) -> np.ndarray:
    """score(A') - score(B') for each row of ``swaps`` (T, N): 1 where the two outputs trade places."""
    values = []
    for block_a, block_b in zip(blocks_a, blocks_b):
        shift = swaps @ (block_b.data - block_a.data)
        swapped_a = block_a.scores(block_a.data.sum(axis=0) + shift)
        swapped_b = block_b.scores(block_b.data.sum(axis=0) - shift)
        values.append(swapped_a - swapped_b)
    return np.concatenate(values, axis=1)


def compare(result_a, result_b, method: str = "paired_bootstrap", **kwargs) -> Comparison:
    """``paired_bootstrap`` (``"bootstrap"``) or ``approximate_randomization`` (``"ar"``)."""
    name = method.lower().replace("-", "_")
    if name in ("paired_bootstrap", "bootstrap", "bs"):
        return paired_bootstrap(result_a, result_b, **kwargs)
    if name in ("approximate_randomization", "ar", "randomization"):
        if "n_resamples" in kwargs:
            kwargs["n_trials"] = kwargs.pop("n_resamples")
        return approximate_randomization(result_a, result_b, **kwargs)
    raise OptionError(f"unknown method {method!r}; expected 'paired_bootstrap' or 'approximate_randomization'")


__all__ = [
    "DEFAULT_SEED",
    "BootstrapResult",
    "Comparison",
    "Interval",
    "approximate_randomization",
    "bootstrap_ci",
    "compare",
    "corpus_scores",
    "paired_bootstrap",
]
