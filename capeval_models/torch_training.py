"""Training for the PyTorch caption models: AdamW, linear warm-up then cosine decay, gradient clipping,
optional label smoothing and scheduled DropHead, atomic checkpoints, resume, DistributedDataParallel.

Single process:

    model = CaptioningTransformer(len(vocab.idx_to_word), split.features.shape[1])
    history = train_transformer(model, split, TrainConfig(steps=2000, checkpoint="runs/tf.pt"))

Several processes (gloo on CPU, nccl on GPUs) run the same code under torchrun; tests/models/ddp_worker.py
is a worked example (two processes on the synthetic task of tests/models/toy_split.py).

Every step is seeded from (seed, rank, step): minibatch sampling and dropout depend on nothing else, so a run
resumed from a checkpoint continues exactly as the uninterrupted run would have (same process count).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from capeval._io import atomic_write_bytes

from .transformer import (
    NULL,
    CaptioningTransformer,
    caption_loss,
    scheduled_drophead_rate,
)

CHECKPOINT_FORMAT = "capeval-torch-checkpoint"
CHECKPOINT_VERSION = 1
# fields that change parameter shapes; a checkpoint can only resume into a model that agrees on them
_ARCHITECTURE = ("vocab_size", "feature_dim", "memory", "n_regions", "d_model", "n_heads", "n_layers", "d_ff",
                 "max_length")


@dataclass
class TrainConfig:
    steps: int = 2000  # optimizer steps in total (a resumed run counts the steps already done)
    batch_size: int = 64  # captions per step and per process
    lr: float = 1e-3  # peak learning rate, reached at the end of warm-up
    min_lr: float = 1e-5  # learning rate at the end of the cosine decay
    warmup_steps: int = 100  # linear warm-up from lr / warmup_steps to lr
    weight_decay: float = 0.01  # AdamW decay on matrices only (not biases, LayerNorm, region positions)
    betas: tuple = (0.9, 0.98)
    grad_clip: float | None = 1.0  # max global gradient norm; None: no clipping
    label_smoothing: float = 0.0
    drophead_schedule: str = "constant"  # "constant" or "v" (V-shaped scheduled DropHead)
    seed: int = 0
    checkpoint: str | None = None  # path of the checkpoint file (written atomically)
    checkpoint_every: int = 200  # steps between checkpoints; one is always written at the end
    resume: bool = True  # continue from `checkpoint` when it exists
    val_every: int | None = None  # steps between calls of val_fn (rank 0 only)
    progress: bool = False  # tqdm progress bar (rank 0 only)
    label: str = "transformer"  # the progress bar's name, e.g. "transformer-drophead seed 1"
    device: str | None = None  # None: the process's GPU under torchrun with nccl, else CUDA if available, else CPU
    extra: dict = field(default_factory=dict)  # free-form, stored in checkpoints

    def __post_init__(self):
        if self.drophead_schedule not in ("constant", "v"):
            raise ValueError(f"drophead_schedule must be 'constant' or 'v', not {self.drophead_schedule!r}")
        if self.steps < 0 or self.batch_size < 1 or self.warmup_steps < 0:
            raise ValueError("steps, batch_size and warmup_steps must be non-negative (batch_size >= 1)")


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up, then cosine decay to min_lr."""
    c = config
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    decay_steps = max(1, c.steps - c.warmup_steps)
    progress = min(1.0, (step - c.warmup_steps) / decay_steps)
    return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and embeddings (dim >= 2), none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and p is not getattr(model.memory, "region_pos", None)]
    decay_ids = {id(p) for p in decay}
    no_decay = [p for p in params if id(p) not in decay_ids]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas))


# ----------------------------------------------------------------------------------------------------------
# Distributed


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None


def setup_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (RANK/WORLD_SIZE set): nccl when CUDA is available,
    gloo otherwise. A plain `python` launch returns a single-process DistInfo and initializes nothing."""
    if dist.is_available() and dist.is_initialized():
        return _dist_info()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return _dist_info()


def _dist_info() -> DistInfo:
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                    dist.get_backend())


def _device(config: TrainConfig, info: DistInfo) -> torch.device:
    if config.device is not None:
        return torch.device(config.device)
    if info.backend == "nccl":
        return torch.device("cuda", info.local_rank)
    if info.world_size == 1 and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


# ----------------------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path, model, optimizer=None, step: int = 0, history: dict | None = None,
                    train_config: TrainConfig | None = None) -> None:
    """torch.save into memory, then an atomic write: a crash never leaves a truncated checkpoint behind."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "history": history if history is not None else _new_history(),
        "train_config": asdict(train_config) if train_config is not None else None,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, map_location="cpu") -> dict:
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a capeval_models torch checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')} (expected {CHECKPOINT_VERSION})")
    return state


def load_model(path, device="cpu") -> CaptioningTransformer:
    """Rebuild a CaptioningTransformer from a checkpoint, in eval mode."""
    state = load_checkpoint(path, map_location=device)
    model = CaptioningTransformer.from_config(state["model_config"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def _check_architecture(model, saved: dict, path) -> None:
    current = model.config.to_dict()
    diff = {k: (saved.get(k), current.get(k)) for k in _ARCHITECTURE if saved.get(k) != current.get(k)}
    if diff:
        details = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"{path}: cannot resume, the model differs from the checkpoint's ({details})")


# ----------------------------------------------------------------------------------------------------------
# Training loop


def _new_history() -> dict:
    # the same keys as the numpy Trainer's history where they mean the same thing ("iteration", "loss", "val")
    return {"iteration": [], "loss": [], "lr": [], "grad_norm": [], "drophead": [], "val": []}


def _step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def train_transformer(model: CaptioningTransformer, split, config: TrainConfig | None = None, *,
                      val_fn=None, callback=None) -> dict:
    """Train `model` on `split` (anything with sample_minibatch(batch_size, rng) -> dict(captions, features,
    regions, ...)) for config.steps optimizer steps; returns the history dict (per step: iteration, loss, lr,
    grad_norm, drophead; and val: [{"iteration": s, **val_fn(model)}] every val_every steps; the numpy
    Trainer's keys).

    With config.checkpoint set, a checkpoint is written every checkpoint_every steps and at the end, and an
    existing one is resumed from (config.resume). Ctrl-C writes a checkpoint of the last finished step before
    re-raising. callback(step, loss) runs after each step (step counts from 1). Under torchrun the model is
    wrapped in DistributedDataParallel; each process samples its own minibatches, rank 0 writes checkpoints.
    """
    config = config or TrainConfig()
    info = _dist_info()
    device = _device(config, info)
    model.to(device)
    net = model
    if info.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, config)
    history, start = _new_history(), 0
    ckpt_path = Path(config.checkpoint) if config.checkpoint else None
    if ckpt_path is not None and config.resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        _check_architecture(model, state["model_config"], ckpt_path)
        model.load_state_dict(state["model"])
        if state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]

    def checkpoint(done: int) -> None:
        if ckpt_path is not None and info.rank == 0:
            save_checkpoint(ckpt_path, model, optimizer, done, history, config)

    bar = None
    if config.progress and info.rank == 0 and start < config.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=config.label, unit="step", dynamic_ncols=True)
    done = start
    try:
        for step in range(start, config.steps):
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            p_drop = model.config.drophead if model.config.use_drophead else 0.0
            if config.drophead_schedule == "v":
                p_drop = scheduled_drophead_rate(step, config.steps, p_drop)
            model.set_drophead_rate(p_drop)

            seed = _step_seed(config.seed, info.rank, step)
            torch.manual_seed(seed)  # dropout and DropHead masks of this step
            batch = split.sample_minibatch(config.batch_size, np.random.default_rng(seed))
            captions = torch.as_tensor(np.asarray(batch["captions"]), dtype=torch.long, device=device)
            image = model.image_input(batch)

            model.train()
            logits = net(captions[:, :-1], image)  # (N, T-1, V)
            loss = caption_loss(logits, captions[:, 1:], config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = config.grad_clip if config.grad_clip is not None else float("inf")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()

            loss_value = loss.detach()
            if info.world_size > 1:
                dist.all_reduce(loss_value)
                loss_value /= info.world_size
            loss_value = float(loss_value)
            done = step + 1
            history["iteration"].append(done)
            history["loss"].append(loss_value)
            history["lr"].append(lr)
            history["grad_norm"].append(float(grad_norm))
            history["drophead"].append(p_drop)
            if val_fn is not None and config.val_every and done % config.val_every == 0 and info.rank == 0:
                history["val"].append({"iteration": done, **val_fn(model)})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}")
            if callback is not None:
                callback(done, loss_value)
            if done % max(1, config.checkpoint_every) == 0 or done == config.steps:
                checkpoint(done)
                if info.world_size > 1:
                    dist.barrier()
    except KeyboardInterrupt:
        checkpoint(done)
        raise
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


@torch.no_grad()
def evaluate_loss(model: CaptioningTransformer, split, batch_size: int = 256) -> float:
    """Mean per-token cross-entropy (no label smoothing) over every caption of `split`, in order."""
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    total, tokens = 0.0, 0
    captions = np.asarray(split.captions)
    idxs = np.asarray(split.image_idxs)
    source = split.features if model.config.memory == "global" else split.regions
    for i in range(0, len(captions), batch_size):
        caps = torch.as_tensor(captions[i: i + batch_size], dtype=torch.long, device=device)
        image = torch.as_tensor(np.asarray(source[idxs[i: i + batch_size]]), dtype=torch.float32, device=device)
        n = int((caps[:, 1:] != NULL).sum())
        total += float(caption_loss(model(caps[:, :-1], image), caps[:, 1:])) * n
        tokens += n
    model.train(was_training)
    return total / max(tokens, 1)
