"""The data a run trains and scores on: the embedded shapes dataset, or real data named by a spec.

A spec is a CS231n ``coco_captioning`` directory or a JSON file (paths relative to it); docs/data.md lists
the files to download and the spec of each format.
"""

from __future__ import annotations

import json
from pathlib import Path

from .files import read_json


def load_data(config) -> dict:
    """{"train", "val"[, "nice"]} CaptionSplits.

    config.data None: the embedded shapes dataset (``load_embedded(config.data_seed, config.sizes)``).
    Otherwise a path to a CS231n ``coco_captioning`` directory, or to a JSON spec (paths relative to it):

        {"format": "cs231n", "dir": "coco_captioning", "max_train": 50000, "annotations": [...]}
        {"format": "karpathy", "dataset": "dataset_coco.json", "features": "feats.npz"}
        {"format": "coco", "train": {"annotations": "...", "features": "..."}, "val": {...}}

    each optionally with "nice": {"csv": "nice-val-5k.csv", "features": "nice_feats.npz"} (read with the
    training vocabulary). Karpathy's "test" split is used as "val" when there is no "val".
    """
    from . import data as D

    if config.data is None:
        return D.load_embedded(seed=config.data_seed, sizes=config.sizes, progress=config.progress)
    path = Path(config.data)
    if path.is_dir():
        spec, base = {"format": "cs231n", "dir": str(path)}, path.parent
    else:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such data directory or spec file")
        try:
            spec = read_json(path)
        except json.JSONDecodeError as exc:
            raise D.DataFormatError(f"{path}: the data spec is not valid JSON ({exc})") from exc
        base = path.parent
    if not isinstance(spec, dict):
        raise D.DataFormatError(f"{path}: a data spec is a JSON object, got {type(spec).__name__}")

    def get(obj: dict, key: str, where: str = ""):
        value = obj.get(key) if isinstance(obj, dict) else None
        if value is None:
            raise D.DataFormatError(f"{path}: the {spec.get('format')} spec needs {where}{key!r}")
        return value

    def p(value):
        return value if value is None or Path(value).is_absolute() else str(base / value)

    fmt = spec.get("format")
    if fmt == "cs231n":
        anns = spec.get("annotations")
        anns = [p(a) for a in anns] if anns else None
        splits = D.load_cs231n_coco(p(get(spec, "dir")), max_train=spec.get("max_train"), annotations=anns,
                                    pca_features=spec.get("pca_features", True))
    elif fmt == "karpathy":
        splits = D.load_karpathy(p(get(spec, "dataset")), p(get(spec, "features")))
        if "val" not in splits and "test" in splits:
            splits["val"] = splits["test"]
    elif fmt == "coco":
        files = {(split, key): p(get(get(spec, split), key, f"{split}.")) for split in ("train", "val")
                 for key in ("annotations", "features")}  # every key checked before any file is read
        train = D.load_coco_annotations(files["train", "annotations"], files["train", "features"], name="train")
        val = D.load_coco_annotations(files["val", "annotations"], files["val", "features"], name="val",
                                      vocab=train.vocab)
        splits = {"train": train, "val": val}
    else:
        raise D.DataFormatError(f"{path}: unknown data format {fmt!r} (expected cs231n, karpathy or coco)")
    if spec.get("nice"):
        nice = spec["nice"]
        splits["nice"] = D.load_nice(p(get(nice, "csv", "nice.")), p(get(nice, "features", "nice.")), name="nice",
                                     vocab=splits["train"].vocab)
    missing = [s for s in ("train", "val") if s not in splits]
    if missing:
        raise D.DataFormatError(f"{path}: the data has no {missing} split")
    return {k: splits[k] for k in ("train", "val", "nice") if k in splits}
