"""METEOR 1.5 as a registered metric, through the public facade of :mod:`capeval.meteor` only.

Statistics are the jar's 23 per-segment statistics in summable form (``meteor_summable_stats``), so
the corpus score of any subset is ``meteor_scores_from_stats`` of its summed rows. Two engines give
the same statistics (``meteor_options={"backend": ...}``): ``"python"`` (no Java; the default where
pycocoevalcap's data files are installed, through ``"auto"``) and ``"jar"`` (the official jar, whose
JVMs start in :meth:`Meteor.begin`, before tokenization, so they load while the rest is computed).
``evaluate`` reports the engine's corpus and segment scores (pycocoevalcap's numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import Metric, Options

KEY = "METEOR"


@dataclass
class MeteorState:
    """One call's pool (started by ``begin``) and what its run reported."""

    pool: object = None
    backend: str = "jar"  # the engine that scores: "jar" or "python"
    jar: str = ""
    version: str = ""
    score: float | None = None
    per_item: np.ndarray | None = field(default=None, repr=False)
    owned: bool = False  # started here, so closed here


class Meteor(Metric):
    name = "meteor"
    default = True
    report_rank = 30
    coco = ("METEOR", {})
    headline = ("meteor", "meteor_engine", "jar")

    def keys(self, options: Options | None = None) -> list[str]:
        return [KEY]

    def begin(self, options: Options, n_items: int):
        """The engine: Python (checked available), or an open jar pool already starting its JVMs;
        ``options.meteor["scorer"]``: the caller's pool; ``options.meteor["backend"]``: ``auto``
        (Python where pycocoevalcap's data files are installed, else the jar), ``python`` or ``jar``."""
        from ..meteor import resolve_backend

        scorer = options.meteor.get("scorer")
        backend = options.meteor.get("backend", "auto")
        pool_options = {k: v for k, v in options.meteor.items() if k not in ("scorer", "progress", "backend")}
        if resolve_backend(backend, scorer=scorer, options=pool_options) == "python":
            from ..errors import MeteorUnavailableError
            from ..meteor import meteor_unavailable_reason

            reason = meteor_unavailable_reason(backend="python")
            if reason:
                raise MeteorUnavailableError(reason)
            return MeteorState(backend="python")
        if scorer is not None:
            return MeteorState(pool=scorer)
        from ..meteor import Meteor as Pool  # Java and the jar: only when the jar scores

        pool = Pool(**pool_options)
        return MeteorState(pool=pool.start(pool.jvms_for(n_items)), owned=True)

    def unavailable_reason(self, options: Options) -> str | None:
        from ..meteor import jar_options, meteor_unavailable_reason

        meteor = options.meteor
        if meteor.get("scorer") is not None:
            return None
        backend = meteor.get("backend", "auto")
        if backend == "auto" and jar_options({k: v for k, v in meteor.items() if k not in ("progress", "backend")}):
            backend = "jar"  # java=, heap=...: the jar was asked for
        return meteor_unavailable_reason(meteor.get("jar"), meteor.get("java"), backend=backend)

    def end(self, handle) -> None:
        if handle is not None and getattr(handle, "owned", False):
            handle.pool.close()

    def fit(self, corpus, options: Options, handle=None):
        return handle if handle is not None else MeteorState()

    def statistics(self, corpus, state, options: Options) -> np.ndarray:
        from ..meteor import meteor_segments

        progress = options.meteor.get("progress")
        if state.backend == "python":
            workers = {"workers": options.meteor["workers"]} if options.meteor.get("workers") else {}
            result = meteor_segments(corpus.references, corpus.hypotheses, ids=corpus.ids, backend="python", progress=progress, **workers)
        else:
            result = meteor_segments(corpus.references, corpus.hypotheses, ids=corpus.ids, scorer=state.pool, backend="jar", progress=progress)
        state.jar, state.version = result.jar, result.signature
        state.score, state.per_item = float(result.score), np.asarray(result.per_item, dtype=np.float64)
        return np.asarray(result.stats, dtype=np.float64)

    def scores(self, sums: np.ndarray) -> dict:
        from ..meteor import meteor_scores_from_stats

        return {KEY: meteor_scores_from_stats(sums)}

    def results(self, stats: np.ndarray, state=None):
        if state is None or state.score is None:
            return super().results(stats, state)
        return {KEY: state.score}, {KEY: state.per_item}  # the jar's numbers, as pycocoevalcap's

    def signature(self, options: Options, state=None) -> dict:
        from ..meteor import jar_tag

        parts = {"meteor": state.version if state is not None and state.version else "1.5 -l en -norm"}
        if state is not None and state.backend == "python":
            parts["meteor_engine"] = "python"
        if state is not None and state.jar:
            parts["jar"] = jar_tag(state.jar)
        return parts


METEOR = Meteor()
