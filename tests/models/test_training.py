"""Update rules, the training loop, and its checkpoints (atomic, resumable, verified)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_data import TinyCaptions as _TinyCaptions

from capeval_models import optim, training
from capeval_models.rnn import CaptioningRNN
from capeval_models.training import (
    CheckpointError,
    NumpyTrainer,
    Trainer,
    blas_threads,
    pack_state,
    read_checkpoint,
    unpack_state,
)

# ---------------------------------------------------------------------------------------------------------
# Update rules


def test_adam_matches_textbook_formula():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 5))
    config = {"learning_rate": 1e-2}
    ref_w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-2
    for t in range(1, 6):
        dw = rng.standard_normal(w.shape)
        w, config = optim.adam(w, dw, config)
        m = b1 * m + (1 - b1) * dw
        v = b2 * v + (1 - b2) * dw**2
        ref_w = ref_w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(w, ref_w, rtol=1e-12, atol=1e-15)
    assert config["t"] == 5


def test_sgd_and_momentum():
    w, dw = np.ones(3), np.array([1.0, -2.0, 0.5])
    w1, _ = optim.sgd(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(w1, [0.9, 1.2, 0.95])
    config = {"learning_rate": 0.1, "momentum": 0.5}
    w1, config = optim.sgd_momentum(w, dw, config)
    w2, config = optim.sgd_momentum(w1, dw, config)
    np.testing.assert_allclose(w2, w - 0.1 * dw - (0.5 * 0.1 + 0.1) * dw)


def test_adam_keeps_float32():
    w = np.ones(3, dtype=np.float32)
    w, config = optim.adam(w, np.ones(3, dtype=np.float32))
    assert w.dtype == np.float32 and config["m"].dtype == np.float32


def test_optimizer_state_roundtrip_and_lr():
    rng = np.random.default_rng(1)
    params = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 2))}
    opt = optim.Optimizer("adam", {"learning_rate": 1e-3, "beta1": 0.8})
    opt.step(params, {k: np.ones_like(v) for k, v in params.items()})
    opt.set_learning_rate(5e-4)
    arrays, meta = opt.state()
    json.dumps(meta)  # scalars only
    other = optim.Optimizer("adam")
    other.load_state(arrays, json.loads(json.dumps(meta)))
    assert other.configs["a"]["learning_rate"] == 5e-4 and other.configs["b"]["beta1"] == 0.8
    np.testing.assert_array_equal(other.configs["b"]["v"], opt.configs["b"]["v"])
    with pytest.raises(ValueError, match="update rule"):
        optim.Optimizer("sgd").load_state(arrays, meta)
    with pytest.raises(ValueError, match="unknown"):
        optim.Optimizer("adagrad")


# ---------------------------------------------------------------------------------------------------------
# State packing, BLAS threads


def test_pack_unpack_state_roundtrip():
    state = {
        "state": {0: {"step": 3, "exp_avg": np.arange(3.0)}, 1: {"exp_avg": np.ones((2, 2), np.float32)}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.98), "params": [0, 1], "name": None}],
        "flag": True,
        "scalar": np.float32(2.5),
    }
    arrays, meta = pack_state(state)
    meta = json.loads(json.dumps(meta))
    back = unpack_state(arrays, meta)
    assert back["state"][0]["step"] == 3 and set(back["state"]) == {0, 1}
    np.testing.assert_array_equal(back["state"][1]["exp_avg"], state["state"][1]["exp_avg"])
    assert back["state"][1]["exp_avg"].dtype == np.float32
    assert back["param_groups"][0]["betas"] == (0.9, 0.98)
    assert back["flag"] is True and back["scalar"] == 2.5
    with pytest.raises(TypeError):
        pack_state({"x": object()})


def test_blas_threads_restores_setting():
    funcs = training._loaded_openblas()
    before = [get() for get, _ in funcs]
    with blas_threads(1):
        assert all(get() == 1 for get, _ in funcs)
    assert [get() for get, _ in funcs] == before
    with blas_threads(None):
        pass


def TinyCaptions(**kw):  # noqa: N802 - the small defaults of these tests
    return _TinyCaptions(**{"n": 12, "D": 6, "T": 7, "n_words": 8, "min_words": 2, "id_prefix": "", **kw})


# ---------------------------------------------------------------------------------------------------------
# The loop


def _trainer(data, tmp_path=None, cell="lstm", **kw):
    model = CaptioningRNN(data.word_to_idx, 6, 5, 8, cell_type=cell, dtype=np.float64, seed=0)
    kw.setdefault("batch_size", 4)
    kw.setdefault("num_epochs", 4)
    kw.setdefault("lr_decay", 0.9)
    return NumpyTrainer(
        model, data, learning_rate=1e-2, checkpoint_dir=tmp_path, progress=False, seed=5, **kw
    )


class RecordingTrainer(Trainer):
    """A framework-free subclass: records what the loop asks for."""

    def __init__(self, data, **kw):
        super().__init__(data, progress=False, **kw)
        self.lrs, self.batches = [], []
        self.w = np.zeros(2)

    def model_step(self, batch):
        self.batches.append(batch)
        self.w += 1
        return 1.0 / (1 + len(self.batches))

    def set_learning_rate(self, lr):
        self.lrs.append(lr)

    def state_dict(self):
        return pack_state({"w": self.w, "n": len(self.batches)})

    def load_state_dict(self, arrays, meta):
        self.w = unpack_state(arrays, meta)["w"]


def test_epochs_and_lr_decay():
    data = TinyCaptions(n=12)
    t = RecordingTrainer(data, batch_size=4, num_epochs=3, learning_rate=1.0, lr_decay=0.5)
    history = t.train()
    assert t.iterations_per_epoch == 3 and t.iteration == 9 and t.epoch == 3
    assert t.lrs == [1.0] * 3 + [0.5] * 3 + [0.25] * 3
    assert len(history["loss"]) == 9
    assert all(b["captions"].shape == (4, 7) for b in t.batches)


def test_lr_schedule_and_num_iterations():
    data = TinyCaptions(n=12)
    t = RecordingTrainer(data, batch_size=4, num_iterations=5, lr_schedule=lambda it, ep: 0.1 * (it + 1) + ep)
    t.train()
    assert t.iteration == 5
    assert t.lrs == pytest.approx([0.1, 0.2, 0.3, 1.4, 1.5])


def test_val_fn_and_best_checkpoint(tmp_path):
    data = TinyCaptions(n=12)
    scores = iter([0.3, 0.5, 0.4])
    t = RecordingTrainer(
        data,
        batch_size=4,
        num_epochs=3,
        val_fn=lambda tr: {"cider": next(scores), "epoch_seen": tr.epoch},
        best_metric="cider",
        checkpoint_dir=tmp_path,
    )
    history = t.train()
    assert [v["cider"] for v in history["val"]] == [0.3, 0.5, 0.4]
    assert [v["epoch"] for v in history["val"]] == [1, 2, 3]
    assert history["best"] == {"metric": "cider", "value": 0.5, "iteration": 6}
    arrays, record = read_checkpoint(tmp_path / "best.json")
    assert record["iteration"] == 6
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["best-00000006.npz", "latest-00000009.npz"]


def test_non_finite_loss_stops(tmp_path):
    data = TinyCaptions()

    class Exploding(RecordingTrainer):
        def model_step(self, batch):
            return float("nan") if len(self.batches) >= 2 else super().model_step(batch)

    t = Exploding(data, batch_size=4, num_epochs=5, checkpoint_dir=tmp_path, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match="iteration 3"):
        t.train()
    _, record = read_checkpoint(tmp_path)
    assert record["iteration"] == 2


def test_numpy_trainer_reduces_loss():
    data = TinyCaptions()
    t = _trainer(data, num_epochs=40, lr_decay=1.0)
    before, _ = t.model.loss(data.features, data.captions)
    history = t.train()
    after, _ = t.model.loss(data.features, data.captions)
    assert len(history["loss"]) == 120
    assert after < 0.5 * before


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_resume_continues_exactly(tmp_path, cell):
    data = TinyCaptions()
    full = _trainer(data, cell=cell)
    full_history = full.train()

    first = _trainer(data, tmp_path, cell=cell, num_epochs=2)  # stops after 6 of the 12 iterations
    first.train()
    second = _trainer(data, tmp_path, cell=cell)
    assert second.resume() and second.iteration == 6
    history = second.train()
    assert history["loss"] == full_history["loss"]  # same minibatches, same updates: bit for bit
    for k in full.model.params:
        np.testing.assert_array_equal(second.model.params[k], full.model.params[k])
        np.testing.assert_array_equal(second.optimizer.configs[k]["m"], full.optimizer.configs[k]["m"])
    assert second.optimizer.configs["Wx"]["t"] == 12


def test_checkpoint_files(tmp_path):
    data = TinyCaptions()
    t = _trainer(data, tmp_path, num_epochs=2)
    t.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest-00000006.npz", "latest.json"]
    record = json.loads((tmp_path / "latest.json").read_text())
    assert record["arrays"] == "latest-00000006.npz" and record["iteration"] == 6 and record["epoch"] == 2
    assert record["state"]["model"]["cell_type"] == "lstm"
    with np.load(tmp_path / "latest-00000006.npz", allow_pickle=False) as z:
        assert "param/W_embed" in z.files and "optim/W_embed/m" in z.files
    # a fresh model can be rebuilt from the checkpoint alone
    arrays, record = read_checkpoint(tmp_path)
    model = CaptioningRNN(**{k: v for k, v in record["state"]["model"].items() if k != "class"})
    model.load_params({k[6:]: v for k, v in arrays.items() if k.startswith("param/")})
    np.testing.assert_array_equal(model.params["Wh"], t.model.params["Wh"])


def test_crash_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch):
    data = TinyCaptions()
    t = _trainer(data, tmp_path, num_epochs=1)
    t.train()  # latest -> iteration 3
    t.num_iterations = 6

    def broken_pointer_write(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(training, "atomic_write_text", broken_pointer_write)
    with pytest.raises(OSError, match="disk full"):
        t.train()  # the arrays of iteration 6 get written, the pointer does not
    monkeypatch.undo()
    _, record = read_checkpoint(tmp_path)
    assert record["iteration"] == 3
    assert (tmp_path / "latest-00000003.npz").exists()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(training.np, "savez", broken_savez)
    with pytest.raises(OSError):
        t.save_checkpoint()
    monkeypatch.undo()
    resumed = _trainer(data, tmp_path)
    assert resumed.resume() and resumed.iteration == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_or_mismatched_checkpoints(tmp_path):
    data = TinyCaptions()
    t = _trainer(data, tmp_path, num_epochs=1)
    t.train()
    npz = tmp_path / "latest-00000003.npz"
    good = npz.read_bytes()
    npz.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="SHA-256"):
        _trainer(data, tmp_path).resume()
    npz.write_bytes(good)
    with pytest.raises(CheckpointError, match="batch_size"):
        _trainer(data, tmp_path, batch_size=3).resume()
    other = TinyCaptions()
    wrong = NumpyTrainer(
        CaptioningRNN(other.word_to_idx, 6, 5, 9, cell_type="lstm"),
        other,
        batch_size=4,
        checkpoint_dir=tmp_path,
    )
    with pytest.raises(CheckpointError, match="does not fit"):
        wrong.resume()
    (tmp_path / "latest.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a"):
        read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / "missing.json")
    assert not _trainer(data, tmp_path / "empty").resume()
