"""CaptioningRNN: CS231n's published losses, full-model gradient checks, overfitting, sampling, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_data import TinyCaptions

from capeval_models import layers as L
from capeval_models.gradcheck import check_model_gradients
from capeval_models.rnn import CaptioningRNN
from capeval_models.training import NumpyTrainer

SPECIALS = ["<NULL>", "<START>", "<END>", "<UNK>"]


def _vocab(n_words):
    return {w: i for i, w in enumerate(SPECIALS + [f"w{i}" for i in range(n_words)])}


@pytest.mark.parametrize(
    ("cell_type", "feature_lo", "feature_hi", "expected"),
    [("rnn", -1.5, 0.3, 9.83235591003), ("lstm", -0.5, 1.7, 9.82445935443)],
)
def test_published_loss(cell_type, feature_lo, feature_hi, expected):
    # CS231n RNN_Captioning.ipynb / LSTM_Captioning.ipynb, "captioning model" loss check
    N, D, W, H = 10, 20, 30, 40
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    T = 13
    model = CaptioningRNN(
        word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type, dtype=np.float64
    )
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(v.shape)
    features = np.linspace(feature_lo, feature_hi, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert abs(loss - expected) < 1e-9
    assert set(grads) == set(model.params)


def test_param_names_and_shapes():
    D, W, H = 7, 5, 6
    w2i = _vocab(6)
    V = len(w2i)
    rnn = CaptioningRNN(w2i, D, W, H, cell_type="rnn")
    lstm = CaptioningRNN(w2i, D, W, H, cell_type="lstm")
    common = {"W_proj": (D, H), "b_proj": (H,), "W_embed": (V, W), "W_vocab": (H, V), "b_vocab": (V,)}
    assert rnn.param_shapes() == {**common, "Wx": (W, H), "Wh": (H, H), "b": (H,)}
    assert lstm.param_shapes() == {**common, "Wx": (W, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,)}
    assert all(v.dtype == np.float32 for v in rnn.params.values())
    assert not np.any(rnn.params["b"]) and not np.any(rnn.params["b_vocab"])


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_full_model_gradients(cell_type):
    rng = np.random.default_rng(231)
    N, T, D, W, H = 3, 6, 4, 5, 6
    w2i = _vocab(5)
    model = CaptioningRNN(w2i, D, W, H, cell_type=cell_type, dtype=np.float64, seed=1)
    for k in model.params:  # non-zero biases and larger weights, so that every term is exercised
        model.params[k] = rng.standard_normal(model.params[k].shape) * 0.5
    features = rng.standard_normal((N, D))
    captions = rng.integers(1, len(w2i), size=(N, T))
    captions[0, 4:] = 0  # some <NULL> targets, masked out of the loss
    captions[2, 2:] = 0
    loss, grads = model.loss(features, captions)
    errors = check_model_gradients(
        lambda: model.loss(features, captions)[0], model.params, grads, h=1e-3, order=4
    )
    assert set(errors) == set(model.params)
    assert max(errors.values()) < 1e-7, errors


def test_null_steps_do_not_count():
    rng = np.random.default_rng(0)
    w2i = _vocab(5)
    model = CaptioningRNN(w2i, 4, 5, 6, cell_type="lstm", dtype=np.float64, seed=0)
    features = rng.standard_normal((2, 4))
    captions = np.array([[1, 5, 6, 2, 0, 0], [1, 7, 2, 0, 0, 0]])
    loss_short, _ = model.loss(features, captions[:, :4])
    loss_long, _ = model.loss(features, captions)
    # the extra steps only have <NULL> targets except row 0's <END> at position 3, already in [:, :4]
    assert loss_long == pytest.approx(loss_short, rel=1e-12)
    all_null = np.zeros((2, 5), dtype=int)
    loss0, grads0 = model.loss(features, all_null)
    assert loss0 == 0.0 and all(not np.any(g) for g in grads0.values())


def test_float32_loss_and_grads():
    rng = np.random.default_rng(0)
    w2i = _vocab(10)
    for cell in ("rnn", "lstm"):
        m32 = CaptioningRNN(w2i, 8, 6, 7, cell_type=cell, dtype=np.float32, seed=0)
        m64 = CaptioningRNN(w2i, 8, 6, 7, cell_type=cell, dtype=np.float64, seed=0)
        features = rng.standard_normal((4, 8))
        captions = rng.integers(0, len(w2i), size=(4, 9))
        loss32, grads32 = m32.loss(features, captions)
        loss64, _ = m64.loss(features, captions)
        assert all(g.dtype == np.float32 for g in grads32.values())
        assert loss32 == pytest.approx(loss64, rel=1e-5)


def test_bad_inputs():
    w2i = _vocab(3)
    with pytest.raises(ValueError, match="cell_type"):
        CaptioningRNN(w2i, 4, 5, 6, cell_type="gru")
    with pytest.raises(ValueError, match="<NULL>"):
        CaptioningRNN({"a": 0}, 4, 5, 6)
    model = CaptioningRNN(w2i, 4, 5, 6)
    with pytest.raises(ValueError, match="features"):
        model.loss(np.zeros((2, 3)), np.zeros((2, 5), dtype=int))
    with pytest.raises(ValueError, match="captions"):
        model.loss(np.zeros((2, 4)), np.zeros((3, 5), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        model.loss(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="START"):
        CaptioningRNN({"<NULL>": 0, "a": 1}, 4, 5, 6).sample(np.zeros((1, 4)))


# ---------------------------------------------------------------------------------------------------------
# Sampling


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_sample_matches_stepwise_reference(cell_type):
    rng = np.random.default_rng(2)
    w2i = _vocab(8)
    model = CaptioningRNN(w2i, 5, 4, 6, cell_type=cell_type, dtype=np.float64, seed=3)
    for k in model.params:
        model.params[k] = rng.standard_normal(model.params[k].shape)
    features = rng.standard_normal((6, 5))
    out = model.sample(features, max_length=7)
    assert out.shape == (6, 7)

    # reference: one row at a time, through the step layers (sample() has its own vectorized loop)
    p = model.params
    for n in range(6):
        h = features[n : n + 1] @ p["W_proj"] + p["b_proj"]
        c = np.zeros_like(h)
        word, expected = w2i["<START>"], []
        for _ in range(7):
            x = p["W_embed"][[word]]
            if cell_type == "rnn":
                h, _ = L.rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
            else:
                h, c, _ = L.lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
            word = int(np.argmax(h @ p["W_vocab"] + p["b_vocab"]))
            expected.append(word)
            if word == w2i["<END>"]:
                break
        expected += [w2i["<NULL>"]] * (7 - len(expected))
        assert out[n].tolist() == expected


def test_sample_stops_at_end():
    w2i = _vocab(4)
    model = CaptioningRNN(w2i, 3, 4, 5, cell_type="lstm", dtype=np.float64, seed=0)
    model.params["b_vocab"][w2i["<END>"]] = 100.0  # every row ends at once
    out = model.sample(np.ones((3, 3)), max_length=5)
    assert out[:, 0].tolist() == [w2i["<END>"]] * 3
    assert np.all(out[:, 1:] == w2i["<NULL>"])
    assert model.decode(out) == ["", "", ""]


def test_save_load_roundtrip(tmp_path):
    w2i = _vocab(6)
    model = CaptioningRNN(w2i, 5, 4, 6, cell_type="lstm", dtype=np.float64, seed=4)
    model.save(tmp_path / "m.npz")
    back = CaptioningRNN.load(tmp_path / "m.npz")
    assert back.config() == model.config()
    for k in model.params:
        np.testing.assert_array_equal(back.params[k], model.params[k])
    with pytest.raises(ValueError, match="shape"):
        CaptioningRNN(w2i, 5, 4, 7, cell_type="lstm").load_params(model.params)


# ---------------------------------------------------------------------------------------------------------
# Overfitting a small training set


@pytest.mark.slow
@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_overfit_small_data(cell_type):
    data = TinyCaptions()
    model = CaptioningRNN(data.word_to_idx, 32, 64, 128, cell_type=cell_type, dtype=np.float32, seed=0)
    trainer = NumpyTrainer(
        model,
        data,
        batch_size=25,
        num_iterations=300,
        learning_rate=1e-2,
        lr_decay=0.995,
        progress=False,
        blas_threads=1,
        seed=0,
    )
    history = trainer.train()
    assert len(history["loss"]) == 300
    assert history["loss"][0] > 20  # about 11 words x ln(40) each at the start
    assert history["loss"][-1] < 0.1
    full_loss, _ = model.loss(data.features, data.captions)
    assert full_loss < 0.1
    # memorised: greedy sampling reproduces every training caption (after <START>, through <END>)
    np.testing.assert_array_equal(model.sample(data.features, max_length=16), data.captions[:, 1:])
