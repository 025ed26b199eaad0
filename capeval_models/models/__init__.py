"""The model registry: every caption system of capeval-models behind one interface.

    from capeval_models.models import get_model
    spec = get_model("lstm")
    history = spec.train(config, data, seed=0, directory=path, label="lstm seed 0")   # HISTORY_KEYS
    model = spec.load(path)
    captions = spec.caption(model, data["val"], beam_size=1)                          # {image_id: text}

``config`` is a :class:`capeval_models.config.RunConfig` (the hyperparameters), ``data`` the
``{"train", "val"[, "nice"]}`` CaptionSplits. Adding a model: write build/train/load/caption in a module
of this package and ``register(ModelSpec(...))`` it below; the pipeline, the command line and the report
need no other change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .common import HISTORY_KEYS, make_history, val_cider


@dataclass(frozen=True)
class ModelSpec:
    name: str
    framework: str  # "numpy", "torch" or "none" (the baseline)
    build: Callable  # (config, train_split, seed) -> an untrained model
    train: Callable  # (config, data, seed, directory, label) -> history (HISTORY_KEYS); saves the model
    load: Callable  # (directory) -> the trained model
    caption: Callable  # (model, split, beam_size=1) -> {image_id: caption}
    beam_search: bool = False  # whether caption() honours beam_size > 1 (the leaderboard adds -beamK rows)
    trained_by_run: bool = True  # False: fitted in passing when captioning (the baseline)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_REGISTRY)}") from None


def model_names(trained_by_run: bool = True) -> tuple[str, ...]:
    """Registered names in registration order (by default the ones `capeval-models run` trains)."""
    return tuple(n for n, s in _REGISTRY.items() if s.trained_by_run == trained_by_run)


def _register_builtins() -> None:
    from . import baseline, numpy_rnn, transformer

    for module in (numpy_rnn, transformer, baseline):
        for spec in module.SPECS:
            register(spec)


_register_builtins()

__all__ = ["HISTORY_KEYS", "ModelSpec", "get_model", "make_history", "model_names", "register", "val_cider"]
