"""The metric registry with capeval's built-in metrics, registered in output order.

    from capeval import metrics
    metrics.names()            # ('bleu', 'meteor', 'rouge_l', 'cider_d', 'cider')
    metrics.get("Bleu_4")      # the BLEU metric
    metrics.register(MyMetric())

See :mod:`capeval.metrics.base` for the protocol and docs/architecture.md for adding a metric.
"""

from .base import (
    DEFAULT_N,
    SIGMA,
    MeanMetric,
    Metric,
    Options,
    default_names,
    display_name,
    get,
    make_signature,
    mean_statistics,
    metric_of_key,
    names,
    register,
    report_order,
    resolve,
    unregister,
)
from .bleu import BLEU
from .cider import CIDER, CIDER_D
from .meteor import METEOR
from .rouge import ROUGE_L

for _metric in (BLEU, METEOR, ROUGE_L, CIDER_D, CIDER):
    register(_metric)
del _metric

__all__ = [
    "DEFAULT_N",
    "SIGMA",
    "MeanMetric",
    "Metric",
    "Options",
    "default_names",
    "display_name",
    "get",
    "make_signature",
    "mean_statistics",
    "metric_of_key",
    "names",
    "register",
    "report_order",
    "resolve",
    "unregister",
]
