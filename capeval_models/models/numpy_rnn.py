"""The numpy decoders (CS231n's CaptioningRNN): "rnn" (vanilla tanh cell) and "lstm"."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from .common import make_history, val_cider


def _sizes(config, cell: str) -> tuple[int, int]:
    """(hidden width, iterations) of a cell type."""
    if cell == "rnn":
        return config.rnn_hidden, config.rnn_iterations
    return config.lstm_hidden, config.lstm_iterations


def build(config, train, seed: int, *, cell: str):
    from ..rnn import CaptioningRNN

    hidden, _ = _sizes(config, cell)
    return CaptioningRNN(train.vocab.word_to_idx, train.feature_dim, config.wordvec_dim, hidden, cell,
                         np.float32, seed=seed)


def caption(model, split, beam_size: int = 1, batch: int = 2000) -> dict[str, str]:
    """Greedy captions (the numpy models have no beam search; beam_size is ignored)."""
    texts = []
    for i in range(0, split.num_images, batch):
        texts += model.decode(model.sample(split.features[i: i + batch], max_length=split.max_length - 1))
    return dict(zip(split.image_ids, texts))


def load(directory):
    from ..rnn import CaptioningRNN

    return CaptioningRNN.load(Path(directory) / "model.npz")


def train(config, data, seed: int, directory, label: str, *, cell: str) -> dict:
    from ..training import NumpyTrainer

    directory = Path(directory)
    train_split, val = data["train"], data["val"]
    model = build(config, train_split, seed, cell=cell)
    _, iterations = _sizes(config, cell)
    epoch_iters = max(1, train_split.num_captions // config.rnn_batch)  # a real epoch, for the lr decay

    def schedule(iteration, _period):
        return config.rnn_lr * config.rnn_lr_decay ** (iteration // epoch_iters)

    trainer = NumpyTrainer(model, train_split, batch_size=config.rnn_batch, num_iterations=iterations,
                           iterations_per_epoch=config.val_every, lr_schedule=schedule,
                           val_fn=lambda _t: {"CIDEr-D": val_cider(val, partial(caption, model))},
                           checkpoint_dir=directory / "checkpoints", checkpoint_every=config.val_every,
                           seed=seed, progress=config.progress, label=label, blas_threads=config.threads)
    trainer.train(resume=True)
    model.save(directory / "model.npz")
    return make_history(model=cell, seed=seed, framework="numpy", batch_size=config.rnn_batch,
                        loss=trainer.history["loss"], loss_label="loss (sum over words / batch)",
                        val=trainer.history["val"], train_captions=train_split.num_captions,
                        config=model.config() | {"word_to_idx": None})


def _spec(cell: str):
    from . import ModelSpec

    return ModelSpec(name=cell, framework="numpy", build=partial(build, cell=cell), train=partial(train, cell=cell),
                     load=load, caption=caption)


SPECS = [_spec("rnn"), _spec("lstm")]
