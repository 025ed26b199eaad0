"""The metric protocol and the registry.

A :class:`Metric` turns the shared encoded corpus into per-item *sufficient statistics* (an ``(N, k)``
float64 array) and those into scores. Scores come from the column sums of any subset of rows, so
statistics of parts of a corpus combine by addition into the whole corpus' scores (when the parts were
scored with the same fitted state, e.g. CIDEr's document frequencies):

    state = metric.fit(corpus, options)                  # corpus state from the references, or None
    stats = metric.statistics(corpus, state, options)    # (N, k)
    metric.scores(stats.sum(axis=0))                     # {key: corpus score}
    metric.per_item(stats)                               # {key: (N,) per-item scores}

Mean metrics (ROUGE-L, CIDEr-D, CIDEr) carry a count column: ``[score, 1]`` per item. BLEU's rows are
coco's ``testlen, reflen, guess_1..n, correct_1..n``; METEOR's the jar's 23 segment statistics.

``evaluate``, ``stats``, ``report``, ``compat`` and the command line take names, output keys, display
names and aggregation from the registry (:func:`register`, :func:`get`, :func:`names`,
:func:`default_names`), so a metric is added by registering one object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._inputs import check_choice, check_n, check_sigma
from ..errors import OptionError
from ..tokenize import TOKENIZERS

SIGMA = 6.0  # CIDEr-D's length penalty width (pycocoevalcap's default); the one definition
DEFAULT_N = 4


def make_signature(parts: Mapping[str, object]) -> str:
    """``key:value|key:value``: the one place signatures are written (sacrebleu's style)."""
    return "|".join(f"{k}:{v}" for k, v in parts.items())


@dataclass(frozen=True)
class Options:
    """Scoring options shared by every metric, validated once when built."""

    n: int = DEFAULT_N
    sigma: float = SIGMA
    tokenizer: str = "ptb"
    df: object = None  # capeval.df.DocumentFrequencies or None (the references being scored)
    meteor: Mapping = field(default_factory=dict)  # keywords for capeval.meteor.Meteor, "scorer", "progress"

    def __post_init__(self):
        object.__setattr__(self, "n", check_n(self.n))
        object.__setattr__(self, "sigma", check_sigma(self.sigma))
        check_choice(self.tokenizer, TOKENIZERS, "tokenizer")
        if self.meteor is None:
            object.__setattr__(self, "meteor", {})
        elif not isinstance(self.meteor, Mapping):
            raise OptionError(f"meteor_options must be a mapping, got {type(self.meteor).__name__}")

    @property
    def df_signature(self) -> str:
        return "corpus" if self.df is None else self.df.signature

    def signature(self) -> dict:
        """The options every result's overall signature names."""
        return {"df": self.df_signature, "n": self.n, "sigma": self.sigma}


class Metric:
    """One metric: names, output keys, statistics and their aggregation. Subclass and :func:`register`.

    Class attributes: ``name`` (canonical, lower case), ``aliases``, ``default`` (part of coco's set),
    ``display`` (output key -> display name), ``report_rank`` (column order in reports: lower first),
    ``coco`` ((pycocoevalcap's scorer name, {output key: pycocoevalcap key}) or None), ``headline``
    (signature parts carried into the overall signature).
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    default: bool = False
    display: Mapping[str, str] = {}
    report_rank: int = 100
    coco: tuple[str, Mapping[str, str]] | None = None
    headline: tuple[str, ...] = ()
    # fit() counts document frequencies over every reference of the corpus (CIDEr): an engine that
    # scores a corpus in parts counts them once over all parts and passes them as ``options.df``
    uses_document_frequencies: bool = False

    # -- names and keys ------------------------------------------------------------------------------
    def keys(self, options: Options | None = None) -> list[str]:
        """Output keys, in order."""
        raise NotImplementedError

    def owns_key(self, key: str) -> bool:
        """Whether ``key`` is one of this metric's output keys under some options."""
        return key in self.keys(Options())

    def display_name(self, key: str) -> str:
        return self.display.get(key, key)

    def key_rank(self, key: str) -> int:
        """Position of ``key`` among this metric's keys (report column order)."""
        keys = self.keys(Options())
        return keys.index(key) if key in keys else len(keys)

    # -- life cycle ----------------------------------------------------------------------------------
    def begin(self, options: Options, n_items: int):
        """Start what must run before the corpus is ready (METEOR's JVMs); raise
        :class:`~capeval.errors.MetricUnavailableError` if the metric cannot run here."""
        return None

    def unavailable_reason(self, options: Options) -> str | None:
        """Why this metric cannot run here (checked without starting anything), or None."""
        return None

    def end(self, handle) -> None:
        """Release what :meth:`begin` started."""

    def fit(self, corpus, options: Options, handle=None):
        """Corpus state fitted from the references (CIDEr's document frequencies), or None."""
        return None

    def statistics(self, corpus, state, options: Options) -> np.ndarray:
        """Per-item sufficient statistics, float64 ``(N, k)``."""
        raise NotImplementedError

    def scores(self, sums: np.ndarray) -> dict[str, float]:
        """Scores from column sums ``(k,)`` of any subset of rows; also vectorized over ``(..., k)``."""
        raise NotImplementedError

    def per_item(self, stats: np.ndarray) -> dict[str, np.ndarray]:
        """Per-item scores ``{key: (N,)}`` (by default each row's own :meth:`scores`)."""
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.scores(np.asarray(stats, dtype=np.float64)).items()}

    def results(self, stats: np.ndarray, state=None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """``(corpus scores, per-item scores)`` of a whole scored corpus, as ``evaluate`` reports them:
        by default :meth:`scores` of the column sums and :meth:`per_item`."""
        totals = {k: float(v) for k, v in self.scores(stats.sum(axis=0)).items()}
        return totals, self.per_item(stats)

    def signature(self, options: Options, state=None) -> dict:
        """The settings that determine this metric's numbers, as signature parts."""
        return {}

    def __repr__(self) -> str:
        return f"<metric {self.name}: {', '.join(self.keys(Options()))}>"


class MeanMetric(Metric):
    """A metric whose corpus score is the mean of per-item scores: statistics ``[score, 1]`` per item."""

    key: str = ""

    def keys(self, options: Options | None = None) -> list[str]:
        return [self.key]

    def item_scores(self, corpus, state, options: Options) -> np.ndarray:
        """Per-item scores ``(N,)``."""
        raise NotImplementedError

    def statistics(self, corpus, state, options: Options) -> np.ndarray:
        return mean_statistics(self.item_scores(corpus, state, options))

    def scores(self, sums: np.ndarray) -> dict[str, float]:
        sums = np.asarray(sums, dtype=np.float64)
        return {self.key: sums[..., 0] / sums[..., 1]}


def mean_statistics(item_scores: np.ndarray) -> np.ndarray:
    """``[score, 1]`` rows: sums give (total, count), whose ratio is the mean of any subset."""
    out = np.ones((len(item_scores), 2), dtype=np.float64)
    out[:, 0] = item_scores
    return out


# -- the registry ---------------------------------------------------------------------------------
_REGISTRY: dict[str, Metric] = {}


def _canonical(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def register(metric: Metric, *, replace: bool = False) -> Metric:
    """Add a metric. Its name and aliases must not collide with another metric's (unless ``replace``)."""
    if not metric.name or _canonical(metric.name) != metric.name:
        raise OptionError(f"a metric name is lower case without '-', got {metric.name!r}")
    for alias in (metric.name, *metric.aliases):
        owner = _lookup_name(alias)
        if owner is not None and owner.name != metric.name:
            raise OptionError(f"metric {metric.name!r}: {alias!r} already names metric {owner.name!r}")
    if metric.name in _REGISTRY and not replace:
        raise OptionError(f"metric {metric.name!r} is already registered (replace=True to replace it)")
    _REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> Metric:
    """Remove a metric (tests, plug-ins); returns it."""
    return _REGISTRY.pop(get(name).name)


def _lookup_name(name: str) -> Metric | None:
    low = _canonical(name)
    for metric in _REGISTRY.values():
        if low == metric.name or low in (_canonical(a) for a in metric.aliases):
            return metric
    return None


def get(name: str) -> Metric:
    """The metric named by a name, an alias or an output key (case-insensitive): ``"bleu"``,
    ``"rouge-l"``, ``"Bleu_4"``, ``"CIDEr-D"``."""
    metric = _lookup_name(name)
    if metric is not None:
        return metric
    for metric in _REGISTRY.values():
        if metric.owns_key(str(name).strip()) or any(_canonical(k) == _canonical(name) for k in metric.keys(Options())):
            return metric
    raise OptionError(f"unknown metric {name!r}; expected some of {names()} (or output keys such as 'Bleu_4', 'CIDEr-D')")


def names() -> tuple[str, ...]:
    """Registered metric names, in registration order (the order of output columns)."""
    return tuple(_REGISTRY)


def default_names() -> tuple[str, ...]:
    """coco's default set: the metrics ``evaluate`` computes when none are named."""
    return tuple(m.name for m in _REGISTRY.values() if m.default)


def resolve(metrics: str | Sequence[str] | None) -> list[Metric]:
    """Metric objects for names, aliases or output keys (a list, or one string split on spaces and
    commas), in registry order; ``None``: the default set."""
    if metrics is None:
        return [_REGISTRY[n] for n in default_names()]
    if isinstance(metrics, str):
        metrics = [m for m in metrics.replace(",", " ").split() if m]
    wanted = {get(m).name for m in metrics}
    if not wanted:
        raise OptionError("no metric named; expected some of " + ", ".join(names()))
    return [m for m in _REGISTRY.values() if m.name in wanted]


def metric_of_key(key: str) -> Metric | None:
    """The registered metric producing output key ``key`` exactly, or None."""
    for metric in _REGISTRY.values():
        if metric.owns_key(key):
            return metric
    return None


def display_name(key: str) -> str:
    """A report's name for an output key (``Bleu_4`` -> ``BLEU-4``)."""
    metric = metric_of_key(key)
    return metric.display_name(key) if metric is not None else key


def report_order(keys: Sequence[str]) -> list[str]:
    """Output keys in report order: by the metrics' ``report_rank``, then each metric's key order;
    keys of no registered metric last, in their given order."""
    keys = list(dict.fromkeys(keys))
    ranked = []
    for position, key in enumerate(keys):
        metric = metric_of_key(key)
        if metric is None:
            ranked.append((1, 0, position, key))
        else:
            ranked.append((0, metric.report_rank, metric.key_rank(key), key))
    return [k for *_, k in sorted(ranked)]
