"""The PyTorch Transformer decoder: "transformer" (attention-weight dropout) and "transformer-drophead"."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from .common import make_history, val_cider


def build(config, train, seed: int, *, drophead: bool):
    import torch

    from ..transformer import CaptioningTransformer

    torch.manual_seed(seed)
    regions = train.regions is not None
    return CaptioningTransformer(
        len(train.vocab.idx_to_word), train.region_dim if regions else train.feature_dim,
        memory="regions" if regions else "global", grid_shape=train.grid_shape if regions else None,
        d_model=config.tf_d_model, n_heads=config.tf_heads, n_layers=config.tf_layers,
        dropout=config.tf_dropout, attn_dropout=config.tf_dropout, max_length=train.max_length,
        use_drophead=drophead, drophead=config.drophead)


def caption(model, split, beam_size: int = 1, batch: int = 1000) -> dict[str, str]:
    from ..transformer import beam_search, greedy_decode

    texts = []
    for i in range(0, split.num_images, batch):
        x = model.image_input(split)[i: i + batch]
        decoded = (beam_search(model, x, beam_size=beam_size, vocab=split.vocab) if beam_size > 1
                   else greedy_decode(model, x, vocab=split.vocab))
        texts += decoded.texts
    return dict(zip(split.image_ids, texts))


def load(directory):
    from ..torch_training import load_model

    return load_model(Path(directory) / "model.pt")


def train(config, data, seed: int, directory, label: str, *, drophead: bool) -> dict:
    from ..torch_training import TrainConfig, train_transformer

    train_split, val = data["train"], data["val"]
    model = build(config, train_split, seed, drophead=drophead)
    tc = TrainConfig(steps=config.tf_steps, batch_size=config.tf_batch, lr=config.tf_lr,
                     warmup_steps=config.tf_warmup, seed=seed, checkpoint=str(Path(directory) / "model.pt"),
                     checkpoint_every=config.val_every, val_every=config.val_every, progress=config.progress,
                     label=label, device="cpu")
    history = train_transformer(model, train_split, tc,
                                val_fn=lambda m: {"CIDEr-D": val_cider(val, partial(caption, m))})
    return make_history(model="transformer-drophead" if drophead else "transformer", seed=seed, framework="torch",
                        batch_size=config.tf_batch, loss=history["loss"], loss_label="cross-entropy per word",
                        val=history["val"], train_captions=train_split.num_captions,
                        config=model.config.to_dict(), parameters=model.num_parameters())


def _spec(name: str, drophead: bool):
    from . import ModelSpec

    return ModelSpec(name=name, framework="torch", build=partial(build, drophead=drophead),
                     train=partial(train, drophead=drophead), load=load, caption=caption, beam_search=True)


SPECS = [_spec("transformer", False), _spec("transformer-drophead", True)]
