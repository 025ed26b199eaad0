"""One functional API: each metric as a function ``(refs, preds, *, tokenizer="ptb", ...)`` returning
an :class:`~capeval.evaluate.EvaluationResult` (corpus ``scores``, ``per_item``, ``signature``), the
same type as ``capeval.evaluate``.

``capeval.cider`` is the *original* CIDEr (vrama91/cider); pycocoevalcap's "CIDEr" is CIDEr-D:
``capeval.cider_d``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..evaluate import EvaluationResult, evaluate
from .base import DEFAULT_N, SIGMA

__all__ = ["bleu", "cider", "cider_d", "meteor", "rouge_l"]


def bleu(refs: Mapping, preds: Mapping, *, tokenizer: str = "ptb", n: int = DEFAULT_N, strict: bool = True) -> EvaluationResult:
    """BLEU-1..n (keys ``Bleu_1``..``Bleu_n``), pycocoevalcap's closest reference length."""
    return evaluate(refs, preds, ["bleu"], tokenizer=tokenizer, n=n, strict=strict)


def rouge_l(refs: Mapping, preds: Mapping, *, tokenizer: str = "ptb", strict: bool = True) -> EvaluationResult:
    """ROUGE-L, beta 1.2 (key ``ROUGE_L``)."""
    return evaluate(refs, preds, ["rouge_l"], tokenizer=tokenizer, strict=strict)


def cider_d(
    refs: Mapping,
    preds: Mapping,
    *,
    tokenizer: str = "ptb",
    df=None,
    n: int = DEFAULT_N,
    sigma: float = SIGMA,
    strict: bool = True,
    allow_df_mismatch: bool = False,
) -> EvaluationResult:
    """CIDEr-D (key ``CIDEr-D``): what pycocoevalcap reports as "CIDEr". ``df``: precomputed
    :class:`~capeval.df.DocumentFrequencies` (or a path); default the references' own."""
    return evaluate(refs, preds, ["cider_d"], tokenizer=tokenizer, df=df, n=n, sigma=sigma, strict=strict, allow_df_mismatch=allow_df_mismatch)


def cider(
    refs: Mapping, preds: Mapping, *, tokenizer: str = "ptb", df=None, n: int = DEFAULT_N, strict: bool = True, allow_df_mismatch: bool = False
) -> EvaluationResult:
    """The original CIDEr of vrama91/cider (key ``CIDEr``: no clipping, no length penalty).
    pycocoevalcap's "CIDEr" is CIDEr-D: use :func:`cider_d` for its numbers."""
    return evaluate(refs, preds, ["cider"], tokenizer=tokenizer, df=df, n=n, strict=strict, allow_df_mismatch=allow_df_mismatch)


def meteor(refs: Mapping, preds: Mapping, *, tokenizer: str = "ptb", strict: bool = True, **meteor_options) -> EvaluationResult:
    """METEOR 1.5 (key ``METEOR``), pycocoevalcap's numbers. ``meteor_options``: ``backend`` (``"auto"``:
    Python where pycocoevalcap's data files are installed, no Java; ``"python"``; ``"jar"``: the
    official jar), ``workers``, ``progress``; for the jar :class:`capeval.meteor.Meteor`'s keywords or
    ``scorer=`` an open pool."""
    return evaluate(refs, preds, ["meteor"], tokenizer=tokenizer, strict=strict, meteor_options=meteor_options)
