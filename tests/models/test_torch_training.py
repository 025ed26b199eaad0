"""Torch training: schedule, optimizer groups, clipping, label smoothing, atomic checkpoints, exact resume,
DistributedDataParallel under torchrun (2 processes, gloo on CPU)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from toy_split import ToySplit  # noqa: E402

from capeval_models import torch_training as tt  # noqa: E402
from capeval_models.torch_training import (  # noqa: E402
    TrainConfig,
    evaluate_loss,
    load_checkpoint,
    load_model,
    lr_at,
    make_optimizer,
    save_checkpoint,
    train_transformer,
)
from capeval_models.transformer import NULL, CaptioningTransformer, caption_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def split():
    return ToySplit(num_images=24, captions_per_image=2, seed=7)


def make_model(split, memory="global", seed=0, **kw):
    torch.manual_seed(seed)
    dim = split.features.shape[1] if memory == "global" else split.regions.shape[2]
    kw = {"d_model": 32, "n_heads": 4, "n_layers": 2, **kw}
    return CaptioningTransformer(len(split.vocab.idx_to_word), dim, memory=memory, grid_shape=split.grid_shape, **kw)


def test_toy_split_has_the_dataset_interface(split):
    assert split.features.dtype == np.float32 and split.features.shape == (24, 64)
    assert split.regions.shape == (24, 16, 8) and split.grid_shape == (4, 4)
    assert split.images.shape == (24, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.captions.shape == (48, 18) and split.captions.dtype == np.int32
    assert len(split.image_ids) == 24 and split.image_idxs.shape == (48,)
    assert split.vocab.idx_to_word[:4] == ["<NULL>", "<START>", "<END>", "<UNK>"]
    assert split.vocab.decode(split.captions[0]) == split.texts[0]
    batch = split.sample_minibatch(5, np.random.default_rng(0))
    assert batch["captions"].shape == (5, 18) and batch["features"].shape == (5, 64)
    assert batch["regions"].shape == (5, 16, 8) and batch["image_idxs"].shape == (5,)


def test_warmup_then_cosine_decay():
    c = TrainConfig(steps=110, lr=1e-3, min_lr=1e-5, warmup_steps=10)
    assert lr_at(0, c) == pytest.approx(1e-4)
    assert lr_at(4, c) == pytest.approx(5e-4)
    assert lr_at(9, c) == pytest.approx(1e-3)  # warm-up ends at the peak
    assert lr_at(10, c) == pytest.approx(1e-3)
    assert lr_at(60, c) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # half-way through the cosine
    assert lr_at(110, c) == pytest.approx(1e-5)
    lrs = [lr_at(s, c) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    c0 = TrainConfig(steps=5, warmup_steps=0, lr=1.0, min_lr=0.0)
    assert lr_at(0, c0) == pytest.approx(1.0)
    assert lr_at(2, c0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.4)))


def test_weight_decay_only_on_matrices(split):
    model = make_model(split, memory="regions")
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert any(p is model.memory.region_pos for p in no_decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"] if p is not model.memory.region_pos)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_label_smoothing_and_null_targets():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.tensor([[4, 5, 2, 0, 0], [6, 6, 4, 5, 2]])
    ref = torch.nn.functional.cross_entropy(logits[targets != NULL], targets[targets != NULL])
    torch.testing.assert_close(caption_loss(logits, targets), ref)
    sharp = torch.zeros(1, 1, 7)
    sharp[0, 0, 4] = 20.0
    t = torch.tensor([[4]])
    assert caption_loss(sharp, t, 0.1) > caption_loss(sharp, t, 0.0) + 0.1  # confident predictions penalised


def test_training_reduces_loss_with_clipping_and_label_smoothing(split, monkeypatch):
    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **kw):
        seen.append(max_norm)
        return real(params, max_norm, *a, **kw)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    model = make_model(split, use_drophead=True, drophead=0.2)
    before = evaluate_loss(model, split)
    history = train_transformer(model, split, TrainConfig(steps=60, batch_size=16, lr=3e-3, warmup_steps=5,
                                                          grad_clip=0.5, label_smoothing=0.1,
                                                          drophead_schedule="v"))
    assert seen == [0.5] * 60
    assert len(history["loss"]) == 60 and history["iteration"] == list(range(1, 61))
    assert evaluate_loss(model, split) < before - 1.0
    assert history["drophead"][0] == pytest.approx(0.2) and min(history["drophead"]) < 0.01
    assert history["drophead"][-1] == pytest.approx(0.2)
    assert not model.training


def test_checkpoints_are_atomic_and_round_trip(split, tmp_path, monkeypatch):
    model = make_model(split, memory="regions")
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model, step=3)
    first = path.read_bytes()
    state = load_checkpoint(path)
    assert state["step"] == 3 and state["model_config"]["memory"] == "regions"
    restored = load_model(path)
    image = torch.as_tensor(split.regions[:2])
    caps = torch.as_tensor(split.captions[:2, :-1]).long()
    torch.testing.assert_close(restored(caps, image), model.eval()(caps, image))
    assert restored.config.grid_shape == (4, 4)

    def broken(obj, f, *a, **kw):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(tt.torch, "save", broken)
    with pytest.raises(OSError):
        save_checkpoint(path, model, step=4)
    assert path.read_bytes() == first  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temporary file left behind
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):  # noqa: B017 - torch's unpickling error type varies by version
        load_checkpoint(tmp_path / "junk.pt")


def test_resume_after_interruption_continues_exactly(split, tmp_path):
    config = TrainConfig(steps=12, batch_size=8, lr=2e-3, warmup_steps=3, seed=5, checkpoint_every=5)
    full = make_model(split, use_drophead=True, drophead=0.2)  # dropout and DropHead both active
    full_history = train_transformer(full, split, config)

    path = tmp_path / "run.pt"
    cfg = TrainConfig(**{**config.__dict__, "checkpoint": str(path)})
    model = make_model(split, use_drophead=True, drophead=0.2)

    def crash(step, loss):
        if step == 8:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        train_transformer(model, split, cfg, callback=crash)
    assert load_checkpoint(path)["step"] == 5  # the last periodic checkpoint

    resumed = make_model(split, seed=99, use_drophead=True, drophead=0.2)  # different init: the weights come from the checkpoint
    history = train_transformer(resumed, split, cfg)
    assert history["iteration"] == list(range(1, 13))
    np.testing.assert_allclose(history["loss"], full_history["loss"], rtol=1e-6)
    for a, b in zip(resumed.parameters(), full.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert load_checkpoint(path)["step"] == 12
    assert train_transformer(resumed, split, cfg)["iteration"] == list(range(1, 13))  # nothing left to do


def test_ctrl_c_writes_a_checkpoint_and_architecture_mismatch_is_refused(split, tmp_path):
    path = tmp_path / "run.pt"
    cfg = TrainConfig(steps=10, batch_size=4, checkpoint=str(path), checkpoint_every=100)

    def interrupt(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_transformer(make_model(split), split, cfg, callback=interrupt)
    assert load_checkpoint(path)["step"] == 3
    with pytest.raises(ValueError, match="d_model"):
        train_transformer(make_model(split, d_model=64), split, cfg)


def test_validation_callback(split):
    model = make_model(split)
    calls = []

    def val_fn(m):
        calls.append(m.training)
        return {"val_loss": evaluate_loss(m, split)}

    history = train_transformer(model, split, TrainConfig(steps=6, batch_size=4, val_every=3), val_fn=val_fn)
    assert [v["iteration"] for v in history["val"]] == [3, 6]
    assert all(np.isfinite(v["val_loss"]) for v in history["val"])


def _torchrun(tmp_path, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "models" / "ddp_worker.py"), "--d-model", "32", "--batch-size", "16",
           "--checkpoint", str(tmp_path / "ddp.pt"), "--checkpoint-every", "10", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_distributed_data_parallel_with_two_processes(tmp_path):
    summary = tmp_path / "summary.json"
    _torchrun(tmp_path, "--steps", "20", "--summary", str(summary))
    s = json.loads(summary.read_text())
    assert s["world_size"] == 2 and s["backend"] == "gloo"
    assert s["in_sync"] and len(s["param_checksums"]) == 2  # DDP kept both replicas identical
    assert s["steps"] == 20 and s["final_loss"] < s["first_loss"]
    assert load_checkpoint(tmp_path / "ddp.pt")["step"] == 20
    load_model(tmp_path / "ddp.pt")
    # resuming under DDP is the same code path as in one process (every rank loads rank 0's checkpoint);
    # a second torchrun launch would double this test's time on a shared 2-core machine
