"""Training curves as PNG: loss per iteration, and validation CIDEr-D (x100) per epoch, for several models.

``histories`` maps a model name to ``{"loss": [...], "val": [{"epoch": e, "CIDEr-D": x, ...}, ...],
"iterations_per_epoch": k}``: the form :mod:`capeval_models.pipeline` stores for every model. Uses
matplotlib's Agg canvas (no pyplot, no GUI backend); files are written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .attention_maps import save_figure

__all__ = ["loss_figure", "plot_training_curves", "smooth", "val_figure"]



def _colors(names, colors: Mapping[str, str] | None) -> dict[str, str]:
    """The report's fixed colour per system (capeval.report.system_colors) unless given."""
    from capeval.report import system_colors

    fixed = system_colors(names)
    return {n: (colors or {}).get(n, fixed[n]) for n in names}


def smooth(values, window: int) -> np.ndarray:
    """Trailing moving average (the first points average over what exists so far)."""
    x = np.asarray(values, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def loss_figure(histories: Mapping[str, Mapping], title: str = "Training loss",
                colors: Mapping[str, str] | None = None) -> Figure:
    """One panel per model: the raw minibatch loss (light) and its moving average, against iterations."""
    names = [n for n in histories if histories[n].get("loss")]
    palette = _colors(list(histories), colors)
    ncols = max(1, min(len(names), 4))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = Figure(figsize=(3.6 * ncols, 3.0 * nrows + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    for k, name in enumerate(names):
        h = histories[name]
        loss = np.asarray(h["loss"], dtype=np.float64)
        it = np.arange(1, loss.size + 1)
        ax = fig.add_subplot(nrows, ncols, k + 1)
        color = palette[name]
        ax.plot(it, loss, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(it, smooth(loss, max(1, loss.size // 30)), color=color, linewidth=1.6)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("iteration")
        ax.set_ylabel(h.get("loss_label", "loss"), fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return fig


def val_figure(histories: Mapping[str, Mapping], *, baseline: float | None = None, metric: str = "CIDEr-D",
               title: str | None = None, colors: Mapping[str, str] | None = None, scale: float = 100) -> Figure:
    """Validation ``metric`` per epoch (fractional epochs: captions seen / training captions), on the
    report's scale (x100 by default, like every table); the legend sits outside the axes."""
    fig = Figure(figsize=(7.4, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    palette = _colors(list(histories), colors)
    for name, h in histories.items():
        points = [(v["epoch"], scale * v[metric]) for v in h.get("val", []) if metric in v]
        if points:
            x, y = zip(*points)
            ax.plot(x, y, marker="o", markersize=3, color=palette[name], label=name)
    if baseline is not None:
        ax.axhline(scale * baseline, color="black", linestyle="--", linewidth=1, label="most frequent caption")
    ax.set_xlabel("epoch (passes over the training captions)")
    ax.set_ylabel(f"val {metric} (x{scale:g})")
    ax.set_title(title or f"Validation {metric} during training", fontsize=11)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    return fig


def plot_training_curves(histories: Mapping[str, Mapping], out_dir, *, baseline: float | None = None,
                         colors: Mapping[str, str] | None = None) -> dict:
    """Write ``loss.png`` and ``val_cider.png`` under ``out_dir``; returns {"loss": path, "val": path}."""
    from pathlib import Path

    out_dir = Path(out_dir)
    return {
        "loss": save_figure(loss_figure(histories, colors=colors), out_dir / "loss.png"),
        "val": save_figure(val_figure(histories, baseline=baseline, colors=colors), out_dir / "val_cider.png"),
    }
