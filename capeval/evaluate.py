"""``capeval.evaluate``: validate, tokenize once, encode once, score every metric.

Output keys and scale are pycocoevalcap's: ``Bleu_1``..``Bleu_4``, ``METEOR``, ``ROUGE_L``, and
``CIDEr-D`` for what pycocoevalcap calls "CIDEr" (the defended variant). ``CIDEr`` here is the
*original* CIDEr of vrama91/cider, reported only when asked for.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from . import __version__
from ._corpus import ScoringCorpus
from .bleu import bleu_from_statistics, bleu_statistics
from .cider import SIGMA, cider_scores
from .df import DocumentFrequencies
from .errors import (
    CapevalError,
    EmptyReferencesError,
    InvalidCaptionError,
    MissingIdError,
    format_ids,
)
from .rouge import BETA, rouge_l_scores
from .tokenize import TOKENIZERS, tokenize

METRICS = ("bleu", "meteor", "rouge_l", "cider_d", "cider")
DEFAULT_METRICS = ("bleu", "meteor", "rouge_l", "cider_d")
_ALIASES = {
    "bleu": "bleu",
    "meteor": "meteor",
    "rouge_l": "rouge_l",
    "rouge": "rouge_l",
    "rouge-l": "rouge_l",
    "cider_d": "cider_d",
    "cider-d": "cider_d",
    "ciderd": "cider_d",
    "cider": "cider",
}


class MetricUnavailableWarning(UserWarning):
    """A default metric was skipped (METEOR without Java); the result says why."""


def metric_keys(metric: str, n: int = 4) -> list[str]:
    return {
        "bleu": [f"Bleu_{k}" for k in range(1, n + 1)],
        "meteor": ["METEOR"],
        "rouge_l": ["ROUGE_L"],
        "cider_d": ["CIDEr-D"],
        "cider": ["CIDEr"],
    }[metric]


def normalize_metrics(metrics: str | Sequence[str] | None, n: int = 4) -> list[str]:
    """Canonical metric names from names, aliases or output keys, in the canonical order."""
    if metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [m for m in metrics.replace(",", " ").split() if m]
    wanted = set()
    for m in metrics:
        low = str(m).strip().lower()
        if low in _ALIASES:
            wanted.add(_ALIASES[low])
        elif low.startswith("bleu_") and low[5:].isdigit():
            wanted.add("bleu")
        else:
            raise ValueError(f"unknown metric {m!r}; expected some of {METRICS} (or output keys such as 'Bleu_4', 'CIDEr-D')")
    return [m for m in METRICS if m in wanted]


# -- input validation -----------------------------------------------------------------------------
def _check_caption(caption, what: str) -> str:
    if isinstance(caption, str):
        return caption
    if isinstance(caption, Mapping) and isinstance(caption.get("caption"), str):  # coco annotation dicts
        return caption["caption"]
    if isinstance(caption, float) and math.isnan(caption):
        raise InvalidCaptionError(f"{what}: caption is NaN (a missing value), not a string")
    raise InvalidCaptionError(f"{what}: caption must be a string, got {type(caption).__name__} {caption!r:.60}")


def _as_reference_lists(refs: Mapping, ids: Sequence) -> list[list[str]]:
    """``[refs[i] for i in ids]`` as lists of strings, validated; C-level checks on the common path."""
    values = [refs[i] for i in ids]
    if set(map(type, values)) <= {list, tuple}:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        flat = list(chain.from_iterable(values))
        if lengths.all() and set(map(type, flat)) <= {str}:
            nonblank = np.fromiter(map(bool, map(str.strip, flat)), dtype=bool, count=len(flat))
            starts = np.cumsum(lengths) - lengths
            if np.logical_or.reduceat(nonblank, starts).all():
                return [v if type(v) is list else list(v) for v in values]
    return _check_reference_lists(refs, ids)  # something is off: find it and name it


def _check_reference_lists(refs: Mapping, ids: Sequence) -> list[list[str]]:
    out = []
    for i in ids:
        value = refs[i]
        if isinstance(value, str) or not isinstance(value, Sequence):
            value = [value] if isinstance(value, str) else value
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise InvalidCaptionError(f"id {i!r}: references must be a list of strings, got {type(value).__name__}")
        if len(value) == 0:
            raise EmptyReferencesError(f"id {i!r}: empty reference list")
        caps = list(value)
        if not all(type(c) is str for c in caps):  # format messages only on the slow path
            caps = [_check_caption(c, f"id {i!r}, reference {j}") for j, c in enumerate(caps)]
        if not any(map(str.strip, caps)):
            raise EmptyReferencesError(f"id {i!r}: all {len(caps)} references are empty")
        out.append(caps)
    return out


def _as_prediction(value, i) -> str:
    if isinstance(value, (list, tuple)):  # pycocoevalcap's res format: {id: [caption]}
        if len(value) != 1:
            raise InvalidCaptionError(f"id {i!r}: expected exactly one predicted caption, got {len(value)}")
        value = value[0]
    return _check_caption(value, f"id {i!r}, prediction")


def _id_hint(missing, other) -> str:
    other_str = {str(o) for o in other}
    if any(str(m) in other_str for m in missing):
        return " (the same ids exist with another type: int vs str; convert them consistently)"
    return ""


def _align_ids(refs: Mapping, preds: Mapping, strict: bool) -> list:
    if not isinstance(refs, Mapping) or not isinstance(preds, Mapping):
        raise CapevalError("refs and preds must be mappings: {id: [reference captions]} and {id: caption}")
    if refs.keys() == preds.keys():  # the common case, one C-level set comparison
        if not refs:
            raise MissingIdError("no id is shared by refs and preds")
        return list(refs)
    pred_keys = set(preds)
    missing_preds = [i for i in refs if i not in pred_keys]
    extra_preds = [i for i in preds if i not in refs]
    if strict and (missing_preds or extra_preds):
        parts = []
        if extra_preds:
            parts.append(f"{len(extra_preds)} predicted ids have no references: {format_ids(extra_preds)}{_id_hint(extra_preds, refs)}")
        if missing_preds:
            parts.append(f"{len(missing_preds)} ids have references but no prediction: {format_ids(missing_preds)}{_id_hint(missing_preds, preds)}")
        raise MissingIdError("; ".join(parts) + " (strict=False scores the intersection)")
    if missing_preds or extra_preds:
        warnings.warn(
            f"scoring the {len(refs) - len(missing_preds)} common ids; left out {len(missing_preds)} ids without prediction "
            f"{format_ids(missing_preds)} and {len(extra_preds)} predictions without references {format_ids(extra_preds)}",
            stacklevel=3,
        )
    ids = [i for i in refs if i in pred_keys]
    if not ids:
        raise MissingIdError("no id is shared by refs and preds")
    return ids


@dataclass
class Prepared:
    ids: list
    references: list[list[str]]  # tokenized
    predictions: list[str]  # tokenized
    tokenizer: str
    corpus: ScoringCorpus = field(init=False)

    def __post_init__(self):
        self.corpus = ScoringCorpus(self.predictions, self.references)


def prepare(refs: Mapping, preds: Mapping, tokenizer: str = "ptb", strict: bool = True) -> Prepared:
    """Validate and align ids, tokenize every caption in one call, encode for the metrics."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {TOKENIZERS}")
    ids = _align_ids(refs, preds, strict)
    ref_lists = _as_reference_lists(refs, ids)
    pred_list = [preds[i] for i in ids]
    if not set(map(type, pred_list)) <= {str}:  # {id: [caption]}, or something to name
        pred_list = [_as_prediction(preds[i], i) for i in ids]
    # two calls, references then predictions, each in id order, as pycocoevalcap does: the PTB
    # lexer looks one caption ahead, so a caption's tokens can depend on the caption after it
    if tokenizer == "none":  # validated above; the text is used as given
        return Prepared(ids, ref_lists, pred_list, tokenizer)
    flat_refs = tokenize(list(chain.from_iterable(ref_lists)), tokenizer)
    ends = np.cumsum([len(r) for r in ref_lists]).tolist()
    tok_refs = [flat_refs[a:b] for a, b in zip([0] + ends[:-1], ends)]
    return Prepared(ids, tok_refs, tokenize(pred_list, tokenizer), tokenizer)


# -- results --------------------------------------------------------------------------------------
@dataclass
class EvaluationResult:
    """Corpus scores (pycocoevalcap's keys and scale), per-item scores, statistics, signature."""

    scores: dict[str, float]
    per_item: object  # pandas.DataFrame indexed by id
    signature: str
    signatures: dict[str, str]
    statistics: dict[str, np.ndarray]  # per-item sufficient statistics ("bleu": (N, 10), "meteor": ...)
    skipped: dict[str, str] = field(default_factory=dict)  # metric key -> why it is absent
    tokenized: Prepared | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def __iter__(self):
        return iter(self.scores)

    def items(self):
        return self.scores.items()

    def __repr__(self) -> str:
        body = ", ".join(f"{k}: {v:.4f}" for k, v in self.scores.items())
        return f"EvaluationResult({body} | {self.signature})"


def make_signature(parts: dict[str, object]) -> str:
    return "|".join(f"{k}:{v}" for k, v in parts.items())


def _nrefs(prepared: Prepared) -> str:
    counts = prepared.corpus.n_refs
    lo, hi = int(counts.min()), int(counts.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


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
) -> EvaluationResult:
    """Score predictions against references.

    ``refs``: ``{id: [reference captions]}``; ``preds``: ``{id: caption}`` (or ``{id: [caption]}``).
    ``metrics``: names among ``bleu, meteor, rouge_l, cider_d, cider`` (case-insensitive, output keys
    accepted); by default coco's set ``bleu, meteor, rouge_l, cider_d``, where METEOR is skipped with
    a :class:`MetricUnavailableWarning` (and a reason in ``result.skipped``) when Java or the jar is
    missing. Asking for ``meteor`` explicitly raises ``MeteorUnavailableError`` instead.
    ``tokenizer``: ``ptb`` (pure Python, pycocoevalcap's tokens), ``corenlp`` (the jar), ``none``.
    ``df``: precomputed :class:`DocumentFrequencies` (or a path to one) for CIDEr / CIDEr-D; by
    default the references being scored, as in pycocoevalcap.
    ``meteor_options``: keywords for :class:`capeval.meteor.Meteor` (``jar``, ``java``, ``workers``,
    ``heap``, ``timeout``...), ``progress``, or ``scorer=`` an open ``Meteor`` pool to reuse across
    calls (its JVMs then stay up). Otherwise a pool is started at the beginning of the call, so the
    JVMs load while the other metrics are computed, and closed at its end.
    """
    explicit = metrics is not None
    wanted = normalize_metrics(metrics, n)
    df = DocumentFrequencies.coerce(df)
    # METEOR's JVMs load for seconds: start them first, so they load while the rest is computed
    meteor_pool = _start_meteor(len(refs), explicit, meteor_options or {}) if "meteor" in wanted else None
    try:
        return _evaluate(refs, preds, wanted, tokenizer, df, n, sigma, strict, meteor_pool, meteor_options or {})
    finally:
        if meteor_pool is not None and not isinstance(meteor_pool, str) and "scorer" not in (meteor_options or {}):
            meteor_pool.close()


def _evaluate(refs, preds, wanted, tokenizer, df, n, sigma, strict, meteor_pool, meteor_options) -> EvaluationResult:
    import pandas as pd

    prepared = prepare(refs, preds, tokenizer=tokenizer, strict=strict)
    corpus = prepared.corpus
    scores: dict[str, float] = {}
    columns: dict[str, np.ndarray] = {}
    statistics: dict[str, np.ndarray] = {}
    signatures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    meteor_parts: dict[str, str] = {}
    common = {"nrefs": _nrefs(prepared), "tok": tokenizer}
    version = {"version": __version__}
    df_sig = "corpus" if df is None else df.signature

    for metric in wanted:
        if metric == "bleu":
            stats = bleu_statistics(corpus, n)
            statistics["bleu"] = stats
            per = bleu_from_statistics(stats, n)
            total = bleu_from_statistics(stats.sum(axis=0), n)
            for k, key in enumerate(metric_keys("bleu", n)):
                scores[key] = float(total[k])
                columns[key] = per[:, k]
            signatures["bleu"] = make_signature({**common, "n": n, "reflen": "closest", **version})
        elif metric == "rouge_l":
            per = rouge_l_scores(corpus)
            scores["ROUGE_L"], columns["ROUGE_L"] = float(per.mean()), per
            signatures["rouge_l"] = make_signature({**common, "beta": BETA, **version})
        elif metric in ("cider_d", "cider"):
            defended = metric == "cider_d"
            per = cider_scores(corpus, df=df, n=n, sigma=sigma, defended=defended)
            key = metric_keys(metric)[0]
            scores[key], columns[key] = float(per.mean()), per
            extra = {"sigma": sigma} if defended else {}
            signatures[metric] = make_signature({**common, "df": df_sig, "n": n, **extra, **version})
        elif metric == "meteor":
            if isinstance(meteor_pool, str):  # unavailable: the reason
                skipped["METEOR"] = meteor_pool
                continue
            from .meteor import meteor_segments

            progress = meteor_options.get("progress")
            result = meteor_segments(prepared.references, prepared.predictions, scorer=meteor_pool, progress=progress)
            scores["METEOR"], columns["METEOR"] = float(result.score), np.asarray(result.per_item, dtype=np.float64)
            statistics["meteor"] = np.asarray(result.stats)
            meteor_parts = {"meteor": result.signature, **({"jar": _jar_tag(result.jar)} if result.jar else {})}
            signatures["meteor"] = make_signature({**common, **meteor_parts, **version})

    per_item = pd.DataFrame(columns, index=pd.Index(prepared.ids, name="image_id"))
    computed = [m for m in wanted if not (m == "meteor" and "METEOR" in skipped)]
    overall = {**common, "df": df_sig, "n": n, "sigma": sigma, **meteor_parts, "metrics": "+".join(computed), **version}
    return EvaluationResult(scores, per_item, make_signature(overall), signatures, statistics, skipped, prepared)


def _jar_tag(path: str) -> str:
    """The jar's file name and a short hash of its bytes (cached), so the signature names the exact jar."""
    import hashlib
    import os

    key = (path, os.path.getmtime(path)) if os.path.exists(path) else (path, 0)
    if key not in _JAR_TAGS:
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:12] if key[1] else "missing"
        _JAR_TAGS[key] = f"{os.path.basename(path)}@{digest}"
    return _JAR_TAGS[key]


_JAR_TAGS: dict = {}


def _start_meteor(n_items: int, explicit: bool, options: Mapping):
    """An open METEOR pool, already starting its JVMs; or (default metrics only) why there is none."""
    from .errors import MeteorUnavailableError
    from .meteor import Meteor

    if options.get("scorer") is not None:
        return options["scorer"]
    try:
        pool = Meteor(**{k: v for k, v in options.items() if k not in ("scorer", "progress")})
    except MeteorUnavailableError as exc:
        if explicit:
            raise
        warnings.warn(f"METEOR skipped: {exc}", MetricUnavailableWarning, stacklevel=4)
        return str(exc)
    return pool.start(pool.jvms_for(n_items))
