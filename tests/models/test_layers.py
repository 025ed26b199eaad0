"""Layers of capeval_models.layers: CS231n's published forward values and numeric gradient checks (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from capeval_models import layers as L
from capeval_models.gradcheck import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

GRAD_TOL = 1e-7
# five-point stencil, h = 1e-3: numeric gradients good to ~1e-10 relative here (see gradcheck's docstring)
NUM = {"h": 1e-3, "order": 4}


def _lin(lo, hi, *shape):
    return np.linspace(lo, hi, num=int(np.prod(shape))).reshape(shape)


# ---------------------------------------------------------------------------------------------------------
# Forward values published in CS231n's RNN_Captioning / LSTM_Captioning notebooks (8 significant digits).


def test_rnn_step_forward_published():
    N, D, H = 3, 10, 4
    next_h, _ = L.rnn_step_forward(
        _lin(-0.4, 0.7, N, D),
        _lin(-0.2, 0.5, N, H),
        _lin(-0.1, 0.9, D, H),
        _lin(-0.3, 0.7, H, H),
        _lin(-0.2, 0.4, H),
    )
    expected = np.asarray(
        [
            [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
            [0.66854692, 0.79562378, 0.87755553, 0.92795967],
            [0.97934501, 0.99144213, 0.99646691, 0.99854353],
        ]
    )
    assert rel_error(expected, next_h) < 1e-8


def test_rnn_forward_published():
    N, T, D, H = 2, 3, 4, 5
    h, _ = L.rnn_forward(
        _lin(-0.1, 0.3, N, T, D),
        _lin(-0.3, 0.1, N, H),
        _lin(-0.2, 0.4, D, H),
        _lin(-0.4, 0.1, H, H),
        _lin(-0.7, 0.1, H),
    )
    expected = np.asarray(
        [
            [
                [-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
                [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
                [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525],
            ],
            [
                [-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
                [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
                [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043],
            ],
        ]
    )
    assert rel_error(expected, h) < 1e-7


def test_lstm_step_forward_published():
    N, D, H = 3, 4, 5
    next_h, next_c, _ = L.lstm_step_forward(
        _lin(-0.4, 1.2, N, D),
        _lin(-0.3, 0.7, N, H),
        _lin(-0.4, 0.9, N, H),
        _lin(-2.1, 1.3, D, 4 * H),
        _lin(-0.7, 2.2, H, 4 * H),
        _lin(0.3, 0.7, 4 * H),
    )
    expected_h = np.asarray(
        [
            [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
            [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
            [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299],
        ]
    )
    expected_c = np.asarray(
        [
            [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
            [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
            [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676],
        ]
    )
    assert rel_error(expected_h, next_h) < 1e-7
    assert rel_error(expected_c, next_c) < 1e-7


def test_lstm_forward_published():
    N, D, H, T = 2, 5, 4, 3
    h, _ = L.lstm_forward(
        _lin(-0.4, 0.6, N, T, D),
        _lin(-0.4, 0.8, N, H),
        _lin(-0.2, 0.9, D, 4 * H),
        _lin(-0.3, 0.6, H, 4 * H),
        _lin(0.2, 0.7, 4 * H),
    )
    expected = np.asarray(
        [
            [
                [0.01764008, 0.01823233, 0.01882671, 0.0194232],
                [0.11287491, 0.12146228, 0.13018446, 0.13902939],
                [0.31358768, 0.33338627, 0.35304453, 0.37250975],
            ],
            [
                [0.45767879, 0.4761092, 0.4936887, 0.51041945],
                [0.6704845, 0.69350089, 0.71486014, 0.7346449],
                [0.81733511, 0.83677871, 0.85403753, 0.86935314],
            ],
        ]
    )
    assert rel_error(expected, h) < 1e-7


def test_word_embedding_forward_published():
    V, D = 5, 3
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    out, _ = L.word_embedding_forward(x, _lin(0, 1, V, D))
    expected = np.asarray(
        [
            [[0.0, 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429],
             [0.21428571, 0.28571429, 0.35714286], [0.42857143, 0.5, 0.57142857]],
            [[0.42857143, 0.5, 0.57142857], [0.21428571, 0.28571429, 0.35714286],
             [0.0, 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429]],
        ]
    )  # fmt: skip
    assert rel_error(expected, out) < 1e-7


@pytest.mark.parametrize(("N", "T", "V", "p"), [(100, 1, 10, 1.0), (100, 10, 10, 1.0), (5000, 10, 10, 0.1)])
def test_temporal_softmax_loss_near_uniform(N, T, V, p):
    # Scores close to zero give a loss of ln(V) per unmasked step, summed over T, averaged over N.
    rng = np.random.default_rng(0)
    x = 0.001 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) <= p
    loss, _ = L.temporal_softmax_loss(x, y, mask)
    assert loss == pytest.approx(np.log(V) * mask.sum() / N, rel=1e-3)
    assert loss == pytest.approx(np.log(V) * T * p, rel=0.05)


# ---------------------------------------------------------------------------------------------------------
# Numeric gradient checks


def _check_array_grads(forward, inputs, dout, analytic):
    """forward(*inputs) -> array; compare d sum(forward * dout) / d inputs[i] with analytic[i]."""
    for i, (x, dx) in enumerate(zip(inputs, analytic)):

        def f(xi, i=i):
            args = list(inputs)
            args[i] = xi
            return forward(*args)

        num = eval_numerical_gradient_array(f, x, dout, **NUM)
        assert dx.shape == x.shape
        assert rel_error(num, dx) < GRAD_TOL, f"input {i}: rel error {rel_error(num, dx)}"


def test_affine_backward():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((5, 2, 3)), rng.standard_normal((6, 4)), rng.standard_normal(4)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    _check_array_grads(lambda *a: L.affine_forward(*a)[0], [x, w, b], dout, L.affine_backward(dout, cache))


def test_rnn_step_backward():
    rng = np.random.default_rng(231)
    N, D, H = 4, 5, 6
    args = [rng.standard_normal(s) for s in [(N, D), (N, H), (D, H), (H, H), (H,)]]
    out, cache = L.rnn_step_forward(*args)
    dout = rng.standard_normal(out.shape)
    _check_array_grads(lambda *a: L.rnn_step_forward(*a)[0], args, dout, L.rnn_step_backward(dout, cache))


def test_rnn_backward():
    rng = np.random.default_rng(231)
    N, D, T, H = 2, 3, 10, 5
    args = [rng.standard_normal(s) for s in [(N, T, D), (N, H), (D, H), (H, H), (H,)]]
    out, cache = L.rnn_forward(*args)
    dout = rng.standard_normal(out.shape)
    _check_array_grads(lambda *a: L.rnn_forward(*a)[0], args, dout, L.rnn_backward(dout, cache))


def test_rnn_forward_matches_steps():
    rng = np.random.default_rng(3)
    N, D, T, H = 3, 4, 6, 5
    x, h0, Wx, Wh, b = [rng.standard_normal(s) for s in [(N, T, D), (N, H), (D, H), (H, H), (H,)]]
    h, _ = L.rnn_forward(x, h0, Wx, Wh, b)
    prev = h0
    for t in range(T):
        prev, _ = L.rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev, rtol=1e-12, atol=1e-12)


def test_lstm_step_backward():
    rng = np.random.default_rng(231)
    N, D, H = 4, 5, 6
    args = [rng.standard_normal(s) for s in [(N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]]
    next_h, next_c, cache = L.lstm_step_forward(*args)
    dnext_h = rng.standard_normal(next_h.shape)
    dnext_c = rng.standard_normal(next_c.shape)
    analytic = L.lstm_step_backward(dnext_h, dnext_c, cache)
    # d/dx of sum(h * dnext_h) + sum(c * dnext_c): both outputs, so the cell-state shortcut is covered
    for i, x in enumerate(args):

        def f_h(xi, i=i, k=0):
            a = list(args)
            a[i] = xi
            return L.lstm_step_forward(*a)[k]

        num = eval_numerical_gradient_array(f_h, x, dnext_h, **NUM) + eval_numerical_gradient_array(
            lambda xi, i=i: f_h(xi, i, 1), x, dnext_c, **NUM
        )
        assert rel_error(num, analytic[i]) < GRAD_TOL, f"input {i}: {rel_error(num, analytic[i])}"


def test_lstm_backward():
    rng = np.random.default_rng(231)
    N, D, T, H = 2, 3, 10, 6
    args = [rng.standard_normal(s) for s in [(N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]]
    out, cache = L.lstm_forward(*args)
    dout = rng.standard_normal(out.shape)
    _check_array_grads(lambda *a: L.lstm_forward(*a)[0], args, dout, L.lstm_backward(dout, cache))


def test_lstm_forward_matches_steps():
    rng = np.random.default_rng(4)
    N, D, T, H = 3, 4, 6, 5
    x, h0, Wx, Wh, b = [rng.standard_normal(s) for s in [(N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]]
    h, _ = L.lstm_forward(x, h0, Wx, Wh, b)
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c, _ = L.lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-12)


def test_word_embedding_backward_repeated_ids():
    rng = np.random.default_rng(5)
    N, T, V, D = 50, 3, 5, 6  # many repeated ids: np.add.at must accumulate them
    x = rng.integers(V, size=(N, T))
    W = rng.standard_normal((V, D))
    out, cache = L.word_embedding_forward(x, W)
    dout = rng.standard_normal(out.shape)
    dW = L.word_embedding_backward(dout, cache)
    num = eval_numerical_gradient_array(lambda w: L.word_embedding_forward(x, w)[0], W, dout, **NUM)
    assert rel_error(num, dW) < GRAD_TOL


def test_temporal_affine_backward():
    rng = np.random.default_rng(6)
    N, T, D, M = 2, 3, 4, 5
    args = [rng.standard_normal(s) for s in [(N, T, D), (D, M), (M,)]]
    out, cache = L.temporal_affine_forward(*args)
    dout = rng.standard_normal(out.shape)
    _check_array_grads(
        lambda *a: L.temporal_affine_forward(*a)[0], args, dout, L.temporal_affine_backward(dout, cache)
    )


def test_temporal_softmax_loss_backward():
    rng = np.random.default_rng(7)
    N, T, V = 6, 7, 8
    x = rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) > 0.5
    _, dx = L.temporal_softmax_loss(x, y, mask)
    num = eval_numerical_gradient(lambda xx: L.temporal_softmax_loss(xx, y, mask)[0], x, **NUM)
    assert rel_error(num, dx) < GRAD_TOL
    assert np.all(dx[~mask] == 0)


def test_temporal_softmax_loss_large_scores_finite():
    x = np.array([[[1000.0, 0.0, -1000.0]]])
    loss, dx = L.temporal_softmax_loss(x, np.array([[2]]), np.array([[True]]))
    assert loss == pytest.approx(2000.0)
    assert np.all(np.isfinite(dx))


def test_float32_stays_float32():
    rng = np.random.default_rng(8)
    N, D, T, H = 2, 3, 4, 5
    f32 = np.float32
    x, h0 = rng.standard_normal((N, T, D)).astype(f32), rng.standard_normal((N, H)).astype(f32)
    for fwd, bwd, G in [(L.rnn_forward, L.rnn_backward, H), (L.lstm_forward, L.lstm_backward, 4 * H)]:
        Wx, Wh, b = (rng.standard_normal(s).astype(f32) for s in [(D, G), (H, G), (G,)])
        h, cache = fwd(x, h0, Wx, Wh, b)
        assert h.dtype == f32
        assert all(g.dtype == f32 for g in bwd(np.ones_like(h), cache))
