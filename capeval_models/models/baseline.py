"""The most-frequent-caption baseline as a registered model: fitted on the training references."""

from __future__ import annotations

import json
from pathlib import Path

from capeval._io import atomic_write_text

from ..baselines import MostFrequentCaption
from .common import make_history

NAME = MostFrequentCaption.name


def build(config, train, seed: int):
    return MostFrequentCaption().fit(train.references)


def train(config, data, seed: int, directory, label: str) -> dict:
    model = build(config, data["train"], seed)
    atomic_write_text(Path(directory) / "model.json", json.dumps(model.to_dict()) + "\n")
    return make_history(model=NAME, seed=seed, framework="none", batch_size=0, loss=[], loss_label="",
                        val=[], train_captions=data["train"].num_captions, config=model.to_dict())


def load(directory):
    saved = json.loads((Path(directory) / "model.json").read_text(encoding="utf-8"))
    return MostFrequentCaption(saved["caption"], saved["count"])


def caption(model, split, beam_size: int = 1) -> dict[str, str]:
    return model.predict(split.image_ids)


def _spec():
    from . import ModelSpec

    return ModelSpec(name=NAME, framework="none", build=build, train=train, load=load, caption=caption,
                     trained_by_run=False)


SPECS = [_spec()]
