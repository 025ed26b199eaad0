"""The real inputs of tests and benchmarks, built from ../shared/data (read-only, beside the checkout).

* ``coco_leave_one_out()``: COCO val2014 subset, 4,800 images; the lowest-annotation-id caption of
  each image is the prediction, the others (3-6) are its references.
* ``coco_40504()``: the same set replicated with fresh ids to 40,504 images (COCO val2014's size).
* ``nice_retrieval()``: NICE 2023 val, one reference per image; the first retrieval hint is the submission.
* ``coco_fakecap()``: the coco-caption demo's fake captions on the images they share with the subset.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import defaultdict
from pathlib import Path

SHARED = Path(os.environ.get("CAPEVAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
COCO_SUBSET = SHARED / "coco" / "captions_val2014_subset4800.json"
NICE_CSV = SHARED / "nice" / "nice-val-5k.csv"
NICE_HINTS = SHARED / "nice" / "nice-val-5k-retrieval-hints.jsonl"
COCO_VAL_SIZE = 40504


def available() -> bool:
    return COCO_SUBSET.is_file() and NICE_CSV.is_file() and NICE_HINTS.is_file()


def _coco_by_image(sort_by_annotation_id: bool = True) -> dict:
    data = json.loads(COCO_SUBSET.read_text(encoding="utf-8"))
    anns = sorted(data["annotations"], key=lambda a: a["id"]) if sort_by_annotation_id else data["annotations"]
    by_image = defaultdict(list)
    for ann in anns:
        by_image[ann["image_id"]].append(ann["caption"])
    return by_image


def coco_leave_one_out(limit: int | None = None):
    by_image = _coco_by_image()
    ids = list(by_image)[:limit]
    return {i: by_image[i][1:] for i in ids}, {i: by_image[i][0] for i in ids}


def coco_40504():
    refs, preds = coco_leave_one_out()
    base = list(refs)
    out_refs, out_preds = {}, {}
    for k in range(COCO_VAL_SIZE):
        src = base[k % len(base)]
        new_id = 1_000_000 * (k // len(base)) + src
        out_refs[new_id], out_preds[new_id] = refs[src], preds[src]
    return out_refs, out_preds


_HINT = re.compile(r"^(?:\[[^\]]*\])+([^\[]*)")


def first_hint(encoder_prefix: str) -> str:
    """The first hint caption: the text after the leading ``[tag]`` run, up to the next tag."""
    m = _HINT.match(encoder_prefix)
    return m.group(1).strip() if m else ""


def nice_retrieval():
    with open(NICE_CSV, encoding="utf-8", newline="") as fh:
        refs = {row["public_id"]: [row["caption_gt"]] for row in csv.DictReader(fh)}
    preds = {}
    with open(NICE_HINTS, encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            preds[str(obj["image_id"])] = first_hint(obj["encoder_prefix"])
    return refs, {i: preds[i] for i in refs}


def coco_fakecap():
    by_image = _coco_by_image(sort_by_annotation_id=False)
    results = json.loads((SHARED / "coco" / "captions_val2014_fakecap_results.json").read_text(encoding="utf-8"))
    preds = {r["image_id"]: r["caption"] for r in results if r["image_id"] in by_image}
    return {i: by_image[i] for i in preds}, preds
