"""METEOR 1.5 as a registered metric, through the public facade of :mod:`capeval.meteor` only.

Statistics are the jar's 23 per-segment statistics in summable form (``meteor_summable_stats``), so
the corpus score of any subset is ``meteor_scores_from_stats`` of its summed rows. ``evaluate``
reports the jar's own corpus and segment scores (pycocoevalcap's numbers); the JVMs start in
:meth:`Meteor.begin`, before tokenization, so they load while the rest is computed.
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
    jar: str = ""
    version: str = ""
    score: float | None = None
    per_item: np.ndarray | None = field(default=None, repr=False)
    owned: bool = False  # started here, so closed here


_JAR_TAGS: dict = {}


def jar_tag(path: str) -> str:
    """The jar's file name and a short hash of its bytes (cached by path and mtime), so the signature
    names the exact jar."""
    import hashlib
    import os

    key = (path, os.path.getmtime(path)) if os.path.exists(path) else (path, 0)
    if key not in _JAR_TAGS:
        digest = "missing"
        if key[1]:
            with open(path, "rb") as fh:  # closed at once: no ResourceWarning
                digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        _JAR_TAGS[key] = f"{os.path.basename(path)}@{digest}"
    return _JAR_TAGS[key]


class Meteor(Metric):
    name = "meteor"
    default = True
    report_rank = 30
    coco = ("METEOR", {})
    headline = ("meteor", "jar")

    def keys(self, options: Options | None = None) -> list[str]:
        return [KEY]

    def begin(self, options: Options, n_items: int):
        """An open pool, already starting its JVMs; ``options.meteor["scorer"]``: the caller's pool."""
        from ..meteor import Meteor as Pool  # Java and the jar: only when METEOR is asked for

        scorer = options.meteor.get("scorer")
        if scorer is not None:
            return MeteorState(pool=scorer)
        pool = Pool(**{k: v for k, v in options.meteor.items() if k not in ("scorer", "progress")})
        return MeteorState(pool=pool.start(pool.jvms_for(n_items)), owned=True)

    def end(self, handle) -> None:
        if handle is not None and getattr(handle, "owned", False):
            handle.pool.close()

    def fit(self, corpus, options: Options, handle=None):
        return handle if handle is not None else MeteorState()

    def statistics(self, corpus, state, options: Options) -> np.ndarray:
        from ..meteor import meteor_segments

        result = meteor_segments(corpus.references, corpus.hypotheses, scorer=state.pool, progress=options.meteor.get("progress"))
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
        parts = {"meteor": state.version if state is not None and state.version else "1.5 -l en -norm"}
        if state is not None and state.jar:
            parts["jar"] = jar_tag(state.jar)
        return parts


METEOR = Meteor()
