"""Kept import path: ROUGE-L's kernel lives in :mod:`capeval.metrics.rouge`; ``capeval.rouge_l(...)``
is the functional API."""

from .metrics.rouge import BETA, lcs_lengths, rouge_l_scores

__all__ = ["BETA", "lcs_lengths", "rouge_l_scores"]
