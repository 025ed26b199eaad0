"""Loaders for real formats, each on small files written here in exactly the real layout."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

from capeval.errors import FormatError
from capeval_models.data import (
    END_ID,
    SPECIAL_TOKENS,
    START_ID,
    DataFormatError,
    Vocabulary,
    load_coco_annotations,
    load_cs231n_coco,
    load_embedded,
    load_karpathy,
    load_nice,
    read_features,
    simple_split,
    write_nice_submission,
)

h5py = pytest.importorskip("h5py")

WORDS = ["a", "man", "dog", "on", "the", "with", "ball", "red", "riding", "horse", "grass", "of"]


# ------------------------------------------------------------------------------------------ CS231n
def write_cs231n(base, n_train=12, n_val=6, d_pca=16, d_fc7=32, caps_per_image=3, seed=0):
    """coco2014_captions.h5, *_vgg16_fc7[_pca].h5, coco2014_vocab.json and *_urls.txt, as in CS231n."""
    rng = np.random.default_rng(seed)
    base.mkdir(parents=True, exist_ok=True)
    idx_to_word = list(SPECIAL_TOKENS) + WORDS
    (base / "coco2014_vocab.json").write_text(
        json.dumps({"idx_to_word": idx_to_word, "word_to_idx": {w: i for i, w in enumerate(idx_to_word)}})
    )
    info = {}
    with h5py.File(base / "coco2014_captions.h5", "w") as f:
        for split, n in (("train", n_train), ("val", n_val)):
            m = n * caps_per_image
            caps = np.zeros((m, 17), dtype=np.int32)
            for r in range(m):
                k = int(rng.integers(2, 16))
                caps[r, 0] = START_ID
                caps[r, 1 : k + 1] = rng.integers(3, len(idx_to_word), size=k)  # includes <UNK> (3)
                caps[r, k + 1] = END_ID
            idxs = np.repeat(np.arange(n, dtype=np.int32), caps_per_image)
            perm = rng.permutation(m)
            f.create_dataset(f"{split}_captions", data=caps[perm])
            f.create_dataset(f"{split}_image_idxs", data=idxs[perm])
            info[split] = (caps[perm], idxs[perm])
    coco_ids = {}
    for split, n in (("train", n_train), ("val", n_val)):
        for suffix, d in (("_vgg16_fc7_pca.h5", d_pca), ("_vgg16_fc7.h5", d_fc7)):
            with h5py.File(base / f"{split}2014{suffix}", "w") as f:
                f.create_dataset("features", data=rng.standard_normal((n, d)).astype(np.float32))
        urls = [
            f"http://farm{i % 9 + 1}.staticflickr.com/{100 + i}/{5000 + i}_{split}ab12_z.jpg"
            for i in range(n)
        ]
        (base / f"{split}2014_urls.txt").write_text("\n".join(urls) + "\n")
        coco_ids[split] = [(300000 if split == "val" else 100000) + 7 * i for i in range(n)]
        ann = {
            "info": {"description": "COCO 2014"},
            "images": [
                {
                    "id": cid,
                    "file_name": f"COCO_{split}2014_{cid:012d}.jpg",
                    "coco_url": f"http://images.cocodataset.org/{split}2014/COCO_{split}2014_{cid:012d}.jpg",
                    "flickr_url": url,
                }
                for cid, url in zip(coco_ids[split], urls)
            ],
            "annotations": [
                {"id": 10 * cid + k, "image_id": cid, "caption": f"A Man riding horse number {k}."}
                for cid in coco_ids[split]
                for k in range(5)
            ],
        }
        (base / f"captions_{split}2014.json").write_text(json.dumps(ann))
    return info, coco_ids


def test_cs231n_layout(tmp_path):
    info, _ = write_cs231n(tmp_path)
    with pytest.warns(UserWarning, match="decoded"):
        data = load_cs231n_coco(tmp_path)
    assert set(data) == {"train", "val"}
    tr = data["train"]
    assert tr.vocab is data["val"].vocab and len(tr.vocab) == 4 + len(WORDS)
    assert tr.captions.shape == (36, 17) and tr.captions.dtype == np.int32 and tr.max_length == 17
    np.testing.assert_array_equal(tr.captions, info["train"][0])
    np.testing.assert_array_equal(tr.image_idxs, info["train"][1])
    assert tr.features.shape == (12, 16) and tr.features.dtype == np.float32
    assert tr.regions is None and tr.images is None
    assert tr.image_ids[0] == "train2014-0" and len(tr.urls) == 12
    assert tr.references_source == "decoded"
    # decoded references: lower-case words, <UNK> dropped, three per image
    assert all(len(v) == 3 for v in tr.references.values())
    first = tr.image_ids[tr.image_idxs[0]]
    assert tr.vocab.decode(tr.captions[0], strip_unk=True) in tr.references[first]
    assert not any("<UNK>" in c for caps in tr.references.values() for c in caps)
    b = tr.sample_minibatch(5, rng=0)
    assert b["captions"].shape == (5, 17) and b["features"].shape == (5, 16) and b["regions"] is None


def test_cs231n_max_train_and_fc7(tmp_path):
    write_cs231n(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load_cs231n_coco(tmp_path)["train"]
        a = load_cs231n_coco(tmp_path, max_train=10)["train"]
        b = load_cs231n_coco(tmp_path, max_train=10)["train"]
        c = load_cs231n_coco(tmp_path, max_train=10, seed=1)["train"]
        fc7 = load_cs231n_coco(tmp_path, pca_features=False)
    assert a.captions.shape == (10, 17) and a.image_idxs.shape == (10,)
    np.testing.assert_array_equal(a.captions, b.captions)
    assert not np.array_equal(a.image_idxs, c.image_idxs)
    assert a.features.shape == full.features.shape  # all features kept, as in load_coco_data
    rows = {(tuple(r), i) for r, i in zip(full.captions.tolist(), full.image_idxs.tolist())}
    assert all((tuple(r), i) in rows for r, i in zip(a.captions.tolist(), a.image_idxs.tolist()))
    # references: the images that kept a caption, with all of their captions
    assert set(a.references) == {a.image_ids[i] for i in a.image_idxs}
    assert all(len(v) == 3 for v in a.references.values())
    assert fc7["train"].features.shape == (12, 32) and fc7["val"].features.shape == (6, 32)


def test_cs231n_raw_references_from_annotations(tmp_path):
    _, coco_ids = write_cs231n(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_cs231n_coco(
            tmp_path, annotations=[tmp_path / "captions_train2014.json", tmp_path / "captions_val2014.json"]
        )
    va = data["val"]
    assert va.image_ids == [str(i) for i in coco_ids["val"]]
    assert va.references_source == "raw"
    assert va.references[str(coco_ids["val"][0])][0] == "A Man riding horse number 0."
    with pytest.raises(DataFormatError, match="no raw captions"):
        load_cs231n_coco(tmp_path, annotations=tmp_path / "captions_train2014.json")


@pytest.mark.parametrize(
    "damage, match",
    [
        ("drop_key", "missing dataset 'val_image_idxs'"),
        ("features_1d", "features"),
        ("idx_range", "image_idxs range"),
        ("urls", "urls for 6 images"),
        ("caption_ids", "outside the vocabulary"),
        ("caption_shape", r"\(M, T\) integer array"),
    ],
)
def test_cs231n_errors(tmp_path, damage, match):
    write_cs231n(tmp_path)
    if damage == "drop_key":
        with h5py.File(tmp_path / "coco2014_captions.h5", "a") as f:
            del f["val_image_idxs"]
    elif damage == "features_1d":
        with h5py.File(tmp_path / "val2014_vgg16_fc7_pca.h5", "w") as f:
            f.create_dataset("features", data=np.zeros(6, dtype=np.float32))
    elif damage == "idx_range":
        with h5py.File(tmp_path / "coco2014_captions.h5", "a") as f:
            f["val_image_idxs"][0] = 99
    elif damage == "urls":
        (tmp_path / "val2014_urls.txt").write_text("http://x/1.jpg\n")
    elif damage == "caption_ids":
        with h5py.File(tmp_path / "coco2014_captions.h5", "a") as f:
            f["train_captions"][0, 1] = 500
    elif damage == "caption_shape":
        with h5py.File(tmp_path / "coco2014_captions.h5", "a") as f:
            del f["val_captions"]
            f.create_dataset("val_captions", data=np.zeros(18, dtype=np.int32))
    with pytest.raises(DataFormatError, match=match) as exc:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_cs231n_coco(tmp_path)
    assert isinstance(exc.value, FormatError) and str(tmp_path) in str(exc.value)


def test_cs231n_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_cs231n_coco(tmp_path / "nope")
    write_cs231n(tmp_path)
    (tmp_path / "coco2014_vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="coco2014_vocab.json"):
        load_cs231n_coco(tmp_path)


# ------------------------------------------------------------------------------------------ features files
def _feats(n, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_read_features_layouts(tmp_path):
    ids = [42, 7, 1000]
    f = _feats(3)
    regions = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    np.savez(tmp_path / "a.npz", ids=np.array(ids), features=f, regions=regions)
    with h5py.File(tmp_path / "b.h5", "w") as h:
        h.create_dataset("image_ids", data=np.array([str(i).encode() for i in ids]))
        h.create_dataset("features", data=f)
    np.savez(tmp_path / "c.npz", **{str(i): row for i, row in zip(ids, f)})
    np.save(tmp_path / "d.npy", f)
    (tmp_path / "d.ids.txt").write_text("42\n7\n1000\n")
    np.save(tmp_path / "e.npy", np.array({i: row for i, row in zip(ids, f)}, dtype=object), allow_pickle=True)
    np.savez(tmp_path / "g.npz", **{str(i): reg for i, reg in zip(ids, regions)})
    for name, kw in [
        ("a.npz", {}),
        ("b.h5", {}),
        ("c.npz", {}),
        ("d.npy", {}),
        ("e.npy", {"allow_pickle": True}),
    ]:
        t = read_features(tmp_path / name, **kw)
        assert t.ids == ["42", "7", "1000"], name
        np.testing.assert_array_equal(t.features, f)
    t = read_features(tmp_path / "a.npz")
    np.testing.assert_array_equal(t.take(["1000", "42"])[1], regions[[2, 0]])
    t = read_features(tmp_path / "g.npz")
    np.testing.assert_allclose(t.features, regions.mean(axis=1), rtol=1e-6)
    assert t.regions.shape == (3, 4, 5)
    assert read_features(tmp_path / "d.npy", ids=["x", "y", "z"]).ids == ["x", "y", "z"]


@pytest.mark.parametrize(
    "writer, match",
    [
        (lambda p: np.savez(p / "f.npz", features=_feats(3)), "no 'ids'"),
        (lambda p: np.savez(p / "f.npz", ids=np.arange(2), features=_feats(3)), "2 ids for 3 feature rows"),
        (lambda p: np.savez(p / "f.npz", ids=np.arange(3), features=np.zeros(3)), "2-D array"),
        (
            lambda p: np.savez(p / "f.npz", ids=np.array([1, 1, 2]), features=_feats(3)),
            "duplicate feature ids",
        ),
        (lambda p: np.savez(p / "f.npz", ids=np.arange(3), features=_feats(3) * np.nan), "NaN"),
        (lambda p: np.savez(p / "f.npz", **{"1": np.zeros(4), "2": np.zeros(5)}), "different sizes"),
        (lambda p: np.save(p / "f.npy", _feats(3)), "no ids"),
        (lambda p: np.save(p / "f.npy", np.array({1: np.zeros(3)}), allow_pickle=True), "allow_pickle"),
        (lambda p: (p / "f.npz").write_bytes(b"garbage"), "not a readable .npz"),
        (lambda p: (p / "f.csv").write_text("1,2"), "unsupported features file"),
    ],
)
def test_read_features_errors(tmp_path, writer, match):
    writer(tmp_path)
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith("f.")]
    with pytest.raises(DataFormatError, match=match) as exc:
        read_features(path)
    assert str(path) in str(exc.value)


# ------------------------------------------------------------------------------------------ COCO JSON
def write_coco(tmp_path, ids=(42, 7, 1000), with_annotations=True):
    ann = {
        "info": {},
        "images": [
            {"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "height": 480, "width": 640} for i in ids
        ],
        "licenses": [],
    }
    if with_annotations:
        ann["annotations"] = [
            {"id": 100 * i + k, "image_id": i, "caption": f"A dog with a red ball on the grass {k}."}
            for i in ids
            for k in range(5 if i != 7 else 6)
        ]
    (tmp_path / "captions_val2014.json").write_text(json.dumps(ann))
    np.savez(tmp_path / "feats.npz", ids=np.array(ids), features=_feats(len(ids)))
    return tmp_path / "captions_val2014.json", tmp_path / "feats.npz"


def test_coco_annotations(tmp_path):
    ann, feats = write_coco(tmp_path)
    sp = load_coco_annotations(ann, feats, min_count=1)
    assert sp.name == "captions_val2014" and sp.image_ids == ["42", "7", "1000"]
    assert sp.references["7"][5] == "A dog with a red ball on the grass 5."
    assert sp.captions.shape == (16, 18) and np.bincount(sp.image_idxs).tolist() == [5, 6, 5]
    assert sp.vocab.decode(sp.captions[0]) == simple_split(sp.references["42"][0])
    np.testing.assert_array_equal(sp.features, _feats(3))
    # a vocabulary from elsewhere (train): unseen words become <UNK>; references stay raw
    voc = Vocabulary(list(SPECIAL_TOKENS) + ["a", "dog"])
    sp2 = load_coco_annotations(ann, feats, vocab=voc)
    assert sp2.vocab is voc and sp2.vocab.decode(sp2.captions[0]).startswith("a dog <UNK> a <UNK>")
    assert sp2.references == sp.references
    # default min_count=5 keeps only frequent words
    assert (
        "grass" in load_coco_annotations(ann, feats).vocab
        and "5" not in load_coco_annotations(ann, feats).vocab
    )


def test_coco_test_file_without_captions(tmp_path):
    ann, feats = write_coco(tmp_path, with_annotations=False)
    sp = load_coco_annotations(ann, feats)
    assert sp.captions.shape == (0, 18) and sp.references is None and not sp.has_captions
    assert len(sp) == 0 and bool(sp)
    with pytest.raises(ValueError, match="no captions"):
        sp.sample_minibatch(2, rng=0)
    with pytest.raises(ValueError, match="no references"):
        sp.write_references(tmp_path / "x.json")


def test_coco_errors(tmp_path):
    ann, feats = write_coco(tmp_path)
    np.savez(feats, ids=np.array([42, 1000]), features=_feats(2))
    with pytest.raises(DataFormatError, match=r"no features for 1 of 3 images: \['7'\]") as exc:
        load_coco_annotations(ann, feats)
    assert str(feats) in str(exc.value)
    ann.write_text(json.dumps({"info": {}}))
    with pytest.raises(DataFormatError, match="missing key 'annotations'"):
        load_coco_annotations(ann, feats)
    ann.write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 1}]}))
    with pytest.raises(DataFormatError, match=r"annotations\[0\] lacks"):
        load_coco_annotations(ann, feats)
    ann.write_text(json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 2, "caption": "x"}]}))
    with pytest.raises(DataFormatError, match="not in 'images'"):
        load_coco_annotations(ann, feats)
    ann.write_text("[1, 2")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_coco_annotations(ann, feats)


def test_coco_features_h5_with_regions(tmp_path):
    ann, _ = write_coco(tmp_path)
    with h5py.File(tmp_path / "f.h5", "w") as h:
        h.create_dataset("ids", data=np.array([1000, 42, 7]))
        h.create_dataset("features", data=_feats(3))
        h.create_dataset("regions", data=np.ones((3, 6, 4), dtype=np.float32))
        h.create_dataset("grid_shape", data=np.array([2, 3]))
    sp = load_coco_annotations(ann, tmp_path / "f.h5")
    np.testing.assert_array_equal(sp.features, _feats(3)[[1, 2, 0]])
    assert sp.regions.shape == (3, 6, 4) and sp.grid_shape == (2, 3)
    assert sp.sample_minibatch(4, rng=0)["regions"].shape == (4, 6, 4)


# ------------------------------------------------------------------------------------------ Karpathy
def write_karpathy(tmp_path, flickr=False):
    images = []
    for n, (split, cid) in enumerate(
        [("train", 11), ("train", 12), ("restval", 13), ("val", 21), ("test", 31), ("test", 32)]
    ):
        sents = [
            {
                "tokens": ["a", "man", "on", "a", "horse", str(k)],
                "raw": f"A man on a horse {k}." if split != "test" else f"A zebra {k}",
                "imgid": n,
                "sentid": 5 * n + k,
            }
            for k in range(5)
        ]
        if split == "val":
            for s in sents:
                del s["raw"]
        im = {"filepath": "val2014", "sentids": [s["sentid"] for s in sents], "imgid": n, "split": split}
        im["filename"] = f"COCO_val2014_{cid:012d}.jpg"
        im["sentences"] = sents
        if not flickr:
            im["cocoid"] = cid
        images.append(im)
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    ids = [im.get("cocoid", im["imgid"]) for im in images]
    np.savez(tmp_path / "feats.npz", ids=np.array(ids), features=_feats(len(ids)))
    return tmp_path / "dataset_coco.json", tmp_path / "feats.npz"


def test_karpathy(tmp_path):
    ds, feats = write_karpathy(tmp_path)
    data = load_karpathy(ds, feats, min_count=1)
    assert list(data) == ["train", "val", "test"]
    assert data["train"].image_ids == ["11", "12", "13"]  # restval joins train
    assert data["val"].references["21"][0] == "a man on a horse 0"  # from tokens when raw is absent
    assert data["test"].references["31"][2] == "A zebra 2"
    assert "zebra" not in data["train"].vocab  # vocabulary from train only
    assert data["test"].vocab.decode(data["test"].captions[0]) == "a <UNK> 0"
    assert data["train"].captions.shape == (15, 18)
    np.testing.assert_array_equal(data["test"].features, _feats(6)[4:])
    keep = load_karpathy(ds, feats, restval="keep", splits=["restval"])
    assert list(keep) == ["restval"] and keep["restval"].image_ids == ["13"]


def test_karpathy_flickr_ids_and_errors(tmp_path):
    ds, feats = write_karpathy(tmp_path, flickr=True)
    data = load_karpathy(ds, feats)
    assert data["train"].image_ids == ["0", "1", "2"]
    with pytest.raises(DataFormatError, match=r"no images in split\(s\) \['dev'\]"):
        load_karpathy(ds, feats, splits=["dev"])
    np.savez(feats, ids=np.arange(5), features=_feats(5))
    with pytest.raises(DataFormatError, match=r"no features for 1 of 2 images: \['5'\]"):
        load_karpathy(ds, feats)
    obj = json.loads(ds.read_text())
    del obj["images"][0]["split"]
    ds.write_text(json.dumps(obj))
    with pytest.raises(DataFormatError, match=r"images\[0\]: missing key 'split'"):
        load_karpathy(ds, feats)
    ds.write_text(json.dumps({"dataset": "coco"}))
    with pytest.raises(DataFormatError, match="missing key 'images'"):
        load_karpathy(ds, feats)


# ------------------------------------------------------------------------------------------ NICE
def write_nice(tmp_path):
    rows = [
        ("1001", "A cartoon of a red fox.", "animals"),
        ("1002", "Aerial view of a city at night", "city"),
        ("1003", "Close-up of a green leaf", "plants"),
    ]
    with open(tmp_path / "nice-val-5k.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["public_id", "caption_gt", "category"])
        w.writerows(rows)
    with open(tmp_path / "nice-test.csv", "w", newline="") as fh:
        fh.write("public_id\n2001\n2002\n")
    np.savez(tmp_path / "nice_feats.npz", ids=np.array([1001, 1002, 1003, 2001, 2002]), features=_feats(5))
    return rows


def test_nice_val_and_test(tmp_path):
    rows = write_nice(tmp_path)
    train_vocab = Vocabulary.build(["a red fox on the grass", "a city at night"])
    val = load_nice(tmp_path / "nice-val-5k.csv", tmp_path / "nice_feats.npz", vocab=train_vocab)
    assert val.name == "nice-val-5k" and val.image_ids == ["1001", "1002", "1003"]
    assert val.references == {r[0]: [r[1]] for r in rows}
    assert val.categories == {r[0]: r[2] for r in rows}
    assert val.vocab is train_vocab and val.captions.shape == (3, 18)
    assert val.vocab.decode(val.captions[0]) == "a <UNK> <UNK> a red fox"
    np.testing.assert_array_equal(val.features, _feats(5)[:3])

    test = load_nice(tmp_path / "nice-test.csv", tmp_path / "nice_feats.npz", vocab=train_vocab)
    assert test.image_ids == ["2001", "2002"] and test.references is None and test.categories is None
    assert test.captions.shape == (0, 18) and test.image_idxs.shape == (0,)
    own = load_nice(tmp_path / "nice-test.csv", tmp_path / "nice_feats.npz")
    assert own.vocab.idx_to_word == list(SPECIAL_TOKENS)

    preds = {"2001": "a dog  on grass", "2002": "a city"}
    write_nice_submission(tmp_path / "sub.csv", preds, ids=test.image_ids)
    with open(tmp_path / "sub.csv", newline="") as fh:
        assert list(csv.reader(fh)) == [
            ["public_id", "caption"],
            ["2001", "a dog on grass"],
            ["2002", "a city"],
        ]
    with pytest.raises(DataFormatError, match=r"no prediction for 1 public_ids: \['2002'\]"):
        write_nice_submission(tmp_path / "sub2.csv", {"2001": "x"}, ids=test.image_ids)
    with pytest.raises(DataFormatError, match="empty or non-string"):
        write_nice_submission(tmp_path / "sub2.csv", {"2001": "x", "2002": None}, ids=test.image_ids)
    assert not (tmp_path / "sub2.csv").exists()


def test_nice_errors(tmp_path):
    write_nice(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,caption_gt\n1001,x\n")
    with pytest.raises(DataFormatError, match="missing column 'public_id'"):
        load_nice(bad, tmp_path / "nice_feats.npz")
    bad.write_text("public_id,caption_gt\n1001,\n")
    with pytest.raises(DataFormatError, match="line 2: empty caption_gt"):
        load_nice(bad, tmp_path / "nice_feats.npz")
    bad.write_text("public_id\n1001\n1001\n")
    with pytest.raises(DataFormatError, match="listed twice"):
        load_nice(bad, tmp_path / "nice_feats.npz")
    bad.write_text("public_id,caption_gt\n1001,a\n9999,b\n")
    with pytest.raises(DataFormatError, match=r"no features for 1 of 2 images: \['9999'\]"):
        load_nice(bad, tmp_path / "nice_feats.npz")


def test_embedded_nice_round_trip_through_nice_csv(tmp_path):
    data = load_embedded(seed=11, sizes=(40, 5, 12), use_cache=False)
    nice = data["nice"]
    nice.write_references(tmp_path / "nice.csv", format="nice_csv")
    np.savez(
        tmp_path / "feats.npz", ids=np.array(nice.image_ids), features=nice.features, regions=nice.regions
    )
    back = load_nice(tmp_path / "nice.csv", tmp_path / "feats.npz", vocab=nice.vocab)
    assert back.image_ids == nice.image_ids
    assert back.references == nice.references and back.categories == nice.categories
    np.testing.assert_array_equal(back.captions, nice.captions)
    np.testing.assert_array_equal(back.image_idxs, nice.image_idxs)
    assert back.features.tobytes() == nice.features.tobytes() and back.grid_shape == (4, 4)
    assert (back.captions[:, 0] == START_ID).all() and back.captions.shape[1] == 18
