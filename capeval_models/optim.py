"""First-order update rules, CS231n style: ``next_w, config = rule(w, dw, config)``.

``config`` is a dict of hyperparameters plus the rule's running state (Adam's ``m``, ``v``, ``t``); a rule
fills in its defaults on first use. :class:`Optimizer` keeps one config per parameter and can export its
state as arrays (for ``np.savez``) plus JSON-able scalars, which is what the training loop checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES", "Optimizer"]


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: w - learning_rate * dw."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: v = momentum * v - learning_rate * dw; w + v."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity")
    if v is None:
        v = np.zeros_like(w)
    v *= config["momentum"]
    v -= config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w, dw, config=None):
    """RMSProp: a running average of squared gradients scales the step."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = config.get("cache")
    if cache is None:
        cache = np.zeros_like(w)
    rho = config["decay_rate"]
    cache *= rho
    cache += (1 - rho) * dw * dw
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), config


def adam(w, dw, config=None):
    """Adam with bias correction (Kingma & Ba). State: first moment m, second moment v, step count t."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    m = config.get("m")
    v = config.get("v")
    if m is None:
        m = np.zeros_like(w)
    if v is None:
        v = np.zeros_like(w)
    config.setdefault("t", 0)
    b1, b2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m *= b1
    m += (1 - b1) * dw
    v *= b2
    v += (1 - b2) * (dw * dw)
    config["m"], config["v"], config["t"] = m, v, t
    step = config["learning_rate"] * np.sqrt(1 - b2**t) / (1 - b1**t)
    # w - lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections folded into the step size
    denom = np.sqrt(v)
    denom += config["epsilon"] * np.sqrt(1 - b2**t)
    return w - (step * m / denom).astype(w.dtype, copy=False), config


UPDATE_RULES: dict[str, Callable] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}


class Optimizer:
    """One update rule applied to a dict of parameters, with one config (and running state) per parameter.

    >>> opt = Optimizer("adam", {"learning_rate": 5e-3})
    >>> opt.step(model.params, grads)      # updates model.params in place (new arrays per key)
    """

    def __init__(self, update_rule: str | Callable = "adam", config: Mapping | None = None):
        if isinstance(update_rule, str):
            if update_rule not in UPDATE_RULES:
                raise ValueError(f"unknown update rule {update_rule!r}; known: {sorted(UPDATE_RULES)}")
            self.rule_name = update_rule
            self.rule = UPDATE_RULES[update_rule]
        else:
            self.rule_name = getattr(update_rule, "__name__", "custom")
            self.rule = update_rule
        self.defaults = dict(config or {})
        self.configs: dict[str, dict] = {}

    @property
    def learning_rate(self) -> float | None:
        return self.defaults.get("learning_rate")

    def set_learning_rate(self, lr: float) -> None:
        self.defaults["learning_rate"] = float(lr)
        for c in self.configs.values():
            c["learning_rate"] = float(lr)

    def step(self, params: dict, grads: Mapping) -> None:
        for name, dw in grads.items():
            config = self.configs.get(name)
            if config is None:
                config = self.configs[name] = dict(self.defaults)
            params[name], self.configs[name] = self.rule(params[name], dw, config)

    # -- checkpointing: arrays go to npz, scalars to JSON ------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, scalars = {}, {}
        for name, config in self.configs.items():
            scalars[name] = {}
            for k, v in config.items():
                if isinstance(v, np.ndarray):
                    arrays[f"{name}/{k}"] = v
                else:
                    scalars[name][k] = v.item() if isinstance(v, np.generic) else v
        return arrays, {"rule": self.rule_name, "defaults": self.defaults, "configs": scalars}

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping) -> None:
        if meta.get("rule") != self.rule_name:
            raise ValueError(
                f"checkpoint was written with update rule {meta.get('rule')!r}, not {self.rule_name!r}"
            )
        self.defaults = dict(meta["defaults"])
        self.configs = {name: dict(c) for name, c in meta["configs"].items()}
        for key, value in arrays.items():
            name, _, k = key.rpartition("/")
            self.configs.setdefault(name, {})[k] = np.array(value)
