"""The main job: train the decoders, caption every split, score with capeval, publish a leaderboard.

    from capeval_models.pipeline import RunConfig, run
    summary = run(RunConfig(out="runs/default"))          # what `capeval-models run` does

Stages (each a function the CLI subcommands reuse; each skips work whose outputs already exist, so an
interrupted run resumes where it stopped, training included, from its checkpoints):

    load_data -> train_model (rnn, lstm, transformer, transformer-drophead, extra seeds)
              -> predict (baseline, greedy, beam) -> attention -> score (leaderboard, summary) -> run.json

The output folder (layout in docs/walkthrough.md):

    config.json                     the configuration the folder was started with (a resume must agree)
    references/<split>.json         what every prediction is scored against ({id: [captions]})
    models/<model>/                 checkpoints, model file, history.json (loss, val CIDEr-D per epoch)
    predictions/<system>/<split>.json   COCO results; predictions/<system>/nice.csv NICE submission
    seeds/<model>-seed<k>/<split>.json  greedy predictions of the extra seeds (DropHead comparison)
    figures/loss.png, figures/val_cider.png, attention/<split>-<id>.png
    leaderboard.{md,html,csv,json}  capeval's report: every metric, every split, 95% bootstrap CIs
    summary.{md,csv,json}           models x splits (CIDEr-D, ranked by nice), gaps, ordering, DropHead
    run.json                        configuration, seeds, versions, timings, capeval signatures;
                                    "status": "complete" only once everything above is written

Every file is written atomically (temp file + rename); the report files are removed before scoring starts
and run.json says "running" until the end, so a crash never leaves a report that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from capeval._io import atomic_write_text

from .baselines import MostFrequentCaption

MODELS = ("rnn", "lstm", "transformer", "transformer-drophead")
SPLITS = ("train", "val", "nice")
REPORT_FILES = ("leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard_categories.csv",
                "leaderboard.json", "summary.md", "summary.csv", "summary.json")
BASELINE = "most-frequent-caption"

# configuration fields that do not change any result (a resumed run may differ in them)
_COSMETIC = {"out", "progress", "threads", "meteor_workers"}


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
    tf_steps: int = 600
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


class ConfigMismatch(ValueError):
    """The output folder was started with another configuration; resuming would mix results."""


# ----------------------------------------------------------------------------------------------------------
# small helpers


def _log(config: RunConfig, msg: str) -> None:
    if config.progress:
        print(msg, file=sys.stderr, flush=True)


def _write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def _read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def _threads(n: int):
    """Limit torch (if imported) and numpy's BLAS to n threads; on a busy 2-core machine one thread per
    process is several times faster than two (oversubscription)."""
    from .training import blas_threads

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(int(n))
    try:
        with blas_threads(n):
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)


class Timer:
    """Stage timings, in the order the stages ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def check_config(config: RunConfig) -> None:
    """Record the configuration in out/config.json, or check that a resumed folder agrees with it."""
    path = config.out_dir / "config.json"
    mine = {k: v for k, v in config.to_dict().items() if k not in _COSMETIC}
    if path.exists():
        saved = {k: v for k, v in _read_json(path).items() if k not in _COSMETIC}
        diff = {k: (saved.get(k), mine.get(k)) for k in set(saved) | set(mine) if saved.get(k) != mine.get(k)}
        if diff:
            details = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
            raise ConfigMismatch(f"{config.out_dir} was started with another configuration ({details}); "
                                 "use another --out, or --fresh to start over")
        return
    _write_json(path, config.to_dict())


def load_config(out) -> RunConfig:
    """The configuration an output folder was started with."""
    path = Path(out) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `capeval-models run --out {out}` (or `train`) first")
    return replace(RunConfig.from_dict(_read_json(path)), out=str(out))


# ----------------------------------------------------------------------------------------------------------
# data


def load_data(config: RunConfig) -> dict:
    """{"train", "val"[, "nice"]} CaptionSplits.

    config.data None: the embedded shapes dataset (``load_embedded(config.data_seed, config.sizes)``).
    Otherwise a path to a CS231n ``coco_captioning`` directory, or to a JSON spec (paths relative to it):

        {"format": "cs231n", "dir": "coco_captioning", "max_train": 50000, "annotations": [...]}
        {"format": "karpathy", "dataset": "dataset_coco.json", "features": "feats.npz"}
        {"format": "coco", "train": {"annotations": "...", "features": "..."}, "val": {...}}

    each optionally with "nice": {"csv": "nice-val-5k.csv", "features": "nice_feats.npz"} (read with the
    training vocabulary). Karpathy's "test" split is used as "val" when there is no "val".
    """
    from . import data as D

    if config.data is None:
        return D.load_embedded(seed=config.data_seed, sizes=config.sizes, progress=config.progress)
    path = Path(config.data)
    if path.is_dir():
        spec, base = {"format": "cs231n", "dir": str(path)}, path.parent
    else:
        spec, base = _read_json(path), path.parent

    def p(value):
        return value if value is None or Path(value).is_absolute() else str(base / value)

    fmt = spec.get("format")
    if fmt == "cs231n":
        anns = spec.get("annotations")
        anns = [p(a) for a in anns] if anns else None
        splits = D.load_cs231n_coco(p(spec["dir"]), max_train=spec.get("max_train"), annotations=anns,
                                    pca_features=spec.get("pca_features", True))
    elif fmt == "karpathy":
        splits = D.load_karpathy(p(spec["dataset"]), p(spec["features"]))
        if "val" not in splits and "test" in splits:
            splits["val"] = splits["test"]
    elif fmt == "coco":
        train = D.load_coco_annotations(p(spec["train"]["annotations"]), p(spec["train"]["features"]), name="train")
        val = D.load_coco_annotations(p(spec["val"]["annotations"]), p(spec["val"]["features"]), name="val",
                                      vocab=train.vocab)
        splits = {"train": train, "val": val}
    else:
        raise ValueError(f"{path}: unknown data format {fmt!r} (expected cs231n, karpathy or coco)")
    if spec.get("nice"):
        nice = spec["nice"]
        splits["nice"] = D.load_nice(p(nice["csv"]), p(nice["features"]), name="nice", vocab=splits["train"].vocab)
    missing = [s for s in ("train", "val") if s not in splits]
    if missing:
        raise ValueError(f"{path}: the data has no {missing} split")
    return {k: splits[k] for k in ("train", "val", "nice") if k in splits}


def scored_splits(config: RunConfig, data: dict) -> list[str]:
    """The splits to caption and score: asked for, present and with references; nice first (the ranking)."""
    order = [s for s in ("nice", "val", "train") if s in config.splits]
    order += [s for s in config.splits if s not in order]
    return [s for s in order if s in data and data[s].references]


def write_references(config: RunConfig, data: dict) -> None:
    for name in scored_splits(config, data):
        path = config.out_dir / "references" / f"{name}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            data[name].write_references(path, format="json")


# ----------------------------------------------------------------------------------------------------------
# models


def model_dir(config: RunConfig, name: str, seed: int | None = None) -> Path:
    seed = config.seed if seed is None else seed
    suffix = "" if seed == config.seed else f"-seed{seed}"
    return config.out_dir / "models" / f"{name}{suffix}"


def is_trained(config: RunConfig, name: str, seed: int | None = None) -> bool:
    return (model_dir(config, name, seed) / "history.json").exists()


def _val_cider(config: RunConfig, val, caption_fn: Callable) -> float:
    import capeval

    preds = caption_fn(val)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(capeval.evaluate(val.references, preds, metrics=["cider_d"]).scores["CIDEr-D"])


def _epochs(iteration: int, batch: int, train) -> float:
    return iteration * batch / max(1, train.num_captions)


def train_model(config: RunConfig, data: dict, name: str, seed: int | None = None) -> dict:
    """Train one model (resuming from its checkpoint), save it and its history; returns the history."""
    seed = config.seed if seed is None else seed
    directory = model_dir(config, name, seed)
    if is_trained(config, name, seed):
        return _read_json(directory / "history.json")
    directory.mkdir(parents=True, exist_ok=True)
    with _threads(config.threads):
        if name in ("rnn", "lstm"):
            history = _train_numpy(config, data, name, seed, directory)
        else:
            history = _train_transformer(config, data, name, seed, directory)
    _write_json(directory / "history.json", history)
    return history


def _train_numpy(config, data, name, seed, directory) -> dict:
    from .rnn import CaptioningRNN
    from .training import NumpyTrainer

    train, val = data["train"], data["val"]
    hidden = config.rnn_hidden if name == "rnn" else config.lstm_hidden
    iterations = config.rnn_iterations if name == "rnn" else config.lstm_iterations
    model = CaptioningRNN(train.vocab.word_to_idx, train.feature_dim, config.wordvec_dim, hidden, name,
                          np.float32, seed=seed)
    epoch_iters = max(1, train.num_captions // config.rnn_batch)  # a real epoch, for the lr decay

    def schedule(iteration, _period):
        return config.rnn_lr * config.rnn_lr_decay ** (iteration // epoch_iters)

    def val_fn(trainer):
        return {"CIDEr-D": _val_cider(config, val, lambda s: caption_numpy(model, s))}

    trainer = NumpyTrainer(model, train, batch_size=config.rnn_batch, num_iterations=iterations,
                           iterations_per_epoch=config.val_every, lr_schedule=schedule, val_fn=val_fn,
                           checkpoint_dir=directory / "checkpoints", checkpoint_every=config.val_every,
                           seed=seed, progress=config.progress, blas_threads=config.threads)
    trainer.train(resume=True)
    model.save(directory / "model.npz")
    h = trainer.history
    return {
        "model": name, "seed": seed, "framework": "numpy", "iterations": len(h["loss"]),
        "batch_size": config.rnn_batch, "loss": [float(x) for x in h["loss"]],
        "loss_label": "loss (sum over words / batch)",
        "val": [{"iteration": v["iteration"], "epoch": _epochs(v["iteration"], config.rnn_batch, train),
                 "CIDEr-D": v["CIDEr-D"]} for v in h["val"]],
        "config": model.config() | {"word_to_idx": None},
    }


def _make_transformer(config, train, name):
    from .transformer import CaptioningTransformer

    regions = train.regions is not None
    return CaptioningTransformer(
        len(train.vocab.idx_to_word), train.region_dim if regions else train.feature_dim,
        memory="regions" if regions else "global", grid_shape=train.grid_shape if regions else None,
        d_model=config.tf_d_model, n_heads=config.tf_heads, n_layers=config.tf_layers,
        dropout=config.tf_dropout, attn_dropout=config.tf_dropout, max_length=train.max_length,
        use_drophead=name == "transformer-drophead", drophead=config.drophead)


def _train_transformer(config, data, name, seed, directory) -> dict:
    import torch

    from .torch_training import TrainConfig, train_transformer

    train, val = data["train"], data["val"]
    torch.manual_seed(seed)
    model = _make_transformer(config, train, name)
    tc = TrainConfig(steps=config.tf_steps, batch_size=config.tf_batch, lr=config.tf_lr,
                     warmup_steps=config.tf_warmup, seed=seed, checkpoint=str(directory / "model.pt"),
                     checkpoint_every=config.val_every, val_every=config.val_every, progress=config.progress,
                     device="cpu")

    def val_fn(m):
        return {"CIDEr-D": _val_cider(config, val, lambda s: caption_transformer(m, s))}

    h = train_transformer(model, train, tc, val_fn=val_fn)
    return {
        "model": name, "seed": seed, "framework": "torch", "iterations": len(h["loss"]),
        "batch_size": config.tf_batch, "loss": [float(x) for x in h["loss"]],
        "loss_label": "cross-entropy per word",
        "val": [{"iteration": v["step"], "epoch": _epochs(v["step"], config.tf_batch, train),
                 "CIDEr-D": v["CIDEr-D"]} for v in h["val"]],
        "config": model.config.to_dict(), "parameters": model.num_parameters(),
    }


def load_trained(config: RunConfig, name: str, seed: int | None = None):
    directory = model_dir(config, name, seed)
    if not is_trained(config, name, seed):
        raise FileNotFoundError(f"{name} (seed {seed if seed is not None else config.seed}) is not trained "
                                f"in {config.out_dir}: run `capeval-models train --model {name}` first")
    if name in ("rnn", "lstm"):
        from .rnn import CaptioningRNN

        return CaptioningRNN.load(directory / "model.npz")
    from .torch_training import load_model

    return load_model(directory / "model.pt")


# ----------------------------------------------------------------------------------------------------------
# captioning


def caption_numpy(model, split, batch: int = 2000) -> dict[str, str]:
    T = split.max_length - 1
    texts = []
    for i in range(0, split.num_images, batch):
        texts += model.decode(model.sample(split.features[i: i + batch], max_length=T))
    return dict(zip(split.image_ids, texts))


def caption_transformer(model, split, beam_size: int = 1, batch: int = 1000) -> dict[str, str]:
    from .transformer import beam_search, greedy_decode

    texts = []
    for i in range(0, split.num_images, batch):
        x = model.image_input(split)[i: i + batch]
        dec = (beam_search(model, x, beam_size=beam_size, vocab=split.vocab) if beam_size > 1
               else greedy_decode(model, x, vocab=split.vocab))
        texts += dec.texts
    return dict(zip(split.image_ids, texts))


def systems(config: RunConfig) -> list[tuple[str, str, int]]:
    """(system name, model, beam size) of every leaderboard row; the baseline has model None."""
    out = [(BASELINE, None, 1)]
    for m in config.models:
        out.append((m, m, 1))
        if m.startswith("transformer") and config.beam_size > 1:
            out.append((f"{m}-beam{config.beam_size}", m, config.beam_size))
    return out


def prediction_path(config: RunConfig, system: str, split: str) -> Path:
    return config.out_dir / "predictions" / system / f"{split}.json"


def _nonempty(preds: dict) -> dict:
    """capeval scores empty captions fine, but a NICE submission needs text: an empty caption (a model
    that emitted <END> first) becomes "." there and everywhere, so the files agree."""
    return {k: (v if v.strip() else ".") for k, v in preds.items()}


def save_predictions(config: RunConfig, system: str, split: str, preds: dict) -> Path:
    from capeval.formats import write_coco_results

    from .data import write_nice_submission

    preds = _nonempty(preds)
    path = prediction_path(config, system, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    if split == "nice":
        write_nice_submission(path.with_suffix(".csv"), preds)
    write_coco_results(path, preds)  # the COCO file last: its presence marks the pair complete
    return path


def predict(config: RunConfig, data: dict, system_names=None, split_names=None) -> list[Path]:
    """Caption every (system, split) whose prediction file is missing; returns the files written."""
    wanted = [s for s in systems(config) if system_names is None or s[0] in system_names]
    splits = [s for s in scored_splits(config, data) if split_names is None or s in split_names]
    written, baseline = [], None
    todo = [(s, sp) for s in wanted for sp in splits if not prediction_path(config, s[0], sp).exists()]
    if not todo:
        return written
    from tqdm.auto import tqdm

    models = {}
    with _threads(config.threads), tqdm(total=len(todo), desc="captioning", disable=not config.progress,
                                         dynamic_ncols=True) as bar:
        for (system, model_name, beam), split in todo:
            bar.set_postfix_str(f"{system} / {split}")
            if model_name is None:
                if baseline is None:
                    baseline = MostFrequentCaption().fit(data["train"].references)
                preds = baseline.predict(data[split].image_ids)
            else:
                if model_name not in models:
                    models[model_name] = load_trained(config, model_name)
                model = models[model_name]
                if model_name in ("rnn", "lstm"):
                    preds = caption_numpy(model, data[split])
                else:
                    preds = caption_transformer(model, data[split], beam_size=beam)
            written.append(save_predictions(config, system, split, preds))
            bar.update(1)
    return written


def seed_runs(config: RunConfig) -> list[tuple[str, int]]:
    """(model, seed) of the DropHead comparison: both transformers, seeds seed .. seed+drophead_seeds-1."""
    names = [m for m in ("transformer", "transformer-drophead") if m in config.models]
    if len(names) < 2:
        return []
    return [(m, config.seed + k) for k in range(config.drophead_seeds) for m in names]


def seed_prediction_path(config: RunConfig, name: str, seed: int, split: str) -> Path:
    if seed == config.seed:
        return prediction_path(config, name, split)
    return config.out_dir / "seeds" / f"{name}-seed{seed}" / f"{split}.json"


def predict_seeds(config: RunConfig, data: dict) -> None:
    from capeval.formats import write_coco_results

    with _threads(config.threads):
        for name, seed in seed_runs(config):
            if seed == config.seed:
                continue
            model = None
            for split in ("val", "nice"):
                path = seed_prediction_path(config, name, seed, split)
                if split not in data or path.exists():
                    continue
                model = model or load_trained(config, name, seed)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_coco_results(path, _nonempty(caption_transformer(model, data[split])))


# ----------------------------------------------------------------------------------------------------------
# attention maps


def attention(config: RunConfig, data: dict, model_name: str = "transformer", n: int | None = None,
              split_names=("val", "nice")) -> list[Path]:
    """Per-word cross-attention figures of the first n images of each split (greedy captions)."""
    from .attention_maps import caption_attention_maps

    n = config.attention_images if n is None else n
    if model_name not in config.models or n <= 0:
        return []
    model = load_trained(config, model_name)
    out = []
    with _threads(config.threads):
        for split_name in split_names:
            if split_name not in data:
                continue
            split = data[split_name]
            for i in range(min(n, split.num_images)):
                path = config.out_dir / "attention" / f"{split_name}-{split.image_ids[i]}.png"
                if path.exists():
                    out.append(path)
                    continue
                x = split.regions[i] if model.config.memory == "regions" else split.features[i]
                image = split.images[i] if split.images is not None else None
                title = None
                res = caption_attention_maps(model, x, None, vocab=split.vocab)
                if res["words"]:
                    cat = (split.categories or {}).get(split.image_ids[i])
                    title = (f'{split_name} {split.image_ids[i]}' + (f" ({cat})" if cat else "")
                             + f': "{res["caption"]}" ({model_name}, last layer, mean over heads)')
                    res = caption_attention_maps(model, x, path, vocab=split.vocab, image=image,
                                                 grid_shape=split.grid_shape, title=title)
                    out.append(path)
    return out


# ----------------------------------------------------------------------------------------------------------
# scoring and the report


def _meteor_scorer(config: RunConfig):
    """An open Meteor pool (one JVM start for every split and system), or None (skipped, with why)."""
    if not config.meteor:
        return None, "METEOR not computed (--no-meteor)"
    from capeval.meteor import Meteor, meteor_unavailable_reason

    reason = meteor_unavailable_reason()
    if reason:
        return None, f"METEOR not computed: {reason}"
    return Meteor(workers=config.meteor_workers, progress=False), None


def _remove_report(config: RunConfig) -> None:
    for name in REPORT_FILES:
        (config.out_dir / name).unlink(missing_ok=True)


def score(config: RunConfig, data: dict | None = None) -> dict:
    """Score every saved prediction file with capeval, write leaderboard.* and summary.*; returns the
    summary dict. References come from out/references/<split>.json, predictions from the saved files."""
    from tqdm.auto import tqdm

    from capeval.evaluate import MetricUnavailableWarning
    from capeval.formats import read_predictions, read_references
    from capeval.report import Leaderboard

    out = config.out_dir
    _remove_report(config)
    splits = [s for s in ("nice", "val", "train") if (out / "references" / f"{s}.json").exists()
              and s in config.splits]
    refs = {s: read_references(out / "references" / f"{s}.json") for s in splits}
    categories = {}
    if data is not None:
        categories = {s: data[s].categories for s in splits if s in data and data[s].categories}
    scorer, meteor_note = _meteor_scorer(config)
    metrics = None if scorer is not None else ["bleu", "rouge_l", "cider_d"]
    board = Leaderboard(title="capeval-models: caption decoders on the embedded shapes dataset"
                        if config.data is None else f"capeval-models: caption decoders on {config.data}",
                        metrics=metrics, meteor_options={"scorer": scorer, "progress": False} if scorer else None,
                        n_resamples=config.n_resamples, category_ci=False)
    rows = [(system, split) for split in splits for system, _, _ in systems(config)
            if prediction_path(config, system, split).exists()]
    try:
        for split in splits:
            board.add_split(split, refs[split], categories.get(split))
        with tqdm(total=len(rows), desc="scoring", disable=not config.progress, dynamic_ncols=True) as bar:
            for system, split in rows:
                bar.set_postfix_str(f"{system} / {split}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MetricUnavailableWarning)
                    board.add(split, system, read_predictions(prediction_path(config, system, split)))
                bar.update(1)
        report = board.report()
        if meteor_note:
            report.notes.insert(0, meteor_note)
        seeds = _seed_comparison(config, refs)
    finally:
        if scorer is not None:
            scorer.close()
    summary = _summary(config, report, seeds)
    report.write(out)
    _write_summary(config, summary)
    return summary


def _seed_comparison(config: RunConfig, refs: dict) -> dict | None:
    """CIDEr-D (x100, with CIs) of both transformers for every seed, greedy decoding, on val and nice."""
    import capeval
    from capeval.formats import read_predictions
    from capeval.stats import bootstrap_ci

    runs = seed_runs(config)
    if not runs:
        return None
    table = {}
    for split in ("val", "nice"):
        if split not in refs:
            continue
        for name, seed in runs:
            path = seed_prediction_path(config, name, seed, split)
            if not path.exists():
                continue
            result = capeval.evaluate(refs[split], read_predictions(path), metrics=["cider_d"])
            ci = bootstrap_ci(result, n_resamples=config.n_resamples)["CIDEr-D"]
            table.setdefault(split, {}).setdefault(name, {})[str(seed)] = {
                "CIDEr-D": 100 * result.scores["CIDEr-D"], "low": 100 * ci.low, "high": 100 * ci.high,
                "file": str(path.relative_to(config.out_dir)), "signature": result.signatures["cider_d"]}
    verdicts = {}
    for split, by_model in table.items():
        a, b = by_model.get("transformer-drophead", {}), by_model.get("transformer", {})
        common = sorted(set(a) & set(b), key=int)
        if not common:
            continue
        diffs = np.array([a[s]["CIDEr-D"] - b[s]["CIDEr-D"] for s in common])
        mean = float(diffs.mean())
        sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else float("nan")
        wins = int((diffs > 0).sum())
        if len(diffs) > 1 and sd > 0:
            t = mean / (sd / math.sqrt(len(diffs)))
            from scipy import stats as st

            p = float(2 * st.t.sf(abs(t), len(diffs) - 1))
        else:
            p = float("nan")
        if math.isfinite(p) and p < 0.05:
            verdict = "DropHead helps" if mean > 0 else "DropHead hurts"
        else:
            verdict = "no significant difference"
        verdicts[split] = {
            "seeds": [int(s) for s in common], "mean_difference": mean, "sd_difference": sd, "drophead_wins": wins,
            "p_value_paired_t": p,
            "mean": {m: float(np.mean([by_model[m][s]["CIDEr-D"] for s in common])) for m in by_model},
            "sd": {m: float(np.std([by_model[m][s]["CIDEr-D"] for s in common], ddof=1)) if len(common) > 1
                   else float("nan") for m in by_model},
            "verdict": verdict,
        }
    return {"per_seed": table, "comparison": verdicts, "decoding": "greedy", "scale": 100}


def _summary(config: RunConfig, report, seeds) -> dict:
    """Models x splits (CIDEr-D x100 with CIs), ranked by nice; the nice - val gap; orderings tested."""
    from capeval.stats import compare

    rank_split = "nice" if "nice" in report.splits else report.splits[0]
    rows = {}
    for split, info in report.details.items():
        for s in info["systems"]:
            row = rows.setdefault(s["system"], {"system": s["system"]})
            row[split] = {"CIDEr-D": s["scores"].get("CIDEr-D"), "ci": s["ci"].get("CIDEr-D"), "rank": s["rank"]}
    order = sorted(rows, key=lambda k: -(rows[k].get(rank_split, {}).get("CIDEr-D") or -math.inf))
    for name in order:
        r = rows[name]
        if "nice" in r and "val" in r:
            r["gap_nice_minus_val"] = r["nice"]["CIDEr-D"] - r["val"]["CIDEr-D"]
    findings = {}
    # ordering: transformer > lstm > rnn, tested with a paired bootstrap on CIDEr-D
    chain = [m for m in ("transformer", "lstm", "rnn") if m in rows]
    for split in [s for s in ("val", "nice") if s in report.splits]:
        tests = []
        for a, b in zip(chain, chain[1:]):
            ra, rb = report.results.get((split, a)), report.results.get((split, b))
            if ra is None or rb is None:
                continue
            c = compare(ra, rb, n_resamples=config.n_resamples, metrics=["CIDEr-D"])["CIDEr-D"]
            tests.append({"a": a, "b": b, "delta": 100 * c["delta"], "ci": [100 * c["ci_low"], 100 * c["ci_high"]],
                          "p_value": c["p_value"]})
        findings.setdefault("ordering", {})[split] = {
            "tests": tests,
            "observed": sorted(chain, key=lambda m: -rows[m][split]["CIDEr-D"]),
            "holds": all(t["delta"] > 0 for t in tests),
            "holds_significantly": all(t["delta"] > 0 and t["p_value"] < 0.05 for t in tests),
        }
    base = rows.get(BASELINE, {})
    findings["beats_baseline"] = {
        split: {m: rows[m][split]["CIDEr-D"] > base[split]["CIDEr-D"] and rows[m][split]["ci"][0] > base[split]["ci"][1]
                for m in rows if m != BASELINE and split in rows[m] and rows[m][split]["ci"]}
        for split in report.splits if split in base and base[split]["ci"]}
    if "nice" in report.splits and "val" in report.splits:
        findings["nice_harder_than_val"] = {m: rows[m]["gap_nice_minus_val"] < 0 for m in order if m != BASELINE
                                            and "gap_nice_minus_val" in rows[m]}
    tf_val = rows.get("transformer", {}).get("val", {}).get("CIDEr-D")
    if tf_val is not None:
        findings["transformer_val_cider_x1"] = tf_val / 100
    return {"rank_by": f"CIDEr-D on {rank_split}", "scale": 100, "splits": report.splits,
            "systems": [rows[k] for k in order], "findings": findings, "drophead_seeds": seeds,
            "notes": list(report.notes)}


def _fmt(cell) -> str:
    if not cell or cell.get("CIDEr-D") is None:
        return "-"
    text = f"{cell['CIDEr-D']:.1f}"
    if cell.get("ci"):
        text += f" [{cell['ci'][0]:.1f}, {cell['ci'][1]:.1f}]"
    return text


def summary_table(summary: dict) -> str:
    """The Markdown models x splits table (CIDEr-D x100, 95% CI), ranked by nice."""
    splits = summary["splits"]
    gap = "nice" in splits and "val" in splits
    head = ["#", "System"] + [f"{s} CIDEr-D" for s in splits] + (["nice - val"] if gap else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:", ":---"] + ["---:"] * (len(head) - 2)) + "|"]
    for k, row in enumerate(summary["systems"], start=1):
        cells = [str(k), row["system"]] + [_fmt(row.get(s)) for s in splits]
        if gap:
            g = row.get("gap_nice_minus_val")
            cells.append("-" if g is None else f"{g:+.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_text(summary: dict) -> list[str]:
    f = summary["findings"]
    out = []
    tf = f.get("transformer_val_cider_x1")
    if tf is not None:
        out.append(f"Transformer (greedy) val CIDEr-D = {tf:.3f} on the x1 scale "
                   f"({'meets' if tf >= 1.0 else 'misses'} the target of 1.0).")
    for split, beats in f.get("beats_baseline", {}).items():
        losers = [m for m, ok in beats.items() if not ok]
        out.append(f"{split}: every model's CIDEr-D interval lies above the most-frequent-caption baseline's."
                   if not losers else f"{split}: not clearly above the baseline: {', '.join(losers)}.")
    if "nice_harder_than_val" in f:
        easier = [m for m, ok in f["nice_harder_than_val"].items() if not ok]
        out.append("nice is harder than val for every model (negative nice - val gap)." if not easier
                   else f"nice is NOT harder than val for: {', '.join(easier)}.")
    for split, o in f.get("ordering", {}).items():
        tests = "; ".join(f"{t['a']} - {t['b']} = {t['delta']:+.1f} [{t['ci'][0]:+.1f}, {t['ci'][1]:+.1f}], "
                          f"p = {t['p_value']:.3f}" for t in o["tests"])
        verdict = ("holds, significantly" if o["holds_significantly"] else "holds, not all significant" if o["holds"]
                   else "does not hold")
        out.append(f"{split}: the seed report's ordering Transformer > LSTM > RNN {verdict} "
                   f"(observed {' > '.join(o['observed'])}; paired bootstrap on CIDEr-D x100: {tests}).")
    seeds = summary.get("drophead_seeds") or {}
    for split, c in (seeds.get("comparison") or {}).items():
        sd = c["sd_difference"]
        out.append(
            f"{split}: DropHead over {len(c['seeds'])} seeds (greedy): transformer-drophead - transformer = "
            f"{c['mean_difference']:+.1f} CIDEr-D x100 on average"
            + (f" (sd {sd:.1f}, paired t-test p = {c['p_value_paired_t']:.3f})" if math.isfinite(sd) else "")
            + f", DropHead better for {c['drophead_wins']} of {len(c['seeds'])} seeds: {c['verdict']}.")
    return out


def _write_summary(config: RunConfig, summary: dict) -> None:
    out = config.out_dir
    lines = ["# Summary: caption decoders, ranked by CIDEr-D on nice", "",
             "CIDEr-D x100 (pycocoevalcap's CIDEr), 95% percentile-bootstrap intervals over images; the full "
             "table with every metric is in leaderboard.md.", "", summary_table(summary), "", "## Findings", ""]
    lines += [f"- {t}" for t in findings_text(summary)]
    seeds = summary.get("drophead_seeds") or {}
    if seeds.get("per_seed"):
        lines += ["", "## DropHead across seeds (greedy decoding, CIDEr-D x100, 95% CI)", "",
                  "| split | model | " + " | ".join(f"seed {s}" for s, _ in _seed_cols(seeds)) + " | mean | sd |",
                  "|:---|:---|" + "---:|" * (len(_seed_cols(seeds)) + 2)]
        for split, by_model in seeds["per_seed"].items():
            comp = (seeds.get("comparison") or {}).get(split, {})
            for model, per in by_model.items():
                cells = [f"{per[s]['CIDEr-D']:.1f} [{per[s]['low']:.1f}, {per[s]['high']:.1f}]" if s in per else "-"
                         for s, _ in _seed_cols(seeds)]
                mean, sd = comp.get("mean", {}).get(model), comp.get("sd", {}).get(model)
                lines.append(f"| {split} | {model} | " + " | ".join(cells)
                             + f" | {'-' if mean is None else f'{mean:.1f}'} | "
                             + f"{'-' if sd is None or not math.isfinite(sd) else f'{sd:.1f}'} |")
    if summary["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in summary["notes"]]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    csv_lines = ["system," + ",".join(f"{s}_CIDEr-D,{s}_low,{s}_high" for s in summary["splits"]) + ",gap_nice_minus_val"]
    for row in summary["systems"]:
        vals = [row["system"]]
        for s in summary["splits"]:
            c = row.get(s) or {}
            ci = c.get("ci") or [None, None]
            vals += [_num(c.get("CIDEr-D")), _num(ci[0]), _num(ci[1])]
        vals.append(_num(row.get("gap_nice_minus_val")))
        csv_lines.append(",".join(vals))
    atomic_write_text(out / "summary.csv", "\n".join(csv_lines) + "\n")
    _write_json(out / "summary.json", _jsonable(summary))


def _seed_cols(seeds):
    cols = set()
    for by_model in seeds["per_seed"].values():
        for per in by_model.values():
            cols |= set(per)
    return [(s, None) for s in sorted(cols, key=int)]


def _num(x) -> str:
    return "" if x is None else f"{x:.6f}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ----------------------------------------------------------------------------------------------------------
# figures and run.json


def training_curves(config: RunConfig) -> dict:
    from .plots import plot_training_curves

    histories = {m: _read_json(model_dir(config, m) / "history.json") for m in config.models
                 if is_trained(config, m)}
    if not histories:
        return {}
    baseline = None
    refs = config.out_dir / "references" / "val.json"
    base_preds = prediction_path(config, BASELINE, "val")
    if refs.exists() and base_preds.exists():
        import capeval
        from capeval.formats import read_predictions, read_references

        baseline = capeval.evaluate(read_references(refs), read_predictions(base_preds),
                                    metrics=["cider_d"]).scores["CIDEr-D"]
    return plot_training_curves(histories, config.out_dir / "figures", baseline=baseline)


def versions() -> dict:
    import capeval

    v = {"python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__,
         "capeval": capeval.__version__}
    for mod in ("torch", "scipy", "pandas", "matplotlib"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    java = shutil.which("java")
    v["java"] = java
    try:
        from capeval.meteor import meteor_unavailable_reason

        v["meteor_unavailable"] = meteor_unavailable_reason()
    except ImportError:
        v["meteor_unavailable"] = "capeval.meteor missing"
    v["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return v


def write_run_json(config: RunConfig, status: str, timer: Timer, skipped: list[str], started: float,
                   summary: dict | None = None, data: dict | None = None) -> Path:
    record = {
        "status": status,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_seconds": time.time() - started,
        "config": config.to_dict(),
        "seeds": {"data": config.data_seed, "models": config.seed,
                  "drophead_comparison": sorted({s for _, s in seed_runs(config)}),
                  "bootstrap": __import__("capeval.stats", fromlist=["DEFAULT_SEED"]).DEFAULT_SEED},
        "versions": versions(),
        "timings_seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
        "skipped_stages": skipped,
    }
    if data is not None:
        record["data"] = {k: {"images": v.num_images, "captions": v.num_captions, "source": v.source}
                          for k, v in data.items()}
        record["data"]["vocabulary"] = len(next(iter(data.values())).vocab)
    lb = config.out_dir / "leaderboard.json"
    if status == "complete" and lb.exists():
        board = _read_json(lb)
        record["capeval_signature"] = board["signature"]
        record["capeval_signatures"] = {f"{split}/{s['system']}": s["signatures"]
                                        for split, info in board["splits"].items() for s in info["systems"]}
    if summary is not None:
        record["findings"] = _jsonable(summary["findings"])
    return _write_json(config.out_dir / "run.json", _jsonable(record))


# ----------------------------------------------------------------------------------------------------------
# the whole job


def run(config: RunConfig, fresh: bool = False) -> dict:
    """Every stage, resuming whatever an earlier run of the same folder left; returns the summary."""
    out = config.out_dir
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    check_config(config)
    started, timer, skipped = time.time(), Timer(), []
    write_run_json(config, "running", timer, skipped, started)
    _remove_report(config)
    with timer("data"):
        data = load_data(config)
        write_references(config, data)
    for name in config.models:
        if is_trained(config, name):
            skipped.append(f"train/{name}")
            continue
        _log(config, f"training {name}")
        with timer(f"train/{name}"):
            train_model(config, data, name)
        write_run_json(config, "running", timer, skipped, started, data=data)
    with timer("predict"):
        predict(config, data)
    for name, seed in seed_runs(config):
        if seed == config.seed:
            continue
        if is_trained(config, name, seed):
            skipped.append(f"train/{name}-seed{seed}")
            continue
        _log(config, f"training {name} (seed {seed}, DropHead comparison)")
        with timer(f"train/{name}-seed{seed}"):
            train_model(config, data, name, seed)
        write_run_json(config, "running", timer, skipped, started, data=data)
    with timer("predict/seeds"):
        predict_seeds(config, data)
    with timer("figures"):
        training_curves(config)
        attention(config, data)
    with timer("score"):
        summary = score(config, data)
    write_run_json(config, "complete", timer, skipped, started, summary, data)
    return summary


def print_summary(summary: dict, file=None) -> None:
    file = file or sys.stdout
    print(f"\nRanked by {summary['rank_by']} (x100, 95% CI):\n", file=file)
    print(summary_table(summary), file=file)
    print("", file=file)
    for line in findings_text(summary):
        print(f"- {line}", file=file)


__all__ = [
    "BASELINE", "MODELS", "SPLITS", "ConfigMismatch", "RunConfig", "attention", "caption_numpy",
    "caption_transformer", "check_config", "load_config", "load_data", "load_trained", "predict",
    "print_summary", "run", "score", "summary_table", "systems", "train_model", "training_curves",
]
