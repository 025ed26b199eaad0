"""Kept import path for the CIDEr family: ``from capeval.cider import CiderDReward, DocumentFrequencies, SIGMA``.

The kernel lives in :mod:`capeval.metrics.cider`, the reward in :mod:`capeval.reward`.
``capeval.cider(...)`` (the package attribute) is the functional API of the *original* CIDEr;
pycocoevalcap's "CIDEr" is CIDEr-D: ``capeval.cider_d(...)``.
"""

from .df import DocumentFrequencies
from .metrics.cider import SIGMA, cider_scores
from .reward import CiderDReward

__all__ = ["SIGMA", "CiderDReward", "DocumentFrequencies", "cider_scores"]
