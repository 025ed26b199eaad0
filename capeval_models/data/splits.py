"""`CaptionSplit`: one split of a captioning dataset, whatever file format it came from."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capeval._io import atomic_write

from .errors import DataFormatError
from .vocab import MAX_WORDS, NULL_ID, Vocabulary, tokenize_captions

REFERENCE_FORMATS = ("json", "nice_csv")


@dataclass(eq=False)
class CaptionSplit:
    """Features, encoded captions and raw references of one split.

    ``captions[m]`` is ``<START> w1 .. wk <END> <NULL>...`` (int32) for image row ``image_idxs[m]``;
    ``references`` holds the raw captions per image id, what capeval scores predictions against.
    Splits without captions (a test split) have ``captions`` of shape ``(0, T)`` and ``references`` None.
    """

    name: str
    image_ids: list[str]
    features: np.ndarray  # (N, D) float32 global features
    captions: np.ndarray  # (M, T) int32
    image_idxs: np.ndarray  # (M,) int32, row in image_ids/features for each caption
    vocab: Vocabulary
    references: dict[str, list[str]] | None = None
    regions: np.ndarray | None = None  # (N, R, Dr) float32 region-grid features
    grid_shape: tuple[int, int] | None = None  # (gh, gw) with gh * gw == R
    images: np.ndarray | None = None  # (N, H, W, 3) uint8
    categories: dict[str, str] | None = None
    urls: list[str] | None = None
    objects: list | None = None  # embedded dataset: the scene (list of shapes.Obj) of each image
    source: str = ""
    references_source: str = "raw"  # "raw" captions, or "decoded" from encoded ids (CS231n h5 only)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        where = f"split {self.name!r}" + (f" ({self.source})" if self.source else "")
        self.image_ids = [str(i) for i in self.image_ids]
        n = len(self.image_ids)
        if len(set(self.image_ids)) != n:
            dup = sorted(i for i, c in Counter(self.image_ids).items() if c > 1)
            raise DataFormatError(f"{where}: duplicate image ids {dup[:10]}")
        self.features = np.asarray(self.features)
        if self.features.ndim != 2 or self.features.shape[0] != n:
            raise DataFormatError(f"{where}: features must be ({n}, D), got {self.features.shape}")
        if self.features.dtype != np.float32:
            self.features = self.features.astype(np.float32)
        self.captions = np.asarray(self.captions)
        if self.captions.ndim != 2:
            raise DataFormatError(f"{where}: captions must be 2-D (M, T), got {self.captions.shape}")
        if self.captions.dtype != np.int32:
            self.captions = self.captions.astype(np.int32)
        self.image_idxs = np.asarray(self.image_idxs).astype(np.int32, copy=False).reshape(-1)
        if self.image_idxs.shape[0] != self.captions.shape[0]:
            raise DataFormatError(
                f"{where}: {self.captions.shape[0]} captions but {self.image_idxs.shape[0]} image_idxs"
            )
        if self.image_idxs.size and (self.image_idxs.min() < 0 or self.image_idxs.max() >= n):
            raise DataFormatError(f"{where}: image_idxs outside [0, {n}) (max {int(self.image_idxs.max())})")
        if self.captions.size and (self.captions.min() < 0 or self.captions.max() >= len(self.vocab)):
            raise DataFormatError(
                f"{where}: caption ids outside the vocabulary of {len(self.vocab)} words "
                f"(range {int(self.captions.min())}..{int(self.captions.max())})"
            )
        if self.regions is not None:
            self.regions = np.asarray(self.regions)
            if self.regions.ndim != 3 or self.regions.shape[0] != n:
                raise DataFormatError(f"{where}: regions must be ({n}, R, Dr), got {self.regions.shape}")
            if self.regions.dtype != np.float32:
                self.regions = self.regions.astype(np.float32)
            r = self.regions.shape[1]
            if self.grid_shape is None:
                side = int(round(r**0.5))
                self.grid_shape = (side, side) if side * side == r else (1, r)
            self.grid_shape = (int(self.grid_shape[0]), int(self.grid_shape[1]))
            if self.grid_shape[0] * self.grid_shape[1] != r:
                raise DataFormatError(f"{where}: grid_shape {self.grid_shape} does not hold {r} regions")
        if self.images is not None:
            self.images = np.asarray(self.images)
            if self.images.ndim != 4 or self.images.shape[0] != n or self.images.shape[-1] != 3:
                raise DataFormatError(f"{where}: images must be ({n}, H, W, 3), got {self.images.shape}")
        self._index: dict[str, int] | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @property
    def num_captions(self) -> int:
        return int(self.captions.shape[0])

    @property
    def max_length(self) -> int:
        """T, the length of an encoded caption row (max words + 2)."""
        return int(self.captions.shape[1])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def region_dim(self) -> int | None:
        return None if self.regions is None else int(self.regions.shape[2])

    def __len__(self) -> int:
        """The number of captions (the training loop's epoch length), like CS231n's ``data['train_captions']``."""
        return self.num_captions

    def __bool__(self) -> bool:  # a split without captions is still a split
        return True

    @property
    def has_captions(self) -> bool:
        return self.captions.shape[0] > 0

    def index_of(self, image_id: str) -> int:
        """Row of ``image_id`` in ``image_ids``/``features``."""
        if self._index is None:
            self._index = {i: k for k, i in enumerate(self.image_ids)}
        try:
            return self._index[str(image_id)]
        except KeyError:
            raise KeyError(f"image id {image_id!r} is not in split {self.name!r}") from None

    def __repr__(self) -> str:
        regions = None if self.regions is None else self.regions.shape
        return (
            f"CaptionSplit(name={self.name!r}, images={self.num_images}, captions={self.captions.shape}, "
            f"features={self.features.shape}, regions={regions}, vocab={len(self.vocab)})"
        )

    # ------------------------------------------------------------------ batches
    def sample_minibatch(self, batch_size: int, rng=None) -> dict[str, np.ndarray | None]:
        """``batch_size`` captions drawn uniformly with replacement, with their images' features.

        ``rng`` is a ``np.random.Generator``, an int seed, or None (fresh entropy).
        Returns ``captions (B, T) int32``, ``features (B, D)``, ``regions (B, R, Dr)`` or None and
        ``image_idxs (B,)``.
        """
        if not self.has_captions:
            raise ValueError(f"split {self.name!r} has no captions to sample")
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        rows = rng.integers(0, self.num_captions, size=int(batch_size))
        idxs = self.image_idxs[rows]
        return {
            "captions": self.captions[rows],
            "features": self.features[idxs],
            "regions": None if self.regions is None else self.regions[idxs],
            "image_idxs": idxs,
        }

    # ------------------------------------------------------------------ references
    def write_references(self, path, format: str = "json") -> None:  # noqa: A002 - the issue's name
        """Write the raw references atomically.

        ``"json"``: ``{image_id: [caption, ...]}``. ``"nice_csv"``: NICE's ``public_id,caption_gt,category``
        with one row per reference caption (an id with five references has five rows; ``category`` is empty
        when the split has none).
        """
        if format not in REFERENCE_FORMATS:
            raise ValueError(f"unknown reference format {format!r}; expected one of {REFERENCE_FORMATS}")
        if not self.references:
            raise ValueError(f"split {self.name!r} has no references to write")
        if format == "json":
            with atomic_write(path, "w") as fh:
                json.dump(self.references, fh, ensure_ascii=False, indent=1)
                fh.write("\n")
            return
        cats = self.categories or {}
        with atomic_write(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["public_id", "caption_gt", "category"])
            for image_id, caps in self.references.items():
                for cap in caps:
                    w.writerow([image_id, cap, cats.get(image_id, "")])

    def decoded_references(self) -> dict[str, list[str]]:
        """References rebuilt from the encoded captions (what the model sees; not for scoring)."""
        out: dict[str, list[str]] = {}
        texts = self.vocab.decode(self.captions) if self.has_captions else []
        for idx, text in zip(self.image_idxs.tolist(), texts):
            out.setdefault(self.image_ids[idx], []).append(text)
        return out


def encode_references(
    image_ids: list[str],
    references: dict[str, list[str]] | None,
    vocab: Vocabulary,
    max_words: int = MAX_WORDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``references`` (in ``image_ids`` order) into ``captions (M, max_words + 2)`` and ``image_idxs``."""
    if not references:
        return np.zeros((0, max_words + 2), dtype=np.int32), np.zeros((0,), dtype=np.int32)
    texts: list[str] = []
    idxs: list[int] = []
    for k, image_id in enumerate(image_ids):
        for cap in references.get(image_id, ()):
            texts.append(cap)
            idxs.append(k)
    tokens = tokenize_captions(texts, vocab.tokenizer)
    caps = vocab.encode_tokens(tokens, max_words)
    if caps.size == 0:
        caps = np.full((0, max_words + 2), NULL_ID, dtype=np.int32)
    return caps, np.asarray(idxs, dtype=np.int32)
