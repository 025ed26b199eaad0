"""Numeric gradient checking by centered differences.

``rel_error`` is CS231n's measure: max over elements of |a - b| / max(1e-8, |a| + |b|).
All helpers perturb the given array in place and restore it, so pass the very array the function reads.

``order=2`` is CS231n's two-point centered difference (error O(h^2) plus round-off ~eps|f|/h).
``order=4`` is the five-point stencil (error O(h^4)), which allows a larger h and so less round-off: with
h = 1e-3 it resolves gradients in float64 one to two orders of magnitude better than order 2 at h = 1e-5
(round-off sets the floor), which gives margin under a 1e-7 relative-error bound over long recurrences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = [
    "rel_error",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "check_model_gradients",
]


def rel_error(x, y) -> float:
    """Largest element-wise relative error between two arrays (0.0 for two empty arrays)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


# antisymmetric stencils as (k, w): the derivative is sum(w * (f(x + k h) - f(x - k h))) / h. Differencing
# each pair first keeps a function that does not depend on x[i] at exactly zero.
_STENCILS = {
    2: ((1, 1 / 2),),
    4: ((1, 2 / 3), (2, -1 / 12)),
}


def _difference(evaluate, x, ix, h, order):
    """Finite-difference derivative of evaluate() with respect to x[ix]; x[ix] is restored afterwards."""
    if order not in _STENCILS:
        raise ValueError(f"order must be one of {sorted(_STENCILS)}, got {order!r}")
    old = x[ix]
    total = 0.0
    try:
        for k, w in _STENCILS[order]:
            x[ix] = old + k * h
            fp = evaluate()
            x[ix] = old - k * h
            fm = evaluate()
            total = total + w * (fp - fm)
    finally:
        x[ix] = old
    return total / h


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5, order: int = 2
) -> np.ndarray:
    """Gradient of a scalar function f at x by centered differences, one element at a time."""
    grad = np.zeros_like(x, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        grad[ix] = _difference(lambda: float(f(x)), x, ix, h, order)
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5, order: int = 2
) -> np.ndarray:
    """Gradient of sum(f(x) * df) at x, for an array-valued f and upstream gradient df."""
    grad = np.zeros_like(x, dtype=np.float64)
    df = np.asarray(df, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        # difference the outputs element-wise first, then contract with df: less cancellation than
        # differencing the scalar sum(f(x) * df)
        d = _difference(lambda: np.array(f(x), dtype=np.float64, copy=True), x, ix, h, order)
        grad[ix] = np.sum(d * df)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    rng: np.random.Generator | None = None,
) -> float:
    """Compare the analytic gradient with centered differences at `num_checks` random elements.

    Returns the largest relative error seen (for big parameters where a full check is too slow).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    worst = 0.0
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(n)) for n in x.shape)
        old = x[ix]
        x[ix] = old + h
        fp = float(f(x))
        x[ix] = old - h
        fm = float(f(x))
        x[ix] = old
        num = (fp - fm) / (2 * h)
        worst = max(worst, rel_error(np.array(num), np.array(analytic_grad[ix])))
    return worst


def check_model_gradients(
    loss_fn: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    h: float = 1e-6,
    order: int = 2,
    names: list[str] | None = None,
) -> dict[str, float]:
    """Relative error of every analytic gradient ``grads[name]`` against a numeric one.

    ``loss_fn()`` must recompute the loss from the current contents of ``params`` (which are perturbed
    in place). Returns {name: rel_error}.
    """
    out = {}
    for name in names if names is not None else list(params):
        p = params[name]
        num = eval_numerical_gradient(lambda _p: loss_fn(), p, h=h, order=order)
        out[name] = rel_error(num, grads[name])
    return out
