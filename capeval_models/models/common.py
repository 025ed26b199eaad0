"""What every model's training shares: the one history schema and the validation CIDEr-D."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

#: every history.json: model, seed, framework, iterations, batch_size, loss (per iteration), loss_label,
#: val ([{"iteration", "epoch", "CIDEr-D"}]; epochs are captions seen / training captions), config
HISTORY_KEYS = ("model", "seed", "framework", "iterations", "batch_size", "loss", "loss_label", "val", "config")


def make_history(*, model: str, seed: int, framework: str, batch_size: int, loss: Sequence[float],
                 loss_label: str, val: Sequence[dict], train_captions: int, config: dict, **extra) -> dict:
    """The history of one training run, from a training loop's own history (both loops name validation
    points by "iteration")."""
    per_epoch = max(1, train_captions)
    return {
        "model": model, "seed": int(seed), "framework": framework, "iterations": len(loss),
        "batch_size": int(batch_size), "loss": [float(x) for x in loss], "loss_label": loss_label,
        "val": [{"iteration": int(v["iteration"]), "epoch": v["iteration"] * batch_size / per_epoch,
                 "CIDEr-D": float(v["CIDEr-D"])} for v in val],
        "config": config, **extra,
    }


def val_cider(split, caption: Callable) -> float:
    """CIDEr-D (x1) of ``caption(split) -> {id: text}`` against the split's references (training curves)."""
    import capeval

    preds = caption(split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # METEOR-free: nothing to warn about that matters for a curve
        return float(capeval.evaluate(split.references, preds, metrics=["cider_d"]).scores["CIDEr-D"])
