"""capeval: image-captioning metrics with pycocoevalcap 1.2's numbers, without Java, many times faster.

    import capeval
    result = capeval.evaluate(refs, preds)          # {id: [refs]}, {id: caption}
    result.scores["CIDEr-D"], result.per_item, result.signature

    from capeval import cider                       # the CIDEr family
    cider.cider_d(refs, preds, df=cider.DocumentFrequencies.load("train-df.npz"))

Note: pycocoevalcap's "CIDEr" *is* CIDEr-D; capeval reports it as ``CIDEr-D`` and keeps ``CIDEr`` for
the original, undefended metric.
"""

__version__ = "0.1.0"

from . import bleu, cider, rouge  # noqa: E402
from .cider import CiderDReward  # noqa: E402
from .df import DocumentFrequencies  # noqa: E402
from .errors import CapevalError  # noqa: E402
from .evaluate import DEFAULT_METRICS, METRICS, EvaluationResult, evaluate  # noqa: E402
from .tokenize import tokenize  # noqa: E402

_LAZY_MODULES = ("meteor", "formats", "stats", "report", "compat")


def __getattr__(name):  # imported on first use: METEOR runs Java, the others pull pandas/matplotlib
    if name == "Meteor":
        from .meteor import Meteor

        return Meteor
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'capeval' has no attribute {name!r}")


__all__ = [
    "CapevalError",
    "CiderDReward",
    "DEFAULT_METRICS",
    "DocumentFrequencies",
    "EvaluationResult",
    "METRICS",
    "bleu",
    "cider",
    "evaluate",
    "rouge",
    "tokenize",
    "__version__",
]
