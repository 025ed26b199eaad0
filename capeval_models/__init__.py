"""capeval_models: caption decoders trained only to produce predictions that capeval scores.

* numpy, CS231n style: :class:`CaptioningRNN` (vanilla RNN or LSTM cells) with hand-written
  backward passes (``capeval_models.layers``), gradient checking (``capeval_models.gradcheck``), and a
  training loop with atomic, resumable checkpoints (:class:`Trainer`, :class:`NumpyTrainer`);
* PyTorch: :class:`CaptioningTransformer` with DropHead, greedy and beam decoding, and per-word
  attention maps (``capeval_models.transformer``, ``capeval_models.torch_training``,
  ``capeval_models.attention_maps``);
* a model registry (``capeval_models.models``: build, train, load, caption for rnn, lstm, transformer,
  transformer-drophead and the most-frequent-caption baseline) that ``capeval-models run`` orchestrates;
* data: an embedded offline dataset with a zero-shot "nice" split and loaders for the real formats
  (``capeval_models.data``).

Names are imported on first use, so ``import capeval_models`` does not import torch.
"""

from importlib import import_module

_EXPORTS = {
    "CaptioningRNN": "capeval_models.rnn",
    "Trainer": "capeval_models.training",
    "NumpyTrainer": "capeval_models.training",
    "CheckpointError": "capeval_models.training",
    "read_checkpoint": "capeval_models.training",
    "blas_threads": "capeval_models.training",
    "Optimizer": "capeval_models.optim",
    "CaptioningTransformer": "capeval_models.transformer",
    "DropHead": "capeval_models.transformer",
    "greedy_decode": "capeval_models.transformer",
    "beam_search": "capeval_models.transformer",
    "TrainConfig": "capeval_models.torch_training",
    "train_transformer": "capeval_models.torch_training",
    "caption_attention_maps": "capeval_models.attention_maps",
    "RunConfig": "capeval_models.config",
    "ModelSpec": "capeval_models.models",
    "get_model": "capeval_models.models",
    "run": "capeval_models.pipeline",
    "load_embedded": "capeval_models.data",
    "CaptionSplit": "capeval_models.data",
    "Vocabulary": "capeval_models.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'capeval_models' has no attribute {name!r}")
