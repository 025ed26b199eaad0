"""Loaders for captioning data as real users have it on disk, read into `CaptionSplit` objects.

* CS231n coco_captioning (``coco2014_captions.h5``, ``*_vgg16_fc7[_pca].h5``, ``coco2014_vocab.json``,
  ``*_urls.txt``): :func:`load_cs231n_coco`;
* COCO caption annotations JSON plus a features file keyed by image id: :func:`load_coco_annotations`;
* Karpathy's ``dataset_coco.json`` (or flickr8k/30k) with its splits: :func:`load_karpathy`;
* NICE ``nice-val-5k.csv`` (``public_id,caption_gt,category``) or the test CSV (``public_id`` only) plus
  features keyed by public_id: :func:`load_nice`; :func:`write_nice_submission` writes predictions back.

Features files (:func:`read_features`): ``.npz`` or ``.h5`` holding ``features`` (N, D) with ``ids`` (or
``image_ids``) and optionally ``regions`` (N, R, Dr), or one array per id (1-D global vector, or 2-D region
grid whose mean is the global vector); ``.npy`` holding an (N, D) array whose ids are given by ``ids=`` or a
sidecar ``<name>.ids.txt`` (one id per line) / ``<name>.ids.json`` (a list), or a pickled ``{id: vector}``
dict (only with ``allow_pickle=True``).

Every problem with a file raises :class:`~capeval_models.data.errors.DataFormatError` naming the file and
the key, column or ids concerned.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capeval.formats import write_nice_submission as _write_nice_csv

from .errors import DataFormatError, format_ids
from .splits import CaptionSplit, encode_references
from .vocab import MAX_WORDS, Vocabulary

__all__ = [
    "FeatureTable",
    "read_features",
    "load_cs231n_coco",
    "load_coco_annotations",
    "load_karpathy",
    "load_nice",
    "read_nice_csv",
    "write_nice_submission",
]


# ------------------------------------------------------------------------------------------ helpers
def _h5py(path):
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is in the models extra
        raise DataFormatError(
            f"{path}: reading .h5 files needs h5py (pip install 'capeval[models]')"
        ) from exc
    return h5py


def _open_h5(path):
    h5py = _h5py(path)
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from exc


def _require_file(path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _load_json(path) -> object:
    path = _require_file(path, "JSON file")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from exc


def _as_id(value, where: str) -> str:
    """Normalize an id to a string: integers (and integral floats or bytes) print without decoration."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise DataFormatError(f"{where}: invalid id {value!r}")


def _ids_array(arr, where: str) -> list[str]:
    arr = np.asarray(arr)
    if arr.ndim != 1:
        raise DataFormatError(f"{where}: ids must be 1-D, got shape {arr.shape}")
    return [_as_id(v.item() if isinstance(v, np.generic) else v, where) for v in arr]


def _float_matrix(arr, where: str, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != ndim:
        raise DataFormatError(f"{where}: expected a {ndim}-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise DataFormatError(f"{where}: expected numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataFormatError(f"{where}: contains NaN or infinite values")
    return arr.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------ features
@dataclass
class FeatureTable:
    """Features read from a file: ``features[k]`` (and ``regions[k]``) belong to ``ids[k]``."""

    path: str
    ids: list[str]
    features: np.ndarray
    regions: np.ndarray | None = None
    grid_shape: tuple[int, int] | None = None

    def __post_init__(self):
        self._index = {i: k for k, i in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            seen: set[str] = set()
            dup = [i for i in self.ids if i in seen or seen.add(i)]
            raise DataFormatError(f"{self.path}: duplicate feature ids {format_ids(dup)}")

    def rows(self, ids: Sequence[str], what: str = "images") -> np.ndarray:
        """Rows of ``ids``; raises naming the ids that have no features."""
        missing = [i for i in ids if i not in self._index]
        if missing:
            raise DataFormatError(
                f"{self.path}: no features for {len(missing)} of {len(ids)} {what}: {format_ids(missing)}"
            )
        return np.fromiter((self._index[i] for i in ids), dtype=np.int64, count=len(ids))

    def has(self, image_id: str) -> bool:
        return image_id in self._index

    def take(self, ids: Sequence[str], what: str = "images"):
        r = self.rows(ids, what)
        return self.features[r], (None if self.regions is None else self.regions[r])


def _per_id_arrays(items: Iterable[tuple[str, np.ndarray]], path) -> FeatureTable:
    ids, glob, regs = [], [], []
    for key, arr in items:
        where = f"{path}: key {key!r}"
        arr = np.asarray(arr)
        if arr.ndim == 1:
            glob.append(_float_matrix(arr[None], where)[0])
        elif arr.ndim == 2:
            r = _float_matrix(arr, where)
            regs.append(r)
            glob.append(r.mean(axis=0))
        else:
            raise DataFormatError(
                f"{where}: expected a 1-D feature vector or a 2-D region grid, got {arr.shape}"
            )
        ids.append(_as_id(key, f"{path}: key {key!r}"))
    if not ids:
        raise DataFormatError(f"{path}: no features found")
    dims = {g.shape for g in glob}
    if len(dims) != 1:
        raise DataFormatError(f"{path}: feature vectors of different sizes {sorted(dims)}")
    regions = None
    if regs:
        if len(regs) != len(glob):
            raise DataFormatError(f"{path}: some ids have a region grid (2-D) and others a vector (1-D)")
        shapes = {r.shape for r in regs}
        if len(shapes) != 1:
            raise DataFormatError(f"{path}: region grids of different shapes {sorted(shapes)}")
        regions = np.stack(regs)
    return FeatureTable(str(path), ids, np.stack(glob), regions)


def _table_from_mapping(get, keys, path, ids_override=None) -> FeatureTable:
    """From an npz/h5-like mapping holding ``features`` (+ ``ids``/``image_ids``, ``regions``)."""
    feats = _float_matrix(get("features"), f"{path}: key 'features'")
    id_key = next((k for k in ("ids", "image_ids") if k in keys), None)
    if ids_override is not None:
        ids = [_as_id(i, f"{path}: ids argument") for i in ids_override]
    elif id_key is not None:
        ids = _ids_array(get(id_key), f"{path}: key {id_key!r}")
    else:
        raise DataFormatError(f"{path}: has 'features' but no 'ids' (or 'image_ids') key naming its rows")
    if len(ids) != feats.shape[0]:
        raise DataFormatError(f"{path}: {len(ids)} ids for {feats.shape[0]} feature rows")
    regions = None
    grid = None
    if "regions" in keys:
        regions = _float_matrix(get("regions"), f"{path}: key 'regions'", ndim=3)
        if regions.shape[0] != feats.shape[0]:
            raise DataFormatError(
                f"{path}: 'regions' has {regions.shape[0]} rows, 'features' {feats.shape[0]}"
            )
    if "grid_shape" in keys:
        g = np.asarray(get("grid_shape")).reshape(-1)
        if g.size != 2:
            raise DataFormatError(f"{path}: 'grid_shape' must hold two numbers, got {g.tolist()}")
        grid = (int(g[0]), int(g[1]))
    return FeatureTable(str(path), ids, feats, regions, grid)


def _sidecar_ids(path: Path) -> list[str] | None:
    stem = path.with_suffix("")
    txt, js = Path(f"{stem}.ids.txt"), Path(f"{stem}.ids.json")
    if txt.is_file():
        lines = txt.read_text(encoding="utf-8").splitlines()
        return [_as_id(line, f"{txt}: line {n}") for n, line in enumerate(lines, 1) if line.strip()]
    if js.is_file():
        obj = _load_json(js)
        if not isinstance(obj, list):
            raise DataFormatError(f"{js}: expected a JSON list of ids")
        return [_as_id(v, f"{js}: entry {n}") for n, v in enumerate(obj)]
    return None


def read_features(path, ids: Sequence | None = None, *, allow_pickle: bool = False) -> FeatureTable:
    """Read a features file keyed by image id (see the module docstring for the layouts)."""
    path = _require_file(path, "features file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            z = np.load(path, allow_pickle=allow_pickle)
        except Exception as exc:
            raise DataFormatError(f"{path}: not a readable .npz file ({exc})") from exc
        with z:
            keys = set(z.files)
            if "features" in keys:
                return _table_from_mapping(lambda k: z[k], keys, path, ids)
            return _per_id_arrays(((k, z[k]) for k in z.files), path)
    if suffix in (".h5", ".hdf5"):
        with _open_h5(path) as f:
            keys = set(f.keys())
            if "features" in keys:
                return _table_from_mapping(lambda k: f[k][()], keys, path, ids)
            return _per_id_arrays(((k, f[k][()]) for k in f.keys()), path)
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=allow_pickle)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise DataFormatError(
                    f"{path}: holds pickled objects; pass allow_pickle=True only if you trust the file"
                ) from exc
            raise DataFormatError(f"{path}: not a readable .npy file ({exc})") from exc
        if arr.dtype == object:
            obj = arr.item() if arr.ndim == 0 else None
            if not isinstance(obj, dict):
                raise DataFormatError(f"{path}: a pickled .npy must hold a {{id: vector}} dict")
            return _per_id_arrays(obj.items(), path)
        feats = _float_matrix(arr, f"{path}")
        row_ids = [_as_id(i, f"{path}: ids argument") for i in ids] if ids is not None else _sidecar_ids(path)
        if row_ids is None:
            raise DataFormatError(
                f"{path}: a plain .npy array has no ids; pass ids=... or write {path.with_suffix('')}.ids.txt"
            )
        if len(row_ids) != feats.shape[0]:
            raise DataFormatError(f"{path}: {len(row_ids)} ids for {feats.shape[0]} feature rows")
        return FeatureTable(str(path), row_ids, feats)
    raise DataFormatError(f"{path}: unsupported features file type {suffix!r} (expected .npz, .h5 or .npy)")


def _build_vocab(vocab, captions: Iterable[str], min_count: int, max_words: int) -> Vocabulary:
    if vocab is None:
        return Vocabulary.build(captions, min_count=min_count, max_words=max_words)
    if isinstance(vocab, Vocabulary):
        return vocab
    return Vocabulary.load(vocab)


def _make_split(
    name, source, ids, table: FeatureTable, references, vocab, max_words, categories=None, info=None
) -> CaptionSplit:
    feats, regions = table.take(ids)
    captions, image_idxs = encode_references(ids, references, vocab, max_words)
    return CaptionSplit(
        name=name,
        image_ids=list(ids),
        features=feats,
        captions=captions,
        image_idxs=image_idxs,
        vocab=vocab,
        references=references,
        regions=regions,
        grid_shape=table.grid_shape,
        categories=categories,
        source=source,
        info=info or {},
    )


# ------------------------------------------------------------------------------------------ CS231n
CS231N_CAPTIONS = "coco2014_captions.h5"
CS231N_VOCAB = "coco2014_vocab.json"
_COCO_FILE_RE = re.compile(r"COCO_(?:train|val|test)\d{4}_0*(\d+)\.jpg$")


def _coco_annotation_index(paths) -> tuple[dict[str, str], dict[str, list[str]]]:
    """URL/file name -> COCO image id, and id -> raw captions, from COCO captions JSON file(s)."""
    url_to_id: dict[str, str] = {}
    refs: dict[str, list[str]] = {}
    for p in paths:
        obj = _load_json(p)
        images, anns = _coco_parts(obj, p)
        for im in images:
            iid = _as_id(im.get("id"), f"{p}: images[].id")
            for key in ("flickr_url", "coco_url", "file_name", "url"):
                if isinstance(im.get(key), str):
                    url_to_id[im[key]] = iid
        for iid, cap in anns:
            refs.setdefault(iid, []).append(cap)
    return url_to_id, refs


def load_cs231n_coco(
    base_dir,
    max_train: int | None = None,
    pca_features: bool = True,
    *,
    seed: int = 0,
    annotations=None,
) -> dict[str, CaptionSplit]:
    """The CS231n coco_captioning data: ``{"train", "val"}`` splits sharing ``coco2014_vocab.json``.

    ``max_train`` keeps that many train captions drawn at random (like the assignment's
    ``load_coco_data``, but without replacement and from ``np.random.default_rng(seed)``); all features
    are kept and ``image_idxs`` index into them. ``pca_features`` picks ``*_vgg16_fc7_pca.h5`` (512-d)
    over ``*_vgg16_fc7.h5`` (4096-d).

    The h5 file holds only encoded captions (lower-cased, <UNK> for rare words, at most 15 words). Pass
    ``annotations`` (the COCO ``captions_train2014.json`` / ``captions_val2014.json`` paths) to score
    against the raw captions, matched through the URLs; without it the references are decoded from the
    encoded captions (``references_source == "decoded"``, <UNK> dropped) and a warning says so.
    """
    base = Path(base_dir)
    if not base.is_dir():
        raise FileNotFoundError(f"CS231n coco_captioning directory not found: {base}")
    cap_path = _require_file(base / CS231N_CAPTIONS, "CS231n captions file")
    vocab_path = _require_file(base / CS231N_VOCAB, "CS231n vocabulary file")
    vocab = Vocabulary.load(vocab_path)
    url_to_id, raw_refs = ({}, {})
    if annotations is not None:
        ann_paths = [annotations] if isinstance(annotations, (str, Path)) else list(annotations)
        url_to_id, raw_refs = _coco_annotation_index(ann_paths)

    with _open_h5(cap_path) as f:
        data = {}
        for split in ("train", "val"):
            for key in (f"{split}_captions", f"{split}_image_idxs"):
                if key not in f:
                    raise DataFormatError(f"{cap_path}: missing dataset {key!r} (has {sorted(f.keys())})")
                data[key] = f[key][()]

    suffix = "_vgg16_fc7_pca.h5" if pca_features else "_vgg16_fc7.h5"
    out: dict[str, CaptionSplit] = {}
    for split in ("train", "val"):
        caps = np.asarray(data[f"{split}_captions"])
        idxs = np.asarray(data[f"{split}_image_idxs"])
        where = f"{cap_path}: {split}_captions"
        if caps.ndim != 2 or caps.shape[1] < 3 or caps.dtype.kind not in "iu":
            raise DataFormatError(f"{where}: expected an (M, T) integer array, got {caps.shape} {caps.dtype}")
        if idxs.ndim != 1 or idxs.shape[0] != caps.shape[0] or idxs.dtype.kind not in "iu":
            raise DataFormatError(
                f"{cap_path}: {split}_image_idxs must be ({caps.shape[0]},) integers, got {idxs.shape} {idxs.dtype}"
            )
        if caps.size and (caps.min() < 0 or caps.max() >= len(vocab)):
            raise DataFormatError(
                f"{where}: ids {int(caps.min())}..{int(caps.max())} outside the vocabulary of {len(vocab)} "
                f"({vocab_path})"
            )
        feat_path = _require_file(base / f"{split}2014{suffix}", "CS231n features file")
        with _open_h5(feat_path) as f:
            if "features" not in f:
                raise DataFormatError(f"{feat_path}: missing dataset 'features' (has {sorted(f.keys())})")
            feats = _float_matrix(f["features"][()], f"{feat_path}: features")
        n = feats.shape[0]
        if idxs.size and (idxs.min() < 0 or idxs.max() >= n):
            raise DataFormatError(
                f"{cap_path}: {split}_image_idxs range {int(idxs.min())}..{int(idxs.max())} but "
                f"{feat_path} has {n} images"
            )
        url_path = base / f"{split}2014_urls.txt"
        urls = None
        if url_path.is_file():
            urls = [u.strip() for u in url_path.read_text(encoding="utf-8").splitlines() if u.strip()]
            if len(urls) != n:
                raise DataFormatError(f"{url_path}: {len(urls)} urls for {n} images in {feat_path}")

        if split == "train" and max_train is not None and max_train < caps.shape[0]:
            keep = np.sort(
                np.random.default_rng(seed).choice(caps.shape[0], size=int(max_train), replace=False)
            )
            all_caps, all_idxs = caps, idxs
            caps, idxs = caps[keep], idxs[keep]
        else:
            all_caps, all_idxs = caps, idxs

        ids = _cs231n_ids(split, urls, url_to_id, n)
        used = np.unique(idxs)
        if annotations is not None:
            missing = [ids[i] for i in used if ids[i] not in raw_refs]
            if missing:
                raise DataFormatError(
                    f"no raw captions in {annotations} for {len(missing)} {split} images "
                    f"(matched through {url_path.name}): {format_ids(missing)}"
                )
            references = {ids[i]: list(raw_refs[ids[i]]) for i in used}
            ref_source = "raw"
        else:
            wanted = np.isin(all_idxs, used)
            texts = vocab.decode(all_caps[wanted], strip_unk=True)
            references = {ids[i]: [] for i in used}
            for i, t in zip(all_idxs[wanted].tolist(), texts):
                references[ids[i]].append(t)
            ref_source = "decoded"
        out[split] = CaptionSplit(
            name=split,
            image_ids=ids,
            features=feats,
            captions=caps.astype(np.int32, copy=False),
            image_idxs=idxs.astype(np.int32, copy=False),
            vocab=vocab,
            references=references,
            urls=urls,
            source=str(base),
            references_source=ref_source,
            info={"max_train": max_train, "pca_features": pca_features},
        )
    if annotations is None:
        warnings.warn(
            f"{base}: references are decoded from the encoded captions (lower-cased, <UNK> dropped, "
            "at most 15 words); pass annotations=[captions_train2014.json, captions_val2014.json] to score "
            "against the raw COCO captions",
            stacklevel=2,
        )
    return out


def _cs231n_ids(split, urls, url_to_id, n) -> list[str]:
    if urls is None:
        return [f"{split}2014-{i}" for i in range(n)]
    ids = []
    for i, u in enumerate(urls):
        iid = url_to_id.get(u) or url_to_id.get(u.rsplit("/", 1)[-1])
        if iid is None:
            m = _COCO_FILE_RE.search(u)
            iid = str(int(m.group(1))) if m else f"{split}2014-{i}"
        ids.append(iid)
    return ids


# ------------------------------------------------------------------------------------------ COCO JSON
def _coco_parts(obj, path) -> tuple[list[dict], list[tuple[str, str]]]:
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a COCO JSON object with 'images' and/or 'annotations'")
    if "images" not in obj and "annotations" not in obj:
        raise DataFormatError(f"{path}: missing key 'annotations' (and 'images'); not a COCO captions file")
    images = obj.get("images", [])
    if not isinstance(images, list) or any(not isinstance(im, dict) or "id" not in im for im in images):
        raise DataFormatError(f"{path}: 'images' must be a list of objects with an 'id'")
    anns = []
    for n, a in enumerate(obj.get("annotations", []) or []):
        if not isinstance(a, dict) or "image_id" not in a or "caption" not in a:
            raise DataFormatError(f"{path}: annotations[{n}] lacks 'image_id' or 'caption'")
        cap = a["caption"]
        if not isinstance(cap, str) or not cap.strip():
            raise DataFormatError(f"{path}: annotations[{n}] (image {a['image_id']!r}) has an empty caption")
        anns.append((_as_id(a["image_id"], f"{path}: annotations[{n}].image_id"), cap.strip()))
    return images, anns


def load_coco_annotations(
    ann_json,
    features_path,
    *,
    name: str | None = None,
    vocab: Vocabulary | str | Path | None = None,
    min_count: int = 5,
    max_words: int = MAX_WORDS,
    feature_ids: Sequence | None = None,
    allow_pickle: bool = False,
) -> CaptionSplit:
    """A COCO captions file (``captions_val2014.json`` layout) with features keyed by image id.

    Images come from ``images`` (or, without it, from the annotations); a file without ``annotations``
    (``image_info_test2014.json``) gives a split without captions. ``vocab`` (a Vocabulary or a JSON path)
    defaults to one built from this file's captions with ``min_count``.
    """
    ann_json = Path(ann_json)
    images, anns = _coco_parts(_load_json(ann_json), ann_json)
    ids: list[str] = []
    seen: set[str] = set()
    for im in images:
        iid = _as_id(im["id"], f"{ann_json}: images[].id")
        if iid in seen:
            raise DataFormatError(f"{ann_json}: image id {iid!r} listed twice in 'images'")
        seen.add(iid)
        ids.append(iid)
    refs: dict[str, list[str]] = {}
    for iid, cap in anns:
        refs.setdefault(iid, []).append(cap)
    if images:
        unknown = [i for i in refs if i not in seen]
        if unknown:
            raise DataFormatError(
                f"{ann_json}: annotations for image ids not in 'images': {format_ids(unknown)}"
            )
    else:
        ids = list(refs)
    references = {i: refs[i] for i in ids if i in refs} or None
    voc = _build_vocab(vocab, (c for _, c in anns), min_count, max_words)
    table = read_features(features_path, feature_ids, allow_pickle=allow_pickle)
    return _make_split(
        name or ann_json.stem, str(ann_json), ids, table, references, voc, max_words, info={"format": "coco"}
    )


# ------------------------------------------------------------------------------------------ Karpathy
def load_karpathy(
    dataset_json,
    features_path,
    *,
    vocab: Vocabulary | str | Path | None = None,
    min_count: int = 5,
    max_words: int = MAX_WORDS,
    restval: str = "train",
    splits: Sequence[str] | None = None,
    feature_ids: Sequence | None = None,
    allow_pickle: bool = False,
) -> dict[str, CaptionSplit]:
    """Karpathy's ``dataset_coco.json`` / ``dataset_flickr8k.json`` / ``dataset_flickr30k.json``.

    Image ids are ``cocoid`` when present, else ``imgid``; features are keyed by those ids. ``restval``
    images join ``train`` (``restval="train"``, the usual practice) or stay a split of their own
    (``"keep"``). The vocabulary (unless given) is built from the train split's raw captions.
    """
    dataset_json = Path(dataset_json)
    obj = _load_json(dataset_json)
    if not isinstance(obj, dict) or not isinstance(obj.get("images"), list):
        raise DataFormatError(f"{dataset_json}: missing key 'images'; not a Karpathy dataset file")
    if restval not in ("train", "keep"):
        raise ValueError(f"restval must be 'train' or 'keep', got {restval!r}")
    by_split: dict[str, list[str]] = {}
    refs: dict[str, list[str]] = {}
    for n, im in enumerate(obj["images"]):
        where = f"{dataset_json}: images[{n}]"
        if not isinstance(im, dict):
            raise DataFormatError(f"{where}: not an object")
        for key in ("split", "sentences"):
            if key not in im:
                raise DataFormatError(f"{where}: missing key {key!r}")
        raw_id = im.get("cocoid", im.get("imgid"))
        if raw_id is None:
            raise DataFormatError(f"{where}: missing key 'cocoid' (or 'imgid')")
        iid = _as_id(raw_id, where)
        if iid in refs:
            raise DataFormatError(f"{where}: image id {iid!r} appears twice")
        split = im["split"]
        if split == "restval" and restval == "train":
            split = "train"
        caps = []
        for k, s in enumerate(im["sentences"]):
            if isinstance(s, dict) and isinstance(s.get("raw"), str) and s["raw"].strip():
                caps.append(s["raw"].strip())
            elif isinstance(s, dict) and isinstance(s.get("tokens"), list) and s["tokens"]:
                caps.append(" ".join(map(str, s["tokens"])))
            else:
                raise DataFormatError(f"{where}: sentences[{k}] has neither 'raw' nor 'tokens'")
        refs[iid] = caps
        by_split.setdefault(str(split), []).append(iid)
    wanted = list(splits) if splits is not None else sorted(by_split, key=_split_order)
    unknown = [s for s in wanted if s not in by_split]
    if unknown:
        raise DataFormatError(f"{dataset_json}: no images in split(s) {unknown} (has {sorted(by_split)})")
    train_caps = (c for i in by_split.get("train", []) for c in refs[i])
    voc = _build_vocab(vocab, train_caps, min_count, max_words)
    table = read_features(features_path, feature_ids, allow_pickle=allow_pickle)
    out = {}
    for split in wanted:
        ids = by_split[split]
        references = {i: refs[i] for i in ids if refs[i]} or None
        out[split] = _make_split(
            split, str(dataset_json), ids, table, references, voc, max_words, info={"format": "karpathy"}
        )
    return out


def _split_order(name: str):
    order = {"train": 0, "restval": 1, "val": 2, "test": 3}
    return (order.get(name, 9), name)


# ------------------------------------------------------------------------------------------ NICE


def read_nice_csv(csv_path) -> tuple[list[str], dict[str, list[str]] | None, dict[str, str] | None]:
    """(ids in file order, references or None, categories or None) from a NICE CSV.

    ``public_id`` is required; ``caption_gt`` and ``category`` are optional (the test file has only
    ``public_id``). Several rows with the same public_id are several references of one image.
    """
    csv_path = _require_file(csv_path, "NICE CSV")
    with open(csv_path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if "public_id" not in fields:
            raise DataFormatError(f"{csv_path}: missing column 'public_id' (header {fields})")
        reader.fieldnames = fields
        has_caps, has_cat = "caption_gt" in fields, "category" in fields
        ids: list[str] = []
        refs: dict[str, list[str]] = {}
        cats: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            where = f"{csv_path}: line {line}"
            iid = _as_id(row.get("public_id") or "", f"{where}: public_id")
            if iid not in refs:
                ids.append(iid)
                refs[iid] = []
            elif not has_caps:
                raise DataFormatError(f"{where}: public_id {iid!r} listed twice")
            if has_caps:
                cap = (row.get("caption_gt") or "").strip()
                if not cap:
                    raise DataFormatError(f"{where}: empty caption_gt for public_id {iid!r}")
                refs[iid].append(cap)
            if has_cat:
                cat = (row.get("category") or "").strip()
                if iid in cats and cats[iid] != cat:
                    raise DataFormatError(
                        f"{where}: public_id {iid!r} has categories {cats[iid]!r} and {cat!r}"
                    )
                cats[iid] = cat
    if not ids:
        raise DataFormatError(f"{csv_path}: no rows")
    return ids, (refs if has_caps else None), (cats if has_cat else None)


def load_nice(
    csv_path,
    features_path,
    *,
    name: str | None = None,
    vocab: Vocabulary | str | Path | None = None,
    min_count: int = 1,
    max_words: int = MAX_WORDS,
    feature_ids: Sequence | None = None,
    allow_pickle: bool = False,
) -> CaptionSplit:
    """A NICE split: ``nice-val-5k.csv`` (``public_id,caption_gt,category``) or the test CSV.

    Pass the training vocabulary as ``vocab`` (NICE is zero-shot: its captions are for scoring only);
    without one, a vocabulary is built from the file's captions, or holds only the special tokens when the
    file has none. A test CSV gives a split with empty ``captions`` and ``references`` None.
    """
    csv_path = Path(csv_path)
    ids, refs, cats = read_nice_csv(csv_path)
    all_caps = [c for caps in (refs or {}).values() for c in caps]
    voc = _build_vocab(vocab, all_caps, min_count, max_words)
    table = read_features(features_path, feature_ids, allow_pickle=allow_pickle)
    return _make_split(
        name or csv_path.stem,
        str(csv_path),
        ids,
        table,
        refs,
        voc,
        max_words,
        categories=cats,
        info={"format": "nice"},
    )


def write_nice_submission(path, predictions: dict, ids: Sequence[str] | None = None) -> Path:
    """A NICE submission CSV (``public_id,caption``), one row per id of ``ids`` (default: all predictions).

    Checks the ids here (every id needs a non-empty string; the error names the ones without), collapses
    runs of whitespace, then writes through :func:`capeval.formats.write_nice_submission` (atomically), the
    one NICE writer of the project.
    """
    preds = {_as_id(k, "predictions"): v for k, v in predictions.items()}
    ids = [_as_id(i, "ids") for i in ids] if ids is not None else list(preds)
    missing = [i for i in ids if i not in preds]
    if missing:
        raise DataFormatError(f"{path}: no prediction for {len(missing)} public_ids: {format_ids(missing)}")
    bad = [i for i in ids if not isinstance(preds[i], str) or not preds[i].strip()]
    if bad:
        raise DataFormatError(f"{path}: empty or non-string predictions for public_ids {format_ids(bad)}")
    return _write_nice_csv(path, {i: " ".join(preds[i].split()) for i in ids})
