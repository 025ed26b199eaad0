"""capeval: image-captioning metrics with pycocoevalcap 1.2's numbers, without Java, many times faster.

    import capeval
    result = capeval.evaluate(refs, preds)          # {id: [refs]}, {id: caption}
    result.scores["CIDEr-D"], result.per_item, result.signature

    capeval.cider_d(refs, preds, df="train-df.npz")  # one metric: the same result type
    capeval.bleu(refs, preds), capeval.rouge_l(...), capeval.meteor(...), capeval.cider(...)

Note: pycocoevalcap's "CIDEr" *is* CIDEr-D; capeval reports it as ``CIDEr-D`` (``capeval.cider_d``)
and keeps ``CIDEr`` (``capeval.cider``) for the original, undefended metric.
"""

import sys

from . import metrics
from . import tokenize as _tokenize_module
from ._facade import ModuleFunction, Package
from ._version import __version__
from .df import DocumentFrequencies
from .errors import CapevalError
from .evaluate import EvaluationResult
from .evaluate import evaluate as _evaluate
from .metrics import api as _api
from .reward import CiderDReward

sys.modules[__name__].__class__ = Package  # importing a submodule keeps the functions below

# functions that also name a submodule (capeval.meteor.Meteor, capeval.tokenize.tokenize_lists...)
evaluate = ModuleFunction(_evaluate, "capeval.evaluate")
tokenize = ModuleFunction(_tokenize_module.tokenize, "capeval.tokenize")
bleu = ModuleFunction(_api.bleu, "capeval.bleu")
cider = ModuleFunction(_api.cider, "capeval.cider")
meteor = ModuleFunction(_api.meteor, "capeval.meteor")
rouge_l = _api.rouge_l
cider_d = _api.cider_d

_LAZY_MODULES = ("formats", "stats", "report", "compat", "rouge")


def __getattr__(name):  # imported on first use: METEOR runs Java, the others pull pandas/matplotlib
    if name == "Meteor":
        from .meteor import Meteor

        return Meteor
    if name == "METRICS":
        return metrics.names()
    if name == "DEFAULT_METRICS":
        return metrics.default_names()
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'capeval' has no attribute {name!r}")


__all__ = [
    "CapevalError",
    "CiderDReward",
    "DocumentFrequencies",
    "EvaluationResult",
    "bleu",
    "cider",
    "cider_d",
    "evaluate",
    "meteor",
    "metrics",
    "rouge_l",
    "tokenize",
    "__version__",
]
