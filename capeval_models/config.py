"""The configuration of a run (:class:`RunConfig`) and the check that a resumed folder agrees with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .files import read_json, write_json
from .models import model_names

MODELS = model_names()  # the models `capeval-models run` trains, in training order
SPLITS = ("train", "val", "nice")

# configuration fields that do not change any result (a resumed run may differ in them)
_COSMETIC = {"out", "progress", "threads", "meteor_workers"}


class ConfigMismatch(ValueError):
    """The output folder was started with another configuration; resuming would mix results."""


@dataclass
class RunConfig:
    out: str = "runs/default"
    data: str | None = None  # None: the embedded shapes dataset; else a data spec (see load_data)
    data_seed: int = 0
    sizes: tuple = (8000, 1000, 1000)  # embedded dataset: train, val, nice images
    seed: int = 0  # model seed (initialisation, minibatches, dropout)
    models: tuple = MODELS
    splits: tuple = SPLITS
    # numpy RNN / LSTM (CS231n's CaptioningRNN): Adam, lr * lr_decay ** epoch
    wordvec_dim: int = 128
    rnn_hidden: int = 256
    rnn_iterations: int = 1000
    lstm_hidden: int = 256
    lstm_iterations: int = 800
    rnn_batch: int = 100
    rnn_lr: float = 5e-3
    rnn_lr_decay: float = 0.95
    # Transformer (PyTorch): AdamW, warm-up + cosine
    tf_d_model: int = 128
    tf_heads: int = 4
    tf_layers: int = 2
    tf_dropout: float = 0.1
    # 1600 x 64 captions = 2.6 epochs of the 40,000 embedded training captions, as the RNN (2.5) and the LSTM
    # (2) get: at 600 steps (under one epoch) greedy captions repeated a bigram in 42% of val images and named
    # a shape not in the image in 14% (issue 17.4; docs/walkthrough.md "Why the Transformer repeated itself")
    tf_steps: int = 1600
    tf_batch: int = 64
    tf_lr: float = 1e-3
    tf_warmup: int = 60
    drophead: float = 0.1
    beam_size: int = 3
    drophead_seeds: int = 3  # seeds for the DropHead comparison (seed, seed+1, ...); 1: the main models only
    # evaluation
    val_every: int = 100  # iterations between validation CIDEr-D points (training curves)
    meteor: bool = True  # METEOR when Java is available (skipped with a note otherwise)
    meteor_workers: int = 1
    n_resamples: int = 1000
    attention_images: int = 3  # per split (val and nice)
    threads: int = 1  # torch intra-op threads and numpy BLAS threads
    progress: bool = True
    quick: bool = False

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        self.models = tuple(self.models)
        self.splits = tuple(self.splits)
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown models {unknown}; expected some of {MODELS}")
        if self.drophead_seeds < 1:
            raise ValueError("drophead_seeds must be at least 1")

    @classmethod
    def quick_config(cls, **overrides) -> RunConfig:
        """Tiny sizes for tests: a few hundred images, tens of iterations, no METEOR."""
        base = dict(sizes=(300, 60, 60), wordvec_dim=32, rnn_hidden=64, rnn_iterations=60, lstm_hidden=64,
                    lstm_iterations=60, rnn_batch=50, tf_d_model=32, tf_heads=2, tf_layers=1, tf_steps=100, tf_lr=3e-3,
                    tf_batch=32, tf_warmup=10, drophead_seeds=2, val_every=20, meteor=False, n_resamples=100,
                    attention_images=1, quick=True)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("sizes", "models", "splits"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def out_dir(self) -> Path:
        return Path(self.out)


def check_config(config: RunConfig) -> None:
    """Record the configuration in out/config.json, or check that a resumed folder agrees with it."""
    path = config.out_dir / "config.json"
    mine = {k: v for k, v in config.to_dict().items() if k not in _COSMETIC}
    if path.exists():
        saved = {k: v for k, v in read_json(path).items() if k not in _COSMETIC}
        diff = {k: (saved.get(k), mine.get(k)) for k in set(saved) | set(mine) if saved.get(k) != mine.get(k)}
        if diff:
            details = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
            raise ConfigMismatch(f"{config.out_dir} was started with another configuration ({details}); "
                                 "use another --out, or --fresh to start over")
        return
    write_json(path, config.to_dict())


def load_config(out) -> RunConfig:
    """The configuration an output folder was started with."""
    path = Path(out) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `capeval-models run --out {out}` (or `train`) first")
    return replace(RunConfig.from_dict(read_json(path)), out=str(out))
