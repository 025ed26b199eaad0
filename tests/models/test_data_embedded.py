"""The embedded shapes dataset: determinism, caching, split properties, references, features."""

from __future__ import annotations

import csv
import json
import re
import warnings

import numpy as np
import pytest

from capeval_models.data import (
    END_ID,
    NULL_ID,
    START_ID,
    CaptionSplit,
    extract_features,
    load_embedded,
    simple_split,
)
from capeval_models.data import shapes as S
from capeval_models.data.embedded import _cache_name

SIZES = (240, 60, 80)
SEED = 3


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("capeval_models_cache")


@pytest.fixture(scope="module")
def splits(cache_dir):
    return load_embedded(seed=SEED, sizes=SIZES, cache_dir=cache_dir)


def _arrays(sp: CaptionSplit):
    return [sp.images, sp.features, sp.regions, sp.captions, sp.image_idxs]


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_same_bytes(splits):
    again = load_embedded(seed=SEED, sizes=SIZES, use_cache=False)
    for name in ("train", "val", "nice"):
        a, b = splits[name], again[name]
        for x, y in zip(_arrays(a), _arrays(b)):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes()
        assert json.dumps(a.references) == json.dumps(b.references)
        assert a.image_ids == b.image_ids
    assert splits["train"].vocab.idx_to_word == again["train"].vocab.idx_to_word


def test_other_seed_differs():
    a = load_embedded(seed=1, sizes=(20, 5, 5), use_cache=False)
    b = load_embedded(seed=2, sizes=(20, 5, 5), use_cache=False)
    assert a["train"].images.tobytes() != b["train"].images.tobytes()
    assert a["train"].references != b["train"].references


def test_prefix_does_not_depend_on_size(splits):
    small = load_embedded(seed=SEED, sizes=(30, 10, 10), use_cache=False)
    for name in ("train", "val", "nice"):
        n = small[name].num_images
        assert small[name].images.tobytes() == splits[name].images[:n].tobytes()
        assert [small[name].references[i] for i in small[name].image_ids] == [
            splits[name].references[i] for i in splits[name].image_ids[:n]
        ]


def test_cache_round_trip_and_corrupt_cache(splits, cache_dir):
    path = cache_dir / _cache_name(SEED, SIZES, 64, (4, 4), 512, 128)
    assert path.is_file()
    assert not splits["train"].info["from_cache"]
    cached = load_embedded(seed=SEED, sizes=SIZES, cache_dir=cache_dir)
    assert cached["train"].info["from_cache"]
    for name in ("train", "val", "nice"):
        for x, y in zip(_arrays(splits[name]), _arrays(cached[name])):
            assert x.tobytes() == y.tobytes()
        assert cached[name].references == splits[name].references
        assert cached[name].categories == splits[name].categories
    # a damaged cache is regenerated (with a warning) and rewritten
    other = cache_dir / "corrupt"
    other.mkdir()
    load_embedded(seed=4, sizes=(5, 2, 2), cache_dir=other)
    (bad,) = other.iterdir()
    bad.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable dataset cache"):
        again = load_embedded(seed=4, sizes=(5, 2, 2), cache_dir=other)
    assert not again["train"].info["from_cache"]
    assert load_embedded(seed=4, sizes=(5, 2, 2), cache_dir=other)["train"].info["from_cache"]


def test_bad_sizes():
    with pytest.raises(ValueError, match="sizes"):
        load_embedded(sizes=(10, 0, 5), use_cache=False)


# ------------------------------------------------------------------------------------------ layout
def test_split_layout(splits):
    vocab = splits["train"].vocab
    for name, n in zip(("train", "val", "nice"), SIZES):
        sp = splits[name]
        assert sp.name == name and sp.vocab is vocab
        assert sp.num_images == n and len(set(sp.image_ids)) == n
        assert all(isinstance(i, str) and i.startswith(name) for i in sp.image_ids)
        assert sp.images.shape == (n, 64, 64, 3) and sp.images.dtype == np.uint8
        assert sp.features.shape == (n, 512) and sp.features.dtype == np.float32
        assert sp.regions.shape == (n, 16, 128) and sp.regions.dtype == np.float32
        assert sp.grid_shape == (4, 4)
        assert np.isfinite(sp.features).all() and np.isfinite(sp.regions).all()
        assert sp.captions.shape == (5 * n, 18) and sp.captions.dtype == np.int32
        assert len(sp) == sp.num_captions == 5 * n and sp.max_length == 18
        assert np.bincount(sp.image_idxs, minlength=n).tolist() == [5] * n
        assert (sp.captions[:, 0] == START_ID).all()
        assert ((sp.captions == END_ID).sum(axis=1) == 1).all()
        assert set(sp.references) == set(sp.image_ids)
    assert splits["train"].categories is None and splits["val"].categories is None
    assert set(splits["nice"].categories.values()) <= {f"{c} {s}" for c, s in S.WITHHELD}


def test_five_distinct_references_within_length(splits):
    for sp in splits.values():
        for refs in sp.references.values():
            assert len(refs) == 5 and len(set(refs)) == 5
            for r in refs:
                words = simple_split(r).split()
                assert 1 <= len(words) <= 16
                assert r == r.strip() and r == r.lower()


def test_encoded_captions_decode_to_the_references(splits):
    for sp in splits.values():
        decoded = sp.vocab.decode(sp.captions)
        for text, idx in zip(decoded, sp.image_idxs):
            refs = [simple_split(r) for r in sp.references[sp.image_ids[idx]]]
            if sp.name != "train":  # words unseen in train become <UNK>
                assert any(_match_with_unk(text, r, sp.vocab) for r in refs)
            else:
                assert text in refs
    # padding after <END> is <NULL>
    caps = splits["train"].captions
    end = (caps == END_ID).argmax(axis=1)
    after = np.arange(caps.shape[1])[None, :] > end[:, None]
    assert (caps[after] == NULL_ID).all()


def _match_with_unk(text, ref, vocab):
    want = [w if w in vocab.word_to_idx else "<UNK>" for w in ref.split()]
    return text.split() == want


# ------------------------------------------------------------------------------------------ splits
def _mentions(text):
    """(colour, shape) pairs a caption attributes to one object, in any of the grammar's word orders."""
    colour_word = {w: c for c, opts in S.COLOUR_WORDS.items() for w, _ in opts}
    shape_word = {}
    for s, opts in S.SHAPE_WORDS.items():
        for (sg, pl), _ in opts:
            shape_word[sg] = shape_word[pl] = s
    cw = "|".join(colour_word)
    sw = "|".join(sorted(shape_word, key=len, reverse=True))
    sizes = "|".join(w for opts in S.SIZE_WORDS.values() for w, _ in opts)
    t = simple_split(text)
    found = set()
    for m in re.finditer(rf"\b({cw})(?: (?:{sizes}))? ({sw})\b", t):
        found.add((colour_word[m.group(1)], shape_word[m.group(2)]))
    for m in re.finditer(rf"\b({sw})(?: that is| colored| in) ({cw})\b", t):
        found.add((colour_word[m.group(2)], shape_word[m.group(1)]))
    for m in re.finditer(rf"\b({cw}) colored ({sw})\b", t):
        found.add((colour_word[m.group(1)], shape_word[m.group(2)]))
    return found


def test_withheld_pairs_never_in_train_or_val(splits):
    withheld = set(S.WITHHELD)
    for name in ("train", "val"):
        sp = splits[name]
        for objs in sp.objects:
            assert not any((o.colour, o.shape) in S.WITHHELD_IDS for o in objs)
        for refs in sp.references.values():
            for r in refs:
                assert not (_mentions(r) & withheld), r


def test_withheld_pairs_in_every_nice_image(splits):
    sp = splits["nice"]
    withheld = set(S.WITHHELD)
    seen_pairs = set()
    for image_id, objs in zip(sp.image_ids, sp.objects):
        pairs = {(S.COLOURS[o.colour], S.SHAPES[o.shape]) for o in objs}
        assert pairs & withheld
        seen_pairs |= pairs & withheld
        assert sp.categories[image_id] in {f"{c} {s}" for c, s in pairs & withheld}
        mentioned = set().union(*(_mentions(r) for r in sp.references[image_id]))
        assert mentioned & withheld, sp.references[image_id]
    assert seen_pairs == withheld


def test_withheld_pairs_compose_seen_colours_and_shapes(splits):
    train_objs = [o for objs in splits["train"].objects for o in objs]
    colours = {S.COLOURS[o.colour] for o in train_objs}
    shapes_ = {S.SHAPES[o.shape] for o in train_objs}
    for c, s in S.WITHHELD:
        assert c in colours and s in shapes_


NICE_PHRASES = (
    "in the picture",
    "picture showing",
    "that is",
    "colored",
    "next to",
    "to its",
    "we can see",
    "picture shows",
    "above it",
    "below it",
    "of the picture",
)


def test_nice_style_shift(splits):
    def rate(sp):
        refs = [r for rs in sp.references.values() for r in rs]
        return np.mean([any(p in r for p in NICE_PHRASES) for r in refs])

    assert rate(splits["train"]) == 0 and rate(splits["val"]) == 0
    assert 0.65 < rate(splits["nice"]) < 0.95
    # n-grams of nice references that never occur in train
    train_bigrams = {b for rs in splits["train"].references.values() for r in rs for b in _bigrams(r)}
    nice_bigrams = [b for rs in splits["nice"].references.values() for r in rs for b in _bigrams(r)]
    val_bigrams = [b for rs in splits["val"].references.values() for r in rs for b in _bigrams(r)]
    unseen_nice = np.mean([b not in train_bigrams for b in nice_bigrams])
    unseen_val = np.mean([b not in train_bigrams for b in val_bigrams])
    assert unseen_nice > 0.2 > 0.02 > unseen_val


def _bigrams(text):
    w = simple_split(text).split()
    return list(zip(w, w[1:]))


def test_images_match_their_scenes(splits):
    hits = total = 0
    for sp in splits.values():
        for img, objs in zip(sp.images, sp.objects):
            for o in objs:
                px = img[int(o.cy), int(o.cx)].astype(int)
                nearest = int(np.argmin(np.abs(S.COLOUR_RGB.astype(int) - px).sum(axis=1)))
                hits += nearest == o.colour
                total += 1
    assert hits / total > 0.97


# ------------------------------------------------------------------------------------------ batches, files
def test_sample_minibatch(splits):
    sp = splits["train"]
    b1 = sp.sample_minibatch(32, rng=np.random.default_rng(0))
    b2 = sp.sample_minibatch(32, rng=0)
    assert set(b1) == {"captions", "features", "regions", "image_idxs"}
    assert b1["captions"].shape == (32, 18) and b1["captions"].dtype == np.int32
    assert b1["features"].shape == (32, 512) and b1["regions"].shape == (32, 16, 128)
    assert b1["image_idxs"].shape == (32,)
    for k in b1:
        assert np.array_equal(b1[k], b2[k])
    np.testing.assert_array_equal(b1["features"], sp.features[b1["image_idxs"]])
    # each caption belongs to its image
    for cap, idx in zip(sp.vocab.decode(b1["captions"]), b1["image_idxs"]):
        assert cap in [simple_split(r) for r in sp.references[sp.image_ids[idx]]]


def test_write_references(splits, tmp_path):
    sp = splits["nice"]
    sp.write_references(tmp_path / "refs.json")
    assert json.loads((tmp_path / "refs.json").read_text()) == sp.references
    sp.write_references(tmp_path / "nice.csv", format="nice_csv")
    with open(tmp_path / "nice.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["public_id", "caption_gt", "category"]
    assert len(rows) == 1 + 5 * sp.num_images
    assert rows[1] == [sp.image_ids[0], sp.references[sp.image_ids[0]][0], sp.categories[sp.image_ids[0]]]
    splits["val"].write_references(tmp_path / "val.csv", format="nice_csv")
    with open(tmp_path / "val.csv", newline="") as fh:
        assert next(iter(list(csv.reader(fh))[1:]))[2] == ""
    with pytest.raises(ValueError, match="format"):
        sp.write_references(tmp_path / "x", format="yaml")
    assert not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------ features
def test_features_deterministic_and_row_independent(splits):
    imgs = splits["val"].images
    g1, r1 = extract_features(imgs)
    g2, r2 = extract_features(imgs)
    assert g1.tobytes() == g2.tobytes() and r1.tobytes() == r2.tobytes()
    assert g1.tobytes() == splits["val"].features.tobytes()
    g3, r3 = extract_features(imgs[7:12])
    np.testing.assert_allclose(g3, g1[7:12], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r3, r1[7:12], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        extract_features(imgs.astype(np.float32))


def test_features_carry_colour_shape_size_position():
    """A linear probe on the global vector reads every cell's colour, shape and size on held-out images."""
    data = load_embedded(seed=5, sizes=(1000, 300, 10), use_cache=False)

    def cells(sp):
        out = np.zeros((3, sp.num_images, 9), dtype=int)  # colour+1, shape+1, size+1; 0 = empty cell
        for i, objs in enumerate(sp.objects):
            for o in objs:
                out[:, i, o.row * 3 + o.col] = (o.colour + 1, o.shape + 1, o.size + 1)
        return out

    tr, va = data["train"], data["val"]
    xtr = np.hstack([tr.features, np.ones((tr.num_images, 1))])
    xva = np.hstack([va.features, np.ones((va.num_images, 1))])
    gram = xtr.T @ xtr + 30 * np.eye(xtr.shape[1])
    ytr, yva = cells(tr), cells(va)
    thresholds = {0: 0.8, 1: 0.7, 2: 0.9}  # chance: 1/6, 1/5, 1/2
    for attr, k in ((0, 7), (1, 6), (2, 3)):
        acc = []
        occupied = []
        for c in range(9):
            w = np.linalg.solve(gram, xtr.T @ np.eye(k)[ytr[attr, :, c]])
            pred = (xva @ w).argmax(axis=1)
            m = yva[attr, :, c] > 0
            acc.append((pred[m] == yva[attr, m, c]).mean())
            occupied.append(((pred > 0) == m).mean())
        assert np.mean(acc) > thresholds[attr], (attr, acc)
        assert np.mean(occupied) > 0.95  # position: which cells hold a shape


def test_split_without_regions_samples_none(splits):
    sp = splits["val"]
    bare = CaptionSplit(
        name="bare",
        image_ids=sp.image_ids,
        features=sp.features,
        captions=sp.captions,
        image_idxs=sp.image_idxs,
        vocab=sp.vocab,
        references=sp.references,
    )
    assert bare.sample_minibatch(4, rng=1)["regions"] is None
    assert bare.grid_shape is None and bare.images is None


def test_progress_and_warning_free_generation():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_embedded(seed=9, sizes=(3, 2, 2), use_cache=False, progress=True)
