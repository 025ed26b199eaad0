"""``capeval.evaluate``: validate, tokenize once, encode once, score every registered metric asked for.

Output keys and scale are pycocoevalcap's: ``Bleu_1``..``Bleu_4``, ``METEOR``, ``ROUGE_L``, and
``CIDEr-D`` for what pycocoevalcap calls "CIDEr" (the defended variant). ``CIDEr`` here is the
*original* CIDEr of vrama91/cider, reported only when asked for. Nothing in this module knows a
metric by name: names, keys, statistics and signatures come from :mod:`capeval.metrics`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._corpus import Prepared, prepare
from ._inputs import check_mappings
from ._version import __version__
from .df import DocumentFrequencies
from .errors import MetricUnavailableError
from .metrics import SIGMA, Options, default_names, make_signature, names, resolve

__all__ = ["EvaluationResult", "MetricUnavailableWarning", "evaluate", "normalize_metrics", "prepare"]


def __getattr__(name):  # the registry's current names (a metric may be registered later)
    if name == "METRICS":
        return names()
    if name == "DEFAULT_METRICS":
        return default_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class MetricUnavailableWarning(UserWarning):
    """A default metric was skipped (METEOR without Java); the result says why."""


def normalize_metrics(metrics: str | Sequence[str] | None) -> list[str]:
    """Canonical metric names from names, aliases or output keys, in the registry's order."""
    return [m.name for m in resolve(metrics)]


# -- results --------------------------------------------------------------------------------------
class PerItemColumns:
    """Per-item scores before they become a DataFrame: ids and one array per output key."""

    def __init__(self, ids: list, columns: dict[str, np.ndarray]):
        self.ids, self.columns = ids, columns

    def frame(self):
        import pandas as pd  # only when per_item is read: evaluate itself never pays pandas' import

        return pd.DataFrame(self.columns, index=pd.Index(self.ids, name="image_id"))


class ScoresMapping:
    """Results read like their ``scores`` dict: ``result["CIDEr-D"]``, ``for key in result``, ``.items()``."""

    scores: dict[str, float]
    signature: str

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def __iter__(self):
        return iter(self.scores)

    def items(self):
        return self.scores.items()

    def _repr(self, head: str) -> str:
        body = ", ".join(f"{k}: {v:.4f}" for k, v in self.scores.items())
        return f"{head}({body} | {self.signature})"


@dataclass
class EvaluationResult(ScoresMapping):
    """Corpus scores (pycocoevalcap's keys and scale), per-item scores, statistics, signature.

    ``per_item``: a pandas DataFrame indexed by id, one column per output key (built on first
    access). ``statistics[metric name]``: the per-item sufficient statistics ``(N, k)`` of each
    metric (see :mod:`capeval.metrics.base`), from which :mod:`capeval.stats` resamples."""

    scores: dict[str, float]
    per_item_data: object = field(repr=False)  # a pandas.DataFrame, or PerItemColumns until first read
    signature: str = ""
    signatures: dict[str, str] = field(default_factory=dict)
    statistics: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    skipped: dict[str, str] = field(default_factory=dict)  # metric key -> why it is absent
    tokenized: Prepared | None = field(default=None, repr=False)

    @property
    def per_item(self):
        if isinstance(self.per_item_data, PerItemColumns):
            self.per_item_data = self.per_item_data.frame()
        return self.per_item_data

    def __repr__(self) -> str:
        return self._repr("EvaluationResult")


def evaluate(
    refs: Mapping,
    preds: Mapping,
    metrics: str | Sequence[str] | None = None,
    *,
    tokenizer: str = "ptb",
    df: DocumentFrequencies | str | None = None,
    n: int = 4,
    sigma: float = SIGMA,
    strict: bool = True,
    meteor_options: Mapping | None = None,
    allow_df_mismatch: bool = False,
) -> EvaluationResult:
    """Score predictions against references.

    ``refs``: ``{id: [reference captions]}``; ``preds``: ``{id: caption}`` (or ``{id: [caption]}``).
    ``metrics``: registered names (``bleu, meteor, rouge_l, cider_d, cider``; case-insensitive,
    aliases and output keys accepted); by default coco's set ``bleu, meteor, rouge_l, cider_d``, where
    a metric that cannot run here (METEOR without Java) is skipped with a
    :class:`MetricUnavailableWarning` and a reason in ``result.skipped``. Asking for it explicitly
    raises (``MeteorUnavailableError``) instead.
    ``tokenizer``: ``ptb`` (pure Python, pycocoevalcap's tokens), ``corenlp`` (the jar), ``none``.
    ``df``: precomputed :class:`DocumentFrequencies` (or a path to one) for CIDEr / CIDEr-D; by
    default the references being scored, as in pycocoevalcap. Counts built with another tokenizer
    or a smaller ``n`` are refused (:class:`~capeval.errors.DocumentFrequencyMismatchError`: the
    numbers would silently change) unless ``allow_df_mismatch=True``.
    ``meteor_options``: keywords for :class:`capeval.meteor.Meteor` (``jar``, ``java``, ``workers``,
    ``heap``, ``timeout``...), ``progress``, or ``scorer=`` an open ``Meteor`` pool to reuse across
    calls (its JVMs then stay up). Otherwise a pool is started at the beginning of the call, so the
    JVMs load while the other metrics are computed, and closed at its end.
    Bad option values (``n < 1``, ``sigma`` not finite and positive, an unknown tokenizer or metric)
    raise :class:`~capeval.errors.OptionError` before any work.
    """
    explicit = metrics is not None
    wanted = resolve(metrics)
    options = Options(n=n, sigma=sigma, tokenizer=tokenizer, df=DocumentFrequencies.coerce(df, tokenizer=tokenizer, n=n, allow_mismatch=allow_df_mismatch), meteor=meteor_options or {})
    check_mappings(refs, preds)
    handles: dict[str, object] = {}
    try:
        handles, skipped = start_metrics(wanted, options, len(refs), explicit, stacklevel=3)
        computed = [m for m in wanted if m.name in handles]
        return _score(prepare(refs, preds, tokenizer=tokenizer, strict=strict), computed, handles, options, skipped)
    finally:
        end_metrics(wanted, handles)


def start_metrics(wanted, options: Options, n_items: int, explicit: bool, stacklevel: int = 2):
    """``(handles, skipped)``: what each metric's :meth:`~capeval.metrics.Metric.begin` started
    (METEOR's JVMs load for seconds: started before the rest), and the output keys of metrics that
    cannot run here with the reason (only when the metrics were not named: then it raises)."""
    handles: dict[str, object] = {}
    skipped: dict[str, str] = {}
    try:
        for metric in wanted:
            try:
                handles[metric.name] = metric.begin(options, n_items)
            except MetricUnavailableError as exc:
                if explicit:
                    raise
                label = metric.display_name(metric.keys(options)[0])
                warnings.warn(f"{label} skipped: {exc}", MetricUnavailableWarning, stacklevel=stacklevel + 1)
                skipped.update(dict.fromkeys(metric.keys(options), str(exc)))
    except BaseException:
        end_metrics(wanted, handles)
        raise
    return handles, skipped


def end_metrics(wanted, handles: Mapping) -> None:
    """Release what :func:`start_metrics` started."""
    for metric in wanted:
        if metric.name in handles:
            metric.end(handles[metric.name])


def build_signatures(nrefs: str, options: Options, computed, parts: Mapping[str, Mapping]) -> tuple[str, dict[str, str]]:
    """``(overall signature, {metric name: signature})`` from each computed metric's signature parts:
    the one place result signatures are assembled (evaluate and the scale engines)."""
    common = {"nrefs": nrefs, "tok": options.tokenizer}
    version = {"version": __version__}
    headline: dict[str, object] = {}
    signatures: dict[str, str] = {}
    for metric in computed:
        metric_parts = parts[metric.name]
        signatures[metric.name] = make_signature({**common, **metric_parts, **version})
        headline.update({k: metric_parts[k] for k in metric.headline if k in metric_parts})
    overall = {**common, **options.signature(), **headline, "metrics": "+".join(m.name for m in computed), **version}
    return make_signature(overall), signatures


def _score(prepared: Prepared, computed, handles, options: Options, skipped) -> EvaluationResult:
    corpus = prepared.corpus
    scores: dict[str, float] = {}
    columns: dict[str, np.ndarray] = {}
    statistics: dict[str, np.ndarray] = {}
    parts: dict[str, dict] = {}
    for metric in computed:
        state = metric.fit(corpus, options, handles[metric.name])
        stats = metric.statistics(corpus, state, options)
        totals, per_item = metric.results(stats, state)
        statistics[metric.name] = stats
        scores.update(totals)
        columns.update(per_item)
        parts[metric.name] = metric.signature(options, state)
    signature, signatures = build_signatures(prepared.nrefs, options, computed, parts)
    per_item = PerItemColumns(prepared.ids, columns)
    return EvaluationResult(scores, per_item, signature, signatures, statistics, skipped, prepared)
