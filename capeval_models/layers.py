"""Recurrent-network layers in numpy, as forward/backward pairs with a cache.

Every ``*_forward`` returns ``(out, cache)`` and the matching ``*_backward`` takes the upstream gradient
and that cache and returns the gradients of the inputs, in the order of the forward's arguments. Shapes
follow CS231n's captioning assignment: N batch, T time steps, D input size, H hidden size, V vocabulary.

The whole-sequence recurrences (:func:`rnn_forward`, :func:`lstm_forward`) hoist the input projection out of
the time loop (one ``(N*T, D) @ (D, H)`` product), loop over time only for the recurrent product, and in the
backward pass collect the per-step pre-activation gradients so that ``dx``, ``dWx``, ``dWh`` and ``db`` are
again single matrix products. Nothing loops over the batch. Arrays keep the dtype they come in with.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "affine_forward",
    "affine_backward",
    "sigmoid",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "word_embedding_forward",
    "word_embedding_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "temporal_softmax_loss",
]


# ----------------------------------------------------------------------------------------------------------
# Affine


def affine_forward(x, w, b):
    """out = x @ w + b for x of shape (N, d_1, ..., d_k), flattened to (N, D); w (D, M), b (M,)."""
    x2 = x.reshape(x.shape[0], -1)
    out = x2 @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    """Returns (dx, dw, db) for :func:`affine_forward`."""
    x, w = cache
    x2 = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def sigmoid(x):
    """Logistic function, computed as 0.5 * (1 + tanh(x / 2)): no overflow for large |x|, one ufunc call."""
    out = np.multiply(x, 0.5)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


# ----------------------------------------------------------------------------------------------------------
# Vanilla (tanh) RNN


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One step: next_h = tanh(x @ Wx + prev_h @ Wh + b). x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,)."""
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Returns (dx, dprev_h, dWx, dWh, db) for :func:`rnn_step_forward`."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h * next_h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def _time_major_projection(x, Wx, b):
    """(N, T, D) -> x_t @ Wx + b for every t, laid out time-major as (T, N, K) (contiguous per step)."""
    N, T, D = x.shape
    xt = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * N, D)
    proj = xt @ Wx
    proj += b
    return xt, proj.reshape(T, N, -1)


def rnn_forward(x, h0, Wx, Wh, b):
    """Run the tanh RNN over a whole sequence. x (N, T, D), h0 (N, H). Returns h (N, T, H) and a cache."""
    N, T, _ = x.shape
    xt, a = _time_major_projection(x, Wx, b)  # a[t] starts as x_t @ Wx + b
    hs = np.empty((T + 1, N, h0.shape[1]), dtype=a.dtype)  # hs[0] = h0, hs[t + 1] = h_t
    hs[0] = h0
    for t in range(T):
        np.tanh(a[t] + hs[t] @ Wh, out=hs[t + 1])
    h = hs[1:].transpose(1, 0, 2)
    return h, (xt, x.shape, hs, Wx, Wh)


def rnn_backward(dh, cache):
    """Backward over the whole sequence. dh (N, T, H) is the upstream gradient of every hidden state.

    At each step the upstream gradient ``dh[:, t]`` adds to the gradient flowing back from step t + 1.
    Returns (dx, dh0, dWx, dWh, db).
    """
    xt, x_shape, hs, Wx, Wh = cache
    N, T, D = x_shape
    H = hs.shape[2]
    dh_tm = dh.transpose(1, 0, 2)
    da = np.empty((T, N, H), dtype=np.result_type(dh.dtype, hs.dtype))
    dprev = np.zeros((N, H), dtype=da.dtype)
    for t in range(T - 1, -1, -1):
        h = hs[t + 1]
        np.multiply(dh_tm[t] + dprev, 1.0 - h * h, out=da[t])
        dprev = da[t] @ Wh.T
    da2 = da.reshape(T * N, H)
    dx = (da2 @ Wx.T).reshape(T, N, D).transpose(1, 0, 2)
    dWx = xt.T @ da2
    dWh = hs[:-1].reshape(T * N, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dprev, dWx, dWh, db


# ----------------------------------------------------------------------------------------------------------
# LSTM. The activation a = x @ Wx + h @ Wh + b (one affine of [h, x] with the stacked weights [Wh; Wx]) has
# 4H columns: the input gate i, forget gate f, output gate o (sigmoids) and the block input g (tanh).


def _lstm_gates(a, H):
    """In place: a[:, :3H] <- sigmoid, a[:, 3H:] <- tanh. Returns a (now holding i, f, o, g)."""
    s = a[:, : 3 * H]
    s *= 0.5
    np.tanh(s, out=s)
    s += 1.0
    s *= 0.5
    np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])
    return a


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step. x (N, D), prev_h and prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,).

    Returns (next_h, next_c, cache).
    """
    H = prev_h.shape[1]
    gates = _lstm_gates(x @ Wx + prev_h @ Wh + b, H)
    i, f, o, g = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, gates, tanh_c)


def _lstm_gate_grads(dh, dc, prev_c, gates, tanh_c, H, out):
    """Shared by the step and sequence backward passes: fill out (N, 4H) with d(activation) and return
    the gradient of the previous cell state.

    ``dc`` is the gradient reaching c_t from the future (the cell-state shortcut) plus the one through h_t.
    """
    i, f, o, g = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    # sigmoid' = s (1 - s), tanh' = 1 - t^2
    np.multiply(dc * g, i * (1.0 - i), out=out[:, :H])
    np.multiply(dc * prev_c, f * (1.0 - f), out=out[:, H : 2 * H])
    np.multiply(dh * tanh_c, o * (1.0 - o), out=out[:, 2 * H : 3 * H])
    np.multiply(dc * i, 1.0 - g * g, out=out[:, 3 * H :])
    return dc * f


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Returns (dx, dprev_h, dprev_c, dWx, dWh, db) for :func:`lstm_step_forward`."""
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = cache
    H = prev_h.shape[1]
    da = np.empty_like(gates, dtype=np.result_type(dnext_h.dtype, gates.dtype))
    dprev_c = _lstm_gate_grads(dnext_h, dnext_c, prev_c, gates, tanh_c, H, da)
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    """Run the LSTM over a whole sequence; the initial cell state is zero. x (N, T, D), h0 (N, H).

    Returns h (N, T, H) and a cache.
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    xt, gates = _time_major_projection(x, Wx, b)  # gates[t] starts as x_t @ Wx + b, becomes i, f, o, g
    hs = np.empty((T + 1, N, H), dtype=gates.dtype)
    cs = np.empty((T + 1, N, H), dtype=gates.dtype)
    tanh_cs = np.empty((T, N, H), dtype=gates.dtype)
    hs[0] = h0
    cs[0] = 0.0
    for t in range(T):
        gt = gates[t]
        gt += hs[t] @ Wh
        _lstm_gates(gt, H)
        np.multiply(gt[:, H : 2 * H], cs[t], out=cs[t + 1])
        cs[t + 1] += gt[:, :H] * gt[:, 3 * H :]
        np.tanh(cs[t + 1], out=tanh_cs[t])
        np.multiply(gt[:, 2 * H : 3 * H], tanh_cs[t], out=hs[t + 1])
    h = hs[1:].transpose(1, 0, 2)
    return h, (xt, x.shape, hs, cs, tanh_cs, gates, Wx, Wh)


def lstm_backward(dh, cache):
    """Backward over the whole sequence. Returns (dx, dh0, dWx, dWh, db).

    The hidden-state gradient at step t is the upstream ``dh[:, t]`` plus the one flowing back from step t+1;
    the cell-state gradient flows back through the forget gate (dc_{t-1} = dc_t * f_t) with no matrix product.
    """
    xt, x_shape, hs, cs, tanh_cs, gates, Wx, Wh = cache
    N, T, D = x_shape
    H = hs.shape[2]
    dh_tm = dh.transpose(1, 0, 2)
    da = np.empty((T, N, 4 * H), dtype=np.result_type(dh.dtype, gates.dtype))
    dprev_h = np.zeros((N, H), dtype=da.dtype)
    dprev_c = np.zeros((N, H), dtype=da.dtype)
    for t in range(T - 1, -1, -1):
        dprev_c = _lstm_gate_grads(dh_tm[t] + dprev_h, dprev_c, cs[t], gates[t], tanh_cs[t], H, da[t])
        dprev_h = da[t] @ Wh.T
    da2 = da.reshape(T * N, 4 * H)
    dx = (da2 @ Wx.T).reshape(T, N, D).transpose(1, 0, 2)
    dWx = xt.T @ da2
    dWh = hs[:-1].reshape(T * N, H).T @ da2
    db = da2.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


# ----------------------------------------------------------------------------------------------------------
# Word embedding, temporal affine, temporal softmax loss


def word_embedding_forward(x, W):
    """x (N, T) integer ids in [0, V), W (V, D). Returns out (N, T, D) = W[x] and a cache."""
    return W[x], (x, W.shape, W.dtype)


def word_embedding_backward(dout, cache):
    """Returns dW (V, D): the rows of dout summed into the rows of the ids (np.add.at handles repeats)."""
    x, shape, dtype = cache
    dW = np.zeros(shape, dtype=np.result_type(dout.dtype, dtype))
    np.add.at(dW, x.reshape(-1), dout.reshape(-1, shape[1]))
    return dW


def temporal_affine_forward(x, w, b):
    """The same affine map at every step: x (N, T, D), w (D, M), b (M,) -> out (N, T, M)."""
    N, T, D = x.shape
    out = (x.reshape(N * T, D) @ w).reshape(N, T, w.shape[1])
    out += b
    return out, (x, w)


def temporal_affine_backward(dout, cache):
    """Returns (dx, dw, db) for :func:`temporal_affine_forward`."""
    x, w = cache
    N, T, D = x.shape
    d2 = dout.reshape(N * T, w.shape[1])
    dx = (d2 @ w.T).reshape(N, T, D)
    dw = x.reshape(N * T, D).T @ d2
    db = d2.sum(axis=0)
    return dx, dw, db


def temporal_softmax_loss(x, y, mask):
    """Softmax cross-entropy summed over the steps where ``mask`` is true and divided by the batch size N.

    x (N, T, V) scores, y (N, T) target ids, mask (N, T) bool (False at <NULL> targets). Returns (loss, dx).
    """
    N, T, V = x.shape
    x2 = x.reshape(N * T, V)
    y2 = y.reshape(N * T)
    m2 = mask.reshape(N * T).astype(x.dtype)
    shifted = x2 - x2.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    sums = probs.sum(axis=1, keepdims=True)
    rows = np.arange(N * T)
    log_p = shifted[rows, y2] - np.log(sums[:, 0])
    loss = -np.dot(m2, log_p) / N
    probs /= sums
    probs[rows, y2] -= 1.0
    probs *= (m2 / N)[:, None]
    return float(loss), probs.reshape(N, T, V)
