"""Realistic, distinct caption data of any size for the scale benchmark (seeded, vectorized).

A word-bigram model is fitted on the shared COCO and NICE captions, on their raw whitespace tokens
(capitals and attached punctuation included, so the PTB tokenizer does its real work), with sentence
start and end symbols: the vocabulary is the real, Zipfian one and caption lengths follow the real
distribution (the end symbol decides). Each image gets a base caption; its references and its
prediction each keep a random prefix of the base (at least two words) and continue it with the
model, so they share n-grams the way captions of one image do, while captions of different images
are independent draws (duplicates across images are rare; :func:`duplicate_fraction` measures them).

    python -m benchmarks.captiongen --images 400000 --out /tmp/scale-400k --shards 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.datasets import COCO_SUBSET, NICE_CSV, available

START, END = 0, 1
MAX_WORDS = 40


class BigramModel:
    """Next-word distributions as one CSR table: row ``w`` holds the successors of word ``w``."""

    def __init__(self, captions: list[str]):
        words: dict[str, int] = {"<s>": START, "</s>": END}
        prev, nxt = [], []
        for caption in captions:
            ids = [words.setdefault(w, len(words)) for w in caption.split()]
            if not ids:
                continue
            seq = [START, *ids, END]
            prev.extend(seq[:-1])
            nxt.extend(seq[1:])
        self.words = np.array(list(words), dtype=object)
        pairs = np.asarray(prev, dtype=np.int64) * len(words) + np.asarray(nxt, dtype=np.int64)
        keys, counts = np.unique(pairs, return_counts=True)
        row, self.successor = keys // len(words), keys % len(words)
        self.row_start = np.searchsorted(row, np.arange(len(words) + 1))
        # within a row, cumulative probabilities in (0, 1]; shifted by the row number, one global
        # searchsorted samples a successor for every active caption at once
        cumulative = np.cumsum(counts).astype(np.float64)
        before = np.concatenate(([0.0], cumulative))[self.row_start[:-1]]
        totals = np.add.reduceat(counts, self.row_start[:-1][np.diff(self.row_start) > 0]).astype(np.float64)
        row_total = np.zeros(len(words))
        row_total[np.diff(self.row_start) > 0] = totals
        self.shifted = row + (cumulative - before[row]) / row_total[row]

    @classmethod
    def from_shared_data(cls) -> BigramModel:
        import csv

        if not available():
            raise SystemExit("the shared COCO/NICE data is not available (../shared/data)")
        coco = json.loads(COCO_SUBSET.read_text(encoding="utf-8"))
        captions = [a["caption"] for a in coco["annotations"]]
        with open(NICE_CSV, encoding="utf-8", newline="") as fh:
            captions += [row["caption_gt"] for row in csv.DictReader(fh)]
        return cls(captions)

    def continue_from(self, prefixes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Extend each word-id prefix (without the start symbol) until the end symbol or MAX_WORDS."""
        n = len(prefixes)
        out = np.full((n, MAX_WORDS), -1, dtype=np.int64)
        length = np.array([len(p) for p in prefixes], dtype=np.int64)
        for k, p in enumerate(prefixes):
            out[k, : len(p)] = p
        last = np.array([p[-1] if len(p) else START for p in prefixes], dtype=np.int64)
        active = np.flatnonzero(length < MAX_WORDS)
        while len(active):
            draw = np.searchsorted(self.shifted, last[active] + rng.random(len(active)), side="left")
            word = self.successor[np.minimum(draw, len(self.successor) - 1)]
            ended = word == END
            go = active[~ended]
            out[go, length[go]] = word[~ended]
            length[go] += 1
            last[go] = word[~ended]
            active = go[length[go] < MAX_WORDS]
        return [out[k, : length[k]] for k in range(n)]

    def text(self, ids: np.ndarray) -> str:
        return " ".join(self.words[ids])


def generate(model: BigramModel, n_images: int, seed: int, first_id: int = 0, refs_per_image=(5, 5, 5, 5, 6, 7)):
    """``(ids, references, predictions)`` of ``n_images`` images (lists of strings)."""
    rng = np.random.default_rng(seed)
    base = model.continue_from([np.zeros(0, np.int64)] * n_images, rng)
    n_refs = rng.choice(np.asarray(refs_per_image), size=n_images)
    owners = np.repeat(np.arange(n_images), n_refs + 1)  # n_refs references + one prediction each
    keep = [min(len(base[i]), 2 + int(rng.integers(0, max(len(base[i]) - 1, 1)))) for i in owners]
    prefixes = [base[i][:k] for i, k in zip(owners, keep)]
    captions = model.continue_from(prefixes, rng)
    references, predictions, at = [], [], 0
    for i in range(n_images):
        group = captions[at : at + n_refs[i] + 1]
        at += n_refs[i] + 1
        references.append([model.text(c) for c in group[:-1]])
        predictions.append(model.text(group[-1]))
    ids = list(range(first_id, first_id + n_images))
    return ids, references, predictions


def write_jsonl_shards(model: BigramModel, n_images: int, out: Path, shards: int = 1, seed: int = 0, block: int = 50_000) -> tuple[list[Path], list[Path]]:
    """``refs-XXXXX.jsonl`` and ``preds-XXXXX.jsonl`` shards of ``n_images`` images in total."""
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, n_images, shards + 1).astype(np.int64)
    refs_paths, preds_paths = [], []
    for s in range(shards):
        refs_path, preds_path = out / f"refs-{s:05d}.jsonl", out / f"preds-{s:05d}.jsonl"
        with open(refs_path, "w", encoding="utf-8") as rf, open(preds_path, "w", encoding="utf-8") as pf:
            for lo in range(int(bounds[s]), int(bounds[s + 1]), block):
                hi = min(lo + block, int(bounds[s + 1]))
                ids, refs, preds = generate(model, hi - lo, seed=seed * 1_000_003 + lo, first_id=lo)
                rf.writelines(json.dumps({"image_id": i, "captions": r}) + "\n" for i, r in zip(ids, refs))
                pf.writelines(json.dumps({"image_id": i, "caption": p}) + "\n" for i, p in zip(ids, preds))
        refs_paths.append(refs_path)
        preds_paths.append(preds_path)
    return refs_paths, preds_paths


def duplicate_fraction(references: list[list[str]], predictions: list[str]) -> float:
    """Share of captions that also occur in another image (within an image repeats are allowed)."""
    owner: dict[str, int] = {}
    shared = 0
    total = 0
    for i, (refs, pred) in enumerate(zip(references, predictions)):
        for caption in {*refs, pred}:
            total += 1
            if owner.setdefault(caption, i) != i:
                shared += 1
    return shared / max(total, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = BigramModel.from_shared_data()
    refs, preds = write_jsonl_shards(model, args.images, args.out, args.shards, args.seed)
    print(json.dumps({"images": args.images, "refs": [str(p) for p in refs], "preds": [str(p) for p in preds], "vocabulary": len(model.words)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
