"""`load_embedded`: the offline shapes captioning dataset (train / val / nice), generated and cached."""

from __future__ import annotations

import json
import os
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from capeval._io import atomic_write

from . import shapes
from .features import FEATURE_VERSION, extract_features
from .splits import CaptionSplit, encode_references
from .vocab import MAX_WORDS, Vocabulary

SPLIT_NAMES = ("train", "val", "nice")
DEFAULT_SIZES = (8000, 1000, 1000)
CACHE_ENV = "CAPEVAL_MODELS_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "capeval_models"


def _cache_name(seed, sizes, image_size, grid, dim, region_dim) -> str:
    return (
        f"embedded-g{shapes.GENERATOR_VERSION}f{FEATURE_VERSION}-seed{seed}-"
        f"{'-'.join(str(int(s)) for s in sizes)}-img{image_size}-grid{grid[0]}x{grid[1]}-d{dim}-r{region_dim}.npz"
    )


def _save_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (readable by np.load) with the images deflated and the float features stored as is."""
    with atomic_write(path, "wb") as fh, zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
        for key, arr in arrays.items():
            compress = zipfile.ZIP_DEFLATED if arr.dtype.kind in "uiU" else zipfile.ZIP_STORED
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


def _generate(seed, sizes, image_size, grid, dim, region_dim, progress) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for k, (name, n) in enumerate(zip(SPLIT_NAMES, sizes)):
        sp = shapes.generate_split(
            int(n), seed, k, zero_shot=(name == "nice"), image_size=image_size, progress=progress
        )
        glob, regions = extract_features(sp.images, grid=grid, dim=dim, region_dim=region_dim)
        ints, geo = shapes.scene_array(sp.scenes)
        arrays[f"{name}/images"] = sp.images
        arrays[f"{name}/features"] = glob
        arrays[f"{name}/regions"] = regions
        arrays[f"{name}/scenes"] = ints
        arrays[f"{name}/geometry"] = geo
        text = json.dumps(sp.references, separators=(",", ":"), ensure_ascii=False)
        arrays[f"{name}/references"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return arrays


def _load_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt or foreign file: regenerate
        warnings.warn(f"ignoring unreadable dataset cache {path}: {exc}", stacklevel=3)
        return None


def load_embedded(
    seed: int = 0,
    sizes: tuple[int, int, int] = DEFAULT_SIZES,
    cache_dir=None,
    *,
    use_cache: bool = True,
    image_size: int = 64,
    grid: tuple[int, int] = (4, 4),
    feature_dim: int = 512,
    region_dim: int = 128,
    min_count: int = 1,
    max_words: int = MAX_WORDS,
    progress: bool = False,
) -> dict[str, CaptionSplit]:
    """The embedded shapes dataset: ``{"train", "val", "nice"}`` splits sharing the train vocabulary.

    ``sizes`` are the numbers of images of train, val and nice. Generation is deterministic in ``seed``
    (and the first k images of a split do not depend on its size); the result is cached as an .npz under
    ``cache_dir`` (default ``$CAPEVAL_MODELS_CACHE`` or ``~/.cache/capeval_models``) unless ``use_cache``
    is False.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"sizes must be three positive image counts (train, val, nice), got {sizes}")
    grid = (int(grid[0]), int(grid[1]))
    t0 = time.perf_counter()
    arrays = None
    path = None
    if use_cache:
        path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = path / _cache_name(seed, sizes, image_size, grid, feature_dim, region_dim)
        arrays = _load_cache(path)
    cached = arrays is not None
    if arrays is None:
        arrays = _generate(seed, sizes, image_size, grid, feature_dim, region_dim, progress)
        if path is not None:
            try:
                _save_cache(path, arrays)
            except OSError as exc:
                warnings.warn(f"could not write dataset cache {path}: {exc}", stacklevel=2)

    refs_lists = {
        name: json.loads(arrays[f"{name}/references"].tobytes().decode("utf-8")) for name in SPLIT_NAMES
    }
    vocab = Vocabulary.build(
        (c for caps in refs_lists["train"] for c in caps), min_count=min_count, max_words=max_words
    )
    out: dict[str, CaptionSplit] = {}
    for name in SPLIT_NAMES:
        refs = refs_lists[name]
        ids = [f"{name}_{i:06d}" for i in range(len(refs))]
        references = dict(zip(ids, refs))
        scenes = shapes.scenes_from_array(arrays[f"{name}/scenes"], arrays[f"{name}/geometry"])
        categories = None
        if name == "nice":
            categories = {i: _withheld_category(objs) for i, objs in zip(ids, scenes)}
        captions, image_idxs = encode_references(ids, references, vocab, max_words)
        out[name] = CaptionSplit(
            name=name,
            image_ids=ids,
            features=arrays[f"{name}/features"],
            captions=captions,
            image_idxs=image_idxs,
            vocab=vocab,
            references=references,
            regions=arrays[f"{name}/regions"],
            grid_shape=grid,
            images=arrays[f"{name}/images"],
            categories=categories,
            objects=scenes,
            source=f"embedded(seed={seed}, sizes={sizes})",
            info={
                "seed": seed,
                "sizes": sizes,
                "cache_path": str(path) if path else None,
                "from_cache": cached,
                "withheld": [f"{c} {s}" for c, s in shapes.WITHHELD],
            },
        )
    elapsed = time.perf_counter() - t0
    for sp in out.values():
        sp.info["load_seconds"] = elapsed
    return out


def _withheld_category(objs) -> str:
    """The nice category of an image: its first withheld colour-shape pair in reading order ("red circle")."""
    for o in sorted(objs, key=lambda o: (o.row, o.col)):
        if (o.colour, o.shape) in shapes.WITHHELD_IDS:
            c, s, _ = o.names
            return f"{c} {s}"
    return ""
