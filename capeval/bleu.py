"""Kept import path: BLEU's kernel lives in :mod:`capeval.metrics.bleu`; ``capeval.bleu(...)`` is the
functional API (:func:`capeval.metrics.api.bleu`)."""

from .metrics.bleu import SMALL, TINY, bleu_from_statistics, bleu_statistics

__all__ = ["SMALL", "TINY", "bleu_from_statistics", "bleu_statistics"]
