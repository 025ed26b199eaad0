"""The result of scoring a set of segments, whichever engine computed it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .formula import EVAL_ID, FLAGS, VERSION


@dataclass(frozen=True, eq=False)
class MeteorResult:
    """METEOR of a set of segments.

    ``score``: the corpus score (the jar's aggregate over the segment statistics, as pycocoevalcap
    reports it; not the mean of ``per_item``). ``per_item``: per-segment scores in input order.
    ``stats``: per-segment statistics ``(N, 23)`` (columns :data:`STATS_FIELDS`), in summable form (see
    :func:`meteor_summable_stats`): ``meteor_scores_from_stats(stats[idx].sum(0))`` is the corpus
    score of any subset. ``ids``: the ids in order when the caller gave them, else ``None``. ``jar``:
    the jar that scored (empty for the Python engine). ``details``: how it ran (``backend``, JVMs...).
    """

    score: float
    per_item: np.ndarray
    stats: np.ndarray
    ids: list | None = None
    jar: str = ""
    version: str = VERSION
    flags: str = FLAGS
    eval_id: str = EVAL_ID
    details: dict = field(default_factory=dict)

    @property
    def signature(self) -> str:
        """``1.5 -l en -norm``: the Meteor version and options (capeval's evaluate prefixes ``meteor:``)."""
        return f"{self.version} {self.flags}"

    @property
    def per_id(self) -> dict:
        if self.ids is None:
            raise AttributeError("per_id needs ids; this result was scored without them")
        return dict(zip(self.ids, self.per_item.tolist()))

    def __float__(self) -> float:
        return float(self.score)

    def __len__(self) -> int:
        return len(self.per_item)
