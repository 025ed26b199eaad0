"""CaptioningRNN: a vanilla-RNN or LSTM caption decoder on global image features, in numpy.

The model of CS231n's captioning assignment: image features are projected to the initial hidden state,
the caption (minus its last token) is embedded, run through the recurrent layer, and an affine map scores the
vocabulary at every step; the loss is the softmax cross-entropy against the caption shifted by one, ignoring
<NULL> targets, summed over time and divided by the batch size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from capeval._io import atomic_write

from . import layers as L
from .data.vocab import END, NULL, START, ids_to_text

__all__ = ["CaptioningRNN"]

class CaptioningRNN:
    """Caption decoder with a tanh RNN or an LSTM.

    Parameters live in ``self.params`` under the assignment's names and shapes:
    ``W_proj (D, H)``, ``b_proj (H,)``, ``W_embed (V, W)``, ``Wx (W, G)``, ``Wh (H, G)``, ``b (G,)``,
    ``W_vocab (H, V)``, ``b_vocab (V,)`` with G = H for the RNN and G = 4H for the LSTM (gates i, f, o, g).

    ``word_to_idx`` must contain ``<NULL>``; ``<START>`` and ``<END>`` are needed only by :meth:`sample`.
    V is ``len(word_to_idx)``, so ids must lie in ``[0, V)``.
    """

    def __init__(
        self,
        word_to_idx: Mapping[str, int],
        input_dim: int = 512,
        wordvec_dim: int = 128,
        hidden_dim: int = 128,
        cell_type: str = "rnn",
        dtype=np.float32,
        seed: int | None = None,
    ):
        if cell_type not in ("rnn", "lstm"):
            raise ValueError(f'cell_type must be "rnn" or "lstm", not {cell_type!r}')
        if NULL not in word_to_idx:
            raise ValueError(f"word_to_idx must contain {NULL!r}")
        self.cell_type = cell_type
        self.dtype = np.dtype(dtype)
        self.word_to_idx = dict(word_to_idx)
        self.idx_to_word = {i: w for w, i in self.word_to_idx.items()}
        self.input_dim, self.wordvec_dim, self.hidden_dim = int(input_dim), int(wordvec_dim), int(hidden_dim)
        self._null = self.word_to_idx[NULL]
        self._start = self.word_to_idx.get(START)
        self._end = self.word_to_idx.get(END)

        V, D, W, H = len(self.word_to_idx), self.input_dim, self.wordvec_dim, self.hidden_dim
        G = {"rnn": 1, "lstm": 4}[cell_type] * H
        rng = np.random.default_rng(seed)
        self.params = {
            "W_embed": rng.standard_normal((V, W)) / 100,
            "W_proj": rng.standard_normal((D, H)) / np.sqrt(D),
            "b_proj": np.zeros(H),
            "Wx": rng.standard_normal((W, G)) / np.sqrt(W),
            "Wh": rng.standard_normal((H, G)) / np.sqrt(H),
            "b": np.zeros(G),
            "W_vocab": rng.standard_normal((H, V)) / np.sqrt(H),
            "b_vocab": np.zeros(V),
        }
        for k, v in self.params.items():
            self.params[k] = v.astype(self.dtype)

    @property
    def vocab_size(self) -> int:
        return len(self.word_to_idx)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v.shape for k, v in self.params.items()}

    # ------------------------------------------------------------------------------------------------------
    def _check_features(self, features) -> np.ndarray:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.input_dim:
            raise ValueError(f"features must have shape (N, {self.input_dim}), got {features.shape}")
        return features.astype(self.dtype, copy=False)

    def loss(self, features, captions) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients for a minibatch.

        features (N, D); captions (N, T) integer ids, each ``<START> w1 .. wk <END> <NULL> ...``.
        The model reads ``captions[:, :-1]`` and is scored on predicting ``captions[:, 1:]`` where that is
        not <NULL>. Returns (loss, grads) with grads keyed like ``self.params``.
        """
        features = self._check_features(features)
        captions = np.asarray(captions)
        if captions.ndim != 2 or captions.shape[0] != features.shape[0] or captions.shape[1] < 2:
            raise ValueError(
                f"captions must have shape (N, T) with N = {features.shape[0]} and T >= 2, got {captions.shape}"
            )
        if not np.issubdtype(captions.dtype, np.integer):
            raise ValueError(f"captions must hold integer ids, got dtype {captions.dtype}")
        captions_in = captions[:, :-1]
        captions_out = captions[:, 1:]
        mask = captions_out != self._null
        p = self.params

        h0, cache_proj = L.affine_forward(features, p["W_proj"], p["b_proj"])
        x, cache_embed = L.word_embedding_forward(captions_in, p["W_embed"])
        if self.cell_type == "rnn":
            h, cache_rec = L.rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])
        else:
            h, cache_rec = L.lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"])
        # Score the vocabulary only where the target is not <NULL>: the other steps add nothing to the loss
        # and get zero gradient, and skipping them saves a quarter or more of the largest matrix products on
        # COCO-length captions. The kept (N, T) positions are packed into one sequence of length M.
        N, T = mask.shape
        keep = np.flatnonzero(mask)
        h_kept = h.reshape(N * T, self.hidden_dim)[keep][None]  # (1, M, H)
        scores, cache_vocab = L.temporal_affine_forward(h_kept, p["W_vocab"], p["b_vocab"])
        loss, dscores = L.temporal_softmax_loss(
            scores, captions_out.reshape(-1)[keep][None], np.ones((1, keep.size), bool)
        )
        loss /= N  # the packed loss is summed over all kept steps; CS231n divides by the batch size
        dscores /= N

        grads = {}
        dh_kept, grads["W_vocab"], grads["b_vocab"] = L.temporal_affine_backward(dscores, cache_vocab)
        dh = np.zeros((N * T, h.shape[2]), dtype=dh_kept.dtype)
        dh[keep] = dh_kept[0]
        dh = dh.reshape(N, T, self.hidden_dim)
        backward = L.rnn_backward if self.cell_type == "rnn" else L.lstm_backward
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = backward(dh, cache_rec)
        grads["W_embed"] = L.word_embedding_backward(dx, cache_embed)
        _, grads["W_proj"], grads["b_proj"] = L.affine_backward(dh0, cache_proj)
        return loss, grads

    def sample(self, features, max_length: int = 30) -> np.ndarray:
        """Greedy decoding from <START>: at each step feed back the highest-scoring word.

        Returns (N, max_length) ids (not including <START>). A row stops at its first <END>, which is kept;
        everything after it is <NULL>. The loop ends early once every row has stopped.
        """
        if self._start is None or self._end is None:
            raise ValueError("sampling needs '<START>' and '<END>' in word_to_idx")
        features = self._check_features(features)
        N = features.shape[0]
        p = self.params
        H = self.hidden_dim
        captions = np.full((N, max_length), self._null, dtype=np.int64)
        h = features @ p["W_proj"] + p["b_proj"]
        c = np.zeros_like(h)
        words = np.full(N, self._start, dtype=np.int64)
        done = np.zeros(N, dtype=bool)
        for t in range(max_length):
            a = p["W_embed"][words] @ p["Wx"] + h @ p["Wh"] + p["b"]
            if self.cell_type == "rnn":
                h = np.tanh(a)
            else:
                g = L._lstm_gates(a, H)
                c = g[:, H : 2 * H] * c + g[:, :H] * g[:, 3 * H :]
                h = g[:, 2 * H : 3 * H] * np.tanh(c)
            words = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)
            words[done] = self._null
            captions[:, t] = words
            done |= words == self._end
            if done.all():
                break
        return captions

    def decode(self, ids) -> list[str]:
        """Turn rows of ids into strings: stop at <END>, drop <NULL> and <START>."""
        skip = tuple(i for i in (self._null, self._start) if i is not None)
        return [ids_to_text(row, self.idx_to_word, end_id=self._end, skip_ids=skip)
                for row in np.atleast_2d(np.asarray(ids))]

    # ------------------------------------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "class": "CaptioningRNN",
            "word_to_idx": self.word_to_idx,
            "input_dim": self.input_dim,
            "wordvec_dim": self.wordvec_dim,
            "hidden_dim": self.hidden_dim,
            "cell_type": self.cell_type,
            "dtype": self.dtype.name,
        }

    def load_params(self, params: Mapping[str, np.ndarray]) -> None:
        """Replace the parameters, checking names and shapes; values are cast to the model's dtype."""
        missing = set(self.params) - set(params)
        extra = set(params) - set(self.params)
        if missing or extra:
            raise ValueError(f"parameter names differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for k, v in params.items():
            if tuple(v.shape) != self.params[k].shape:
                raise ValueError(f"parameter {k}: shape {tuple(v.shape)}, expected {self.params[k].shape}")
        self.params = {k: np.array(params[k], dtype=self.dtype) for k in self.params}

    def save(self, path) -> None:
        """Write the config and parameters to one .npz (no pickle), atomically."""
        arrays = {f"param/{k}": v for k, v in self.params.items()}
        arrays["config_json"] = np.array(json.dumps(self.config()))
        with atomic_write(Path(path), "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path) -> CaptioningRNN:
        with np.load(Path(path), allow_pickle=False) as z:
            config = json.loads(str(z["config_json"]))
            if config.pop("class", "CaptioningRNN") != "CaptioningRNN":
                raise ValueError(f"{path} does not hold a CaptioningRNN")
            model = cls(**config)
            model.load_params({k[len("param/") :]: z[k] for k in z.files if k.startswith("param/")})
        return model
