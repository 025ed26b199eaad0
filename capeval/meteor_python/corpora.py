"""The caption pairs of ../shared/data as METEOR segments, for the differential tests and benchmark.

Each set comes raw (captions as written, cleaned as the wrapper sends them) and PTB-tokenized (as
pycocoevalcap sends them): ``{name: (references, hypotheses)}`` lists ready for ``segment_statistics``.
"""

from __future__ import annotations

import json

from capeval.meteor import clean_caption


def _segments(refs: dict, preds: dict, tokenized: bool):
    ids = list(preds)
    ref_lists = [list(refs[i]) for i in ids]
    hyps = [preds[i] for i in ids]
    if tokenized:
        from capeval.tokenize import tokenize

        flat = tokenize([c for r in ref_lists for c in r], "corenlp")
        out, k = [], 0
        for r in ref_lists:
            out.append(flat[k : k + len(r)])
            k += len(r)
        ref_lists = out
        hyps = tokenize(hyps, "corenlp")
    return [[clean_caption(c) for c in r] for r in ref_lists], [clean_caption(h) for h in hyps]


def shared_sets(tokenized: bool = True) -> dict[str, tuple[list[list[str]], list[str]]]:
    """Every caption pair of the shared data: COCO leave-one-out (4,800 images, all references), NICE
    val with the first retrieval hint, the COCO fakecap results (on the subset's images), the human
    "results" of cocoapi's fakecap file scored against the other captions of their image where known,
    the student results (every caption of every id against that image's captions), nlg-eval."""
    from benchmarks import datasets as D

    sets = {}
    refs, preds = D.coco_leave_one_out()
    sets["coco_loo"] = (refs, preds)
    sets["nice_val"] = D.nice_retrieval()
    sets["coco_fakecap"] = D.coco_fakecap()
    by_image = D._coco_by_image()
    coco_dir = D.SHARED / "coco"
    human = json.loads((coco_dir / "cocoapi_captions_val2014_fakecap_results.json").read_text(encoding="utf-8"))
    h_refs, h_preds = {}, {}
    for k, r in enumerate(human):
        if r["image_id"] in by_image:
            h_refs[k], h_preds[k] = by_image[r["image_id"]], r["caption"]
    sets["cocoapi_fakecap"] = (h_refs, h_preds)
    student = json.loads(
        (coco_dir / "captions_val2014_subset4800_student_results_dups.json").read_text(encoding="utf-8")
    )
    s_refs, s_preds = {}, {}
    for k, r in enumerate(student):
        if r["image_id"] in by_image:
            s_refs[k], s_preds[k] = by_image[r["image_id"]], r["caption"]
    sets["student"] = (s_refs, s_preds)
    nlg = D.SHARED / "nlgeval"
    lines = [(nlg / f).read_text(encoding="utf-8").splitlines() for f in ("ref1.txt", "ref2.txt", "hyp.txt")]
    sets["nlgeval"] = (
        {k: [a, b] for k, (a, b) in enumerate(zip(lines[0], lines[1]))},
        dict(enumerate(lines[2])),
    )
    return {name: _segments(r, p, tokenized) for name, (r, p) in sets.items()}
