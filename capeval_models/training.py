"""A training loop for caption decoders: minibatches from a dataset split, a learning-rate schedule, a loss
history, an optional validation callback, and checkpoints that are written atomically and can be resumed.

:class:`Trainer` is framework-neutral. A subclass supplies four hooks:

- ``model_step(batch) -> float``: forward, backward and one parameter update on a minibatch; returns the loss.
- ``set_learning_rate(lr)``: apply the learning rate the schedule asks for (called before every step).
- ``state_dict() -> (arrays, meta)``: everything to checkpoint besides the loop's own state, as a flat
  ``{name: np.ndarray}`` (written with ``np.savez``, no pickle) and a JSON-able dict.
- ``load_state_dict(arrays, meta)``: the inverse.

:class:`NumpyTrainer` implements them for numpy models with a ``params`` dict and
``loss(*inputs) -> (loss, grads)`` (such as :class:`~capeval_models.rnn.CaptioningRNN`).
:func:`pack_state` / :func:`unpack_state` turn nested state (for example a PyTorch ``state_dict()`` whose
tensors were moved to numpy) into that (arrays, meta) form and back.

The dataset is duck-typed: ``data.sample_minibatch(batch_size, rng) -> dict`` (with ``captions`` and
``features``, and whatever else the model reads), and ``data.captions`` (or ``len(data)``) for the number of
training captions, which sets the epoch length.

Checkpoints live in one directory. ``latest-<iteration>.npz`` holds the arrays; ``latest.json`` (written
last, atomically) holds the iteration, epoch, loss history, validation history, the sampler's RNG state, the
subclass's meta, and the name and SHA-256 of the npz it belongs to. A crash at any point leaves a consistent
pair behind; stale npz files are removed once the new pointer is in place. ``best_metric`` additionally keeps
``best.json`` / ``best-<iteration>.npz`` for the best validation score.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from capeval._io import atomic_write, atomic_write_text
from capeval.errors import CapevalError

from .optim import Optimizer

__all__ = [
    "Trainer",
    "NumpyTrainer",
    "CheckpointError",
    "pack_state",
    "unpack_state",
    "read_checkpoint",
    "blas_threads",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "capeval_models.checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(CapevalError, RuntimeError):
    """A checkpoint that is missing, malformed, does not match its data file, or does not fit the model."""


# ----------------------------------------------------------------------------------------------------------
# BLAS threads

_OPENBLAS_THREAD_FUNCS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


def _loaded_openblas():
    """(get, set) thread-count functions of every OpenBLAS loaded in this process (Linux; else none)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _OPENBLAS_THREAD_FUNCS:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                found.append((getattr(lib, get_name), getattr(lib, set_name)))
                break
    return found


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Run the block with OpenBLAS (numpy's bundled BLAS) limited to ``n`` threads, then restore.

    The recurrent step's matrix products are small; on a loaded machine OpenBLAS's threads then cost far more
    than they give (10x slower iterations were seen on 2 busy cores). ``None`` changes nothing; so does a
    process without a recognisable OpenBLAS. Not thread-safe: the setting is process-wide.
    """
    funcs = _loaded_openblas() if n is not None else []
    saved = [get() for get, _ in funcs]
    for _, set_ in funcs:
        set_(int(n))
    try:
        yield
    finally:
        for (_, set_), old in zip(funcs, saved):
            set_(old)


# ----------------------------------------------------------------------------------------------------------
# Nested state <-> (flat arrays, JSON)


def _as_array(obj):
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "numpy"):  # a torch tensor
        return obj.detach().cpu().numpy()
    return None


def pack_state(obj: Any, prefix: str = "") -> tuple[dict[str, np.ndarray], Any]:
    """Split a nested structure of dicts, lists, tuples, arrays (numpy, or torch tensors, which come back
    as numpy arrays) and JSON scalars into flat arrays and a JSON-able skeleton that refers to them.

    Dict keys may be str or int (as in a PyTorch optimizer's state); both survive the round trip.
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(o, path):
        arr = _as_array(o)
        if arr is not None:
            key = path or "_"
            arrays[key] = arr
            return {"__array__": key}
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, dict):
            items = []
            for k, v in o.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise TypeError(f"cannot checkpoint a dict key of type {type(k).__name__}: {k!r}")
                items.append([k, walk(v, f"{path}/{k}" if path else str(k))])
            return {"__dict__": items}
        if isinstance(o, (list, tuple)):
            out = [walk(v, f"{path}/{i}" if path else str(i)) for i, v in enumerate(o)]
            return {"__tuple__": out} if isinstance(o, tuple) else out
        if o is None or isinstance(o, (bool, int, float, str)):
            return o
        raise TypeError(f"cannot checkpoint a value of type {type(o).__name__} at {path!r}")

    return arrays, walk(obj, prefix)


def unpack_state(arrays: Mapping[str, np.ndarray], meta: Any) -> Any:
    """Inverse of :func:`pack_state`."""

    def walk(o):
        if isinstance(o, dict):
            if "__array__" in o:
                return np.array(arrays[o["__array__"]])
            if "__dict__" in o:
                return {k: walk(v) for k, v in o["__dict__"]}
            if "__tuple__" in o:
                return tuple(walk(v) for v in o["__tuple__"])
            raise CheckpointError(f"unexpected object in checkpoint meta: {sorted(o)}")
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(meta)


# ----------------------------------------------------------------------------------------------------------
# Checkpoint files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_checkpoint(
    directory: Path, tag: str, iteration: int, arrays: Mapping[str, np.ndarray], record: dict
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    npz_name = f"{tag}-{iteration:08d}.npz"
    with atomic_write(directory / npz_name, "wb") as fh:
        np.savez(fh, **arrays)
    record = dict(record, arrays=npz_name, sha256=_sha256(directory / npz_name))
    pointer = directory / f"{tag}.json"
    atomic_write_text(pointer, json.dumps(record, indent=1, allow_nan=False) + "\n")
    for stale in directory.glob(f"{tag}-*.npz"):
        if stale.name != npz_name:
            stale.unlink(missing_ok=True)
    return pointer


def read_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint given its JSON pointer (``.../latest.json``) or its directory (then ``latest.json``).

    Returns (arrays, record). Raises :class:`CheckpointError` if the pointer is malformed or the npz it names
    is missing or does not have the recorded SHA-256.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "latest.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CheckpointError(f"no checkpoint at {path}") from e
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} file")
    if record.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint version {record.get('version')!r}")
    npz = path.parent / record["arrays"]
    if not npz.is_file():
        raise CheckpointError(f"{path} refers to {npz.name}, which is missing")
    if _sha256(npz) != record["sha256"]:
        raise CheckpointError(f"{npz} does not match the SHA-256 recorded in {path.name}")
    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, record


# ----------------------------------------------------------------------------------------------------------
# The loop


class Trainer:
    """Framework-neutral minibatch training loop; subclass and implement the four hooks (module docstring).

    Parameters
    ----------
    data: the training split (``sample_minibatch(batch_size, rng)``; ``captions`` or ``len`` for its size).
    batch_size, num_epochs: an epoch is ``max(1, num_captions // batch_size)`` iterations
        (``iterations_per_epoch`` overrides); ``num_iterations`` overrides ``num_epochs * iterations_per_epoch``.
    learning_rate, lr_decay: the default schedule is ``learning_rate * lr_decay ** epoch`` (CS231n's decay
        after every epoch); ``lr_schedule(iteration, epoch) -> lr`` replaces it.
    val_fn: called as ``val_fn(trainer)`` after every ``val_every`` epochs and at the end; returns a mapping of
        metric names to numbers (for example val CIDEr-D), appended to ``history["val"]``.
    best_metric, best_mode: keep a ``best`` checkpoint for the best ``val_fn()[best_metric]`` ("max" or "min").
    checkpoint_dir: where checkpoints go (None: no checkpoints). ``checkpoint_every`` iterations (default: at
        the end of every epoch) and always at the end of training.
    seed: seeds the minibatch sampler (``np.random.default_rng``); its state is checkpointed, so a resumed
        run draws the same minibatches as an uninterrupted one.
    progress: show a tqdm bar; ``label`` names it (say ``"lstm seed 1"``; default the class name).
    blas_threads: limit numpy's OpenBLAS to this many threads while training (see :func:`blas_threads`).
    """

    def __init__(
        self,
        data,
        *,
        batch_size: int = 100,
        num_epochs: int = 10,
        num_iterations: int | None = None,
        iterations_per_epoch: int | None = None,
        learning_rate: float = 1e-3,
        lr_decay: float = 1.0,
        lr_schedule: Callable[[int, int], float] | None = None,
        val_fn: Callable[[Trainer], Mapping[str, float]] | None = None,
        val_every: int = 1,
        best_metric: str | None = None,
        best_mode: str = "max",
        checkpoint_dir=None,
        checkpoint_every: int | None = None,
        seed: int | None = 0,
        progress: bool = True,
        label: str | None = None,
        blas_threads: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if best_mode not in ("max", "min"):
            raise ValueError(f'best_mode must be "max" or "min", not {best_mode!r}')
        if best_metric is not None and val_fn is None:
            raise ValueError("best_metric needs a val_fn")
        self.data = data
        self.batch_size = int(batch_size)
        if iterations_per_epoch is None:
            n = data.captions.shape[0] if hasattr(data, "captions") else len(data)
            iterations_per_epoch = max(1, n // self.batch_size)
        self.iterations_per_epoch = int(iterations_per_epoch)
        self.num_iterations = (
            int(num_iterations) if num_iterations is not None else int(num_epochs) * self.iterations_per_epoch
        )
        self.learning_rate = float(learning_rate)
        self.lr_decay = float(lr_decay)
        self.lr_schedule = lr_schedule
        self.val_fn = val_fn
        self.val_every = max(1, int(val_every))
        self.best_metric = best_metric
        self.best_mode = best_mode
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.label = label or type(self).__name__
        self.blas_threads = blas_threads
        self.rng = np.random.default_rng(seed)
        self.iteration = 0  # iterations done so far
        self.history: dict[str, Any] = {"loss": [], "val": [], "best": None}

    # -- hooks ---------------------------------------------------------------------------------------------
    def model_step(self, batch: Mapping[str, Any]) -> float:
        raise NotImplementedError

    def set_learning_rate(self, lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        raise NotImplementedError

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping) -> None:
        raise NotImplementedError

    # -- schedule ------------------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.iteration // self.iterations_per_epoch

    def lr_at(self, iteration: int) -> float:
        epoch = iteration // self.iterations_per_epoch
        if self.lr_schedule is not None:
            return float(self.lr_schedule(iteration, epoch))
        return self.learning_rate * self.lr_decay**epoch

    # -- checkpoints ---------------------------------------------------------------------------------------
    def _record(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "trainer": type(self).__name__,
            "iteration": self.iteration,
            "epoch": self.epoch,
            "iterations_per_epoch": self.iterations_per_epoch,
            "batch_size": self.batch_size,
            "learning_rate": self.lr_at(self.iteration),
            "history": self.history,
            "rng_state": self.rng.bit_generator.state,
        }

    def save_checkpoint(self, tag: str = "latest") -> Path:
        """Write the current state under ``checkpoint_dir``; returns the JSON pointer's path."""
        if self.checkpoint_dir is None:
            raise ValueError("this trainer has no checkpoint_dir")
        arrays, meta = self.state_dict()
        record = dict(self._record(), state=meta)
        return _write_checkpoint(self.checkpoint_dir, tag, self.iteration, arrays, record)

    def load_checkpoint(self, path=None) -> None:
        """Restore from a pointer file or directory (default: ``checkpoint_dir/latest.json``)."""
        if path is None:
            if self.checkpoint_dir is None:
                raise ValueError("no checkpoint path and no checkpoint_dir")
            path = self.checkpoint_dir
        arrays, record = read_checkpoint(path)
        if (
            record["iterations_per_epoch"] != self.iterations_per_epoch
            or record["batch_size"] != self.batch_size
        ):
            raise CheckpointError(
                f"checkpoint was written with batch_size {record['batch_size']} and "
                f"{record['iterations_per_epoch']} iterations per epoch; this trainer has {self.batch_size} "
                f"and {self.iterations_per_epoch}"
            )
        self.load_state_dict(arrays, record["state"])
        self.iteration = int(record["iteration"])
        self.history = record["history"]
        state = record["rng_state"]
        if state.get("bit_generator") != type(self.rng.bit_generator).__name__:
            raise CheckpointError(
                f"checkpoint RNG is {state.get('bit_generator')}, not {type(self.rng.bit_generator).__name__}"
            )
        self.rng.bit_generator.state = state

    def resume(self) -> bool:
        """Load ``checkpoint_dir/latest.json`` if there is one; returns whether it did."""
        if self.checkpoint_dir is None or not (self.checkpoint_dir / "latest.json").exists():
            return False
        self.load_checkpoint()
        log.info("resumed from %s at iteration %d", self.checkpoint_dir, self.iteration)
        return True

    # -- validation ----------------------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        metrics = {k: float(v) for k, v in dict(self.val_fn(self)).items()}
        entry = {"epoch": self.epoch, "iteration": self.iteration, **metrics}
        self.history["val"].append(entry)
        if self.best_metric is not None:
            if self.best_metric not in metrics:
                raise KeyError(
                    f"val_fn did not return best_metric {self.best_metric!r}; got {sorted(metrics)}"
                )
            value, best = metrics[self.best_metric], self.history["best"]
            better = best is None or (
                value > best["value"] if self.best_mode == "max" else value < best["value"]
            )
            if better:
                self.history["best"] = {
                    "metric": self.best_metric,
                    "value": value,
                    "iteration": self.iteration,
                }
                if self.checkpoint_dir is not None:
                    self.save_checkpoint("best")
        log.info("epoch %d, iteration %d: %s", self.epoch, self.iteration, metrics)
        return metrics

    # -- loop ----------------------------------------------------------------------------------------------
    def train(self, resume: bool = False) -> dict[str, Any]:
        """Run until ``num_iterations`` iterations are done; returns ``history``.

        With ``resume=True`` it first loads ``checkpoint_dir/latest.json`` if it exists, and continues from it.
        Raises FloatingPointError on a non-finite loss (the last checkpoint is left intact).
        """
        if resume:
            self.resume()
        bar = tqdm(
            total=self.num_iterations,
            initial=self.iteration,
            disable=not self.progress,
            desc=self.label,
            dynamic_ncols=True,
        )
        with blas_threads(self.blas_threads), bar:
            while self.iteration < self.num_iterations:
                self.set_learning_rate(self.lr_at(self.iteration))
                batch = self.data.sample_minibatch(self.batch_size, self.rng)
                loss = float(self.model_step(batch))
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss} at iteration {self.iteration + 1}")
                self.history["loss"].append(loss)
                self.iteration += 1
                bar.update(1)
                if self.iteration % 10 == 0 or self.iteration == self.num_iterations:
                    bar.set_postfix(loss=f"{loss:.4f}", epoch=self.epoch, refresh=False)
                end_of_epoch = self.iteration % self.iterations_per_epoch == 0
                if self.val_fn is not None and end_of_epoch and self.epoch % self.val_every == 0:
                    self.validate()
                if self.checkpoint_dir is not None and self.iteration < self.num_iterations:
                    every = self.checkpoint_every
                    if (every is None and end_of_epoch) or (
                        every is not None and self.iteration % every == 0
                    ):
                        self.save_checkpoint()
            vals = self.history["val"]
            if self.val_fn is not None and (not vals or vals[-1]["iteration"] != self.iteration):
                self.validate()
        if self.checkpoint_dir is not None:
            self.save_checkpoint()
        return self.history


class NumpyTrainer(Trainer):
    """Trainer for numpy models: ``model.params`` (dict of arrays) and ``model.loss(*inputs) -> (loss, grads)``.

    ``inputs(batch)`` picks the model's arguments from a minibatch; the default is
    ``(batch["features"], batch["captions"])``. ``update_rule`` is a name in :data:`optim.UPDATE_RULES`
    ("adam", "sgd", "sgd_momentum", "rmsprop") or a rule function; ``optim_config`` its hyperparameters. The
    learning rate comes from ``learning_rate=`` (or ``optim_config["learning_rate"]``) and the schedule.
    """

    def __init__(
        self,
        model,
        data,
        *,
        update_rule="adam",
        optim_config: Mapping | None = None,
        inputs: Callable[[Mapping], tuple] | None = None,
        **kwargs,
    ):
        optim_config = dict(optim_config or {})
        if "learning_rate" not in kwargs and "learning_rate" in optim_config:
            kwargs["learning_rate"] = optim_config["learning_rate"]
        super().__init__(data, **kwargs)
        optim_config["learning_rate"] = self.learning_rate
        self.model = model
        self.optimizer = Optimizer(update_rule, optim_config)
        self.inputs = inputs if inputs is not None else (lambda b: (b["features"], b["captions"]))

    def model_step(self, batch):
        loss, grads = self.model.loss(*self.inputs(batch))
        self.optimizer.step(self.model.params, grads)
        return loss

    def set_learning_rate(self, lr):
        self.optimizer.set_learning_rate(lr)

    def state_dict(self):
        arrays = {f"param/{k}": v for k, v in self.model.params.items()}
        opt_arrays, opt_meta = self.optimizer.state()
        arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
        meta = {"optimizer": opt_meta}
        if hasattr(self.model, "config"):
            meta["model"] = self.model.config()
        return arrays, meta

    def load_state_dict(self, arrays, meta):
        params = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
        if hasattr(self.model, "load_params"):
            try:
                self.model.load_params(params)
            except ValueError as e:
                raise CheckpointError(f"checkpoint does not fit the model: {e}") from e
        else:
            if set(params) != set(self.model.params):
                raise CheckpointError("checkpoint parameter names differ from the model's")
            self.model.params.update(params)
        self.optimizer.load_state(
            {k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")}, meta["optimizer"]
        )
