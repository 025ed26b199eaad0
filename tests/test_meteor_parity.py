"""Full METEOR parity with pycocoevalcap 1.2 (CAPEVAL_PARITY=1; a few minutes, three JVMs):

* the whole COCO leave-one-out set (4,800 images) and NICE val with the first retrieval hint (5,000
  images) against the recorded fixtures;
* live: the same sets built from ../shared/data, PTB-tokenized as pycocoevalcap does (references and
  predictions in separate tokenizer runs), scored by pycocoevalcap's own ``Meteor().compute_score``
  and by capeval, per image and corpus to 1e-9.

    CAPEVAL_PARITY=1 python -m pytest -q tests/test_meteor_parity.py
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

# the package: ``import capeval.meteor as M`` yields the function capeval.meteor where capeval defines one
M = importlib.import_module("capeval.meteor")

FIXTURES = Path(__file__).parent / "fixtures"
REASON = M.meteor_unavailable_reason()
pytestmark = [
    pytest.mark.java,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CAPEVAL_PARITY") != "1", reason="set CAPEVAL_PARITY=1 for full parity runs"),
    pytest.mark.skipif(REASON is not None, reason=f"no Meteor: {REASON}"),
]


def load(name):
    with gzip.open(FIXTURES / f"meteor_{name}.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def pool():
    with M.Meteor(workers=2) as m:
        m.start()
        yield m


@pytest.mark.parametrize("name", ["coco_loo", "nice_val"])
def test_full_sets_against_fixtures(pool, name):
    """Per-segment scores from the jar's EVAL here (the live test below uses capeval's formula)."""
    fx = load(name)
    pool.segment_scores = "jar"
    try:
        res = M.meteor(dict(zip(fx["ids"], fx["refs"])), dict(zip(fx["ids"], fx["preds"])), scorer=pool)
    finally:
        pool.segment_scores = "python"
    assert res.ids == fx["ids"]
    np.testing.assert_allclose(res.per_item, fx["scores"], rtol=0, atol=1e-9)
    assert abs(res.score - fx["corpus"]) <= 1e-9
    np.testing.assert_array_equal(res.per_item, fx["scores"])  # bit-identical in practice
    assert res.score == fx["corpus"]
    raw = np.array([[float(x) for x in s.split()] for s in fx["stats"]])
    np.testing.assert_array_equal(res.stats, M.meteor_summable_stats(raw))
    assert M.meteor_score_from_stats(res.stats) == res.score


def _live_sets():
    datasets = pytest.importorskip("benchmarks.datasets")
    if not datasets.available():
        pytest.skip(f"shared data not found under {datasets.SHARED}")
    return {"coco_loo": datasets.coco_leave_one_out, "nice_val": datasets.nice_retrieval}


@pytest.mark.parametrize("name", ["coco_loo", "nice_val"])
def test_live_against_pycocoevalcap(pool, name):
    from pycocoevalcap.meteor.meteor import Meteor as PycocoMeteor

    from capeval.tokenize import tokenize

    refs, preds = _live_sets()[name]()
    fx = load(name)
    by_str = {str(i): i for i in refs}
    assert sorted(by_str) == sorted(str(i) for i in fx["ids"])
    ids = [by_str[str(i)] for i in fx["ids"]]  # the fixture's order (pycocoevalcap: dict order)
    flat = tokenize([c for i in ids for c in refs[i]], "corenlp")
    tok_refs, k = {}, 0
    for i in ids:
        tok_refs[i] = flat[k : k + len(refs[i])]
        k += len(refs[i])
    tok_preds = dict(zip(ids, tokenize([preds[i] for i in ids], "corenlp")))
    assert [tok_refs[i] for i in ids] == fx["refs"] and [tok_preds[i] for i in ids] == fx["preds"]

    pc = PycocoMeteor()
    pc_score, pc_scores = pc.compute_score(tok_refs, {i: [tok_preds[i]] for i in ids})
    del pc
    res = M.meteor(tok_refs, tok_preds, scorer=pool)
    np.testing.assert_allclose(res.per_item, np.asarray(pc_scores, dtype=float), rtol=0, atol=1e-9)
    assert abs(res.score - pc_score) <= 1e-9
