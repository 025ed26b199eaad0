"""The entry points: :func:`meteor_segments` (lists) and :func:`meteor` (dicts by id), routed to a
``backend``: ``"jar"`` (meteor-1.5.jar through the JVM pool), ``"python"`` (capeval's pure-Python engine,
``capeval.meteor_python``) or ``"auto"`` (Python where it is available, else the jar). Both engines yield
the jar's 23 statistics per segment; scores come from them by the same formula, so they agree."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError, MeteorError, MeteorUnavailableError, MissingIdError, format_ids
from .formula import STATS_LENGTH, meteor_score_from_stats, meteor_scores_from_stats, meteor_summable_stats
from .result import MeteorResult

BACKENDS = ("jar", "python", "auto")
PYTHON_ENGINE = "capeval.meteor_python"
# what the Python engine accepts beside the captions; every other option configures the JVM pool
_PYTHON_OPTIONS = frozenset({"workers"})


def _python_engine():
    """``capeval.meteor_python``, imported only when asked for; raises MeteorUnavailableError saying why
    it cannot score here."""
    try:
        engine = importlib.import_module(PYTHON_ENGINE)
    except ImportError as exc:
        raise MeteorUnavailableError(
            f"the Python METEOR engine ({PYTHON_ENGINE}) cannot be imported: {exc}"
        ) from exc
    reason = engine.unavailable_reason()
    if reason:
        raise MeteorUnavailableError(f"the Python METEOR engine cannot run: {reason}")
    return engine


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def jar_options(options: Mapping) -> list[str]:
    """The options given that only the jar pool takes (``java=``, ``heap=``...)."""
    return sorted(k for k, v in options.items() if k not in _PYTHON_OPTIONS and v is not None)


def resolve_backend(backend: str = "auto", *, scorer=None, options: Mapping | None = None) -> str:
    """``"jar"`` or ``"python"``: the engine ``backend`` means here. ``"auto"`` is Python where the
    engine is available, else the jar; with an open jar pool (``scorer=``) or options only the jar
    takes (``java=``, ``jar=``, ``heap=``...) it is the jar."""
    _check_backend(backend)
    if backend != "auto":
        return backend
    if scorer is not None or jar_options(options or {}):
        return "jar"
    try:
        _python_engine()
    except MeteorUnavailableError:
        return "jar"
    return "python"


def meteor_unavailable_reason(jar=None, java=None, *, backend: str = "auto") -> str | None:
    """Why METEOR cannot run here with ``backend`` (no Java, no jar, no Python engine), or ``None`` if it
    can (nothing is started). For ``"auto"``: ``None`` if either engine can run."""
    from .java import jar_unavailable_reason

    _check_backend(backend)
    if backend == "auto" and (jar is not None or java is not None):
        backend = "jar"  # asked about a given jar or java
    reasons = []
    if backend in ("python", "auto"):
        try:
            _python_engine()
            return None
        except MeteorUnavailableError as exc:
            reasons.append(str(exc))
    if backend in ("jar", "auto"):
        reason = jar_unavailable_reason(jar, java)
        if reason is None:
            return None
        reasons.append(reason)
    return "; ".join(reasons)


def meteor_segments(
    references: Sequence[Sequence[str]],
    predictions: Sequence[str],
    *,
    ids: Sequence | None = None,
    scorer=None,
    progress: bool | None = None,
    backend: str = "auto",
    **options,
) -> MeteorResult:
    """METEOR of ``predictions[i]`` against ``references[i]``.

    ``ids``: the segments' ids (errors then name ``id 7`` instead of ``segment 2``; kept in the result).
    ``backend``: ``"auto"`` (default: Python where pycocoevalcap's data files are installed, else the jar), ``"python"`` or ``"jar"`` (see :func:`resolve_backend`).
    For the jar, ``options`` are :class:`Meteor`'s (a pool is started and closed), or ``scorer=`` an
    open :class:`Meteor` to reuse its JVMs; the Python engine takes ``workers``.
    """
    from .protocol import clean_segments, score_line, segment_labels

    if ids is not None and len(ids) != len(predictions):
        raise InputError(f"{len(ids)} ids but {len(predictions)} predictions")
    engine = resolve_backend(backend, scorer=scorer, options=options)
    # validated and cleaned before any engine starts, the same way for both
    refs, hyps = clean_segments(references, predictions, segment_labels(len(predictions), ids))
    if not hyps:
        raise InputError("nothing to score: no segments")
    ids = None if ids is None else list(ids)
    if engine == "python":
        return _score_in_python(refs, hyps, ids, scorer, progress, options, explicit=backend == "python")
    if scorer is not None:
        if options:
            raise TypeError(f"pass either scorer= or pool options, not both: {sorted(options)}")
        scorer.start(scorer.jvms_for(len(hyps)))
        return scorer._score_lines([score_line(r, h) for r, h in zip(refs, hyps)], progress, ids)
    from .pool import Meteor

    with Meteor(**options) as pool:
        pool.start(pool.jvms_for(len(hyps)))  # loads while the lines are encoded
        return pool._score_lines([score_line(r, h) for r, h in zip(refs, hyps)], progress, ids)


def _score_in_python(refs, hyps, ids, scorer, progress, options, *, explicit: bool) -> MeteorResult:
    if scorer is not None:
        raise TypeError("scorer= is an open jar pool; backend='python' does not use one")
    unknown = jar_options(options)
    if explicit and unknown:
        raise TypeError(f"backend='python' takes workers=, not the JVM pool's options {unknown}")
    workers = options.get("workers") or 1
    raw = np.asarray(
        _python_engine().segment_statistics(refs, hyps, workers=workers, progress=progress), dtype=np.float64
    )
    if raw.shape != (len(hyps), STATS_LENGTH):
        raise MeteorError(
            f"the Python METEOR engine returned statistics of shape {raw.shape} for {len(hyps)} segments"
        )
    return MeteorResult(
        score=meteor_score_from_stats(raw),
        per_item=meteor_scores_from_stats(raw),
        stats=meteor_summable_stats(raw),
        ids=ids,
        details={"backend": "python", "workers": workers},
    )


def meteor(
    refs: Mapping,
    preds: Mapping,
    *,
    scorer=None,
    progress: bool | None = None,
    backend: str = "auto",
    **options,
) -> MeteorResult:
    """METEOR 1.5 as pycocoevalcap computes it: ``refs`` ``{id: [reference, ...]}``, ``preds`` ``{id:
    caption}`` (or ``{id: [caption]}``), matched by id, in ``refs``' order. Text is scored as given
    (pycocoevalcap feeds PTB-tokenized, lowercased text; see :func:`capeval.tokenize.tokenize`).

    Returns a :class:`MeteorResult`: ``score`` (the corpus score), ``per_item``, ``stats``, ``ids``.
    Raises :class:`MeteorUnavailableError` without Java or the jar, :class:`MeteorError` if the JVMs
    keep failing. ``backend`` and other keywords as for :func:`meteor_segments` (``jar=``, ``java=``,
    ``workers=``, ``heap=``... for :class:`Meteor`; ``scorer=`` reuses an open pool).
    """
    if not isinstance(refs, Mapping) or not isinstance(preds, Mapping):
        raise InputError("refs and preds must be mappings {id: ...}")
    missing_preds = [i for i in refs if i not in preds]
    extra_preds = [i for i in preds if i not in refs]
    if missing_preds or extra_preds:
        parts = []
        if missing_preds:
            parts.append(
                f"{len(missing_preds)} id(s) have references but no prediction: {format_ids(missing_preds)}"
            )
        if extra_preds:
            parts.append(
                f"{len(extra_preds)} id(s) have a prediction but no references: {format_ids(extra_preds)}"
            )
        raise MissingIdError("; ".join(parts))
    ids = list(refs)
    return meteor_segments(
        [refs[i] for i in ids],
        [preds[i] for i in ids],
        ids=ids,
        scorer=scorer,
        progress=progress,
        backend=backend,
        **options,
    )
