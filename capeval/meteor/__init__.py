"""METEOR 1.5 with pycocoevalcap's numbers: the official jar driven in parallel and without hangs, or
capeval's pure-Python engine (``backend="python"``). See docs/meteor.md.

The package, by concern:

* :mod:`.formula`: Meteor 1.5's score from its 23 statistics (numpy only; no Java, no subprocess);
* :mod:`.java`: finding Java, ``javac`` and the jar, compiling capeval's front end, the cache;
* :mod:`.protocol`: the jar's line protocol (cleaning captions, SCORE/EVAL lines, parsing replies);
* :mod:`.jvm`, :mod:`.slots` and :mod:`.pool`: one JVM process, the pool's JVMs (command lines,
  heaps, memory), and :class:`Meteor`, which scores with them;
* :mod:`.api`: :func:`meteor_segments` and :func:`meteor`, routed to the jar or the Python engine.

Importing this package (or ``capeval.meteor.formula``) loads only the formula and the result type;
the JVM machinery is imported when one of its names is first used.
"""

from __future__ import annotations

import importlib

from ..errors import MeteorError, MeteorUnavailableError
from .api import BACKENDS, jar_options, meteor, meteor_segments, meteor_unavailable_reason, resolve_backend
from .formula import (
    EVAL_ID,
    STATS_FIELDS,
    STATS_LENGTH,
    meteor_score_from_stats,
    meteor_scores_from_stats,
    meteor_summable_stats,
)
from .logs import log
from .result import MeteorResult

# names of the JVM side, imported on first use (name -> submodule)
_LAZY = {
    "Meteor": "pool",
    "JVM_MODES": "pool",
    "ENV_WORKERS": "pool",
    "MeteorHeapError": "protocol",
    "clean_caption": "protocol",
    "find_java": "java",
    "find_meteor_jar": "java",
    "compile_server": "java",
    "jar_tag": "java",
    "ENV_JAR": "java",
    "ENV_CACHE": "java",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups (and monkeypatch.setattr) see a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BACKENDS",
    "EVAL_ID",
    "STATS_FIELDS",
    "STATS_LENGTH",
    "Meteor",
    "MeteorError",
    "MeteorHeapError",
    "MeteorResult",
    "MeteorUnavailableError",
    "clean_caption",
    "compile_server",
    "find_java",
    "find_meteor_jar",
    "jar_tag",
    "log",
    "meteor",
    "meteor_score_from_stats",
    "meteor_scores_from_stats",
    "meteor_segments",
    "meteor_summable_stats",
    "meteor_unavailable_reason",
    "resolve_backend",
    "jar_options",
]
