"""Live comparison with pycocoevalcap 1.2 on ../shared/data (the `parity` tox env: CAPEVAL_PARITY=1).

The default test run covers the same inputs through golden fixtures; this re-derives them from an
installed pycocoevalcap, so a change in either library shows up here.
"""

import contextlib
import io
import os

import numpy as np
import pytest

import capeval
from benchmarks import datasets

pytestmark = [
    pytest.mark.skipif(os.environ.get("CAPEVAL_PARITY") != "1", reason="live parity runs in `tox -e parity` (CAPEVAL_PARITY=1)"),
    pytest.mark.skipif(not datasets.available(), reason="../shared/data is not present"),
]

LOADERS = {"coco_loo": datasets.coco_leave_one_out, "nice_retrieval": datasets.nice_retrieval, "coco_fakecap": datasets.coco_fakecap}


def pycocoevalcap_scores(refs, preds):
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        gts = PTBTokenizer().tokenize({i: [{"caption": c} for c in refs[i]] for i in refs})
        res = PTBTokenizer().tokenize({i: [{"caption": preds[i]}] for i in refs})
        bleu, bleus = Bleu(4).compute_score(gts, res)
    out = {f"Bleu_{k + 1}": (bleu[k], bleus[k]) for k in range(4)}
    out["ROUGE_L"] = Rouge().compute_score(gts, res)
    out["CIDEr-D"] = Cider().compute_score(gts, res)
    return out


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_live_parity(name):
    refs, preds = LOADERS[name]()
    theirs = pycocoevalcap_scores(refs, preds)
    ours = capeval.evaluate(refs, preds, metrics="bleu rouge_l cider_d")
    for key, (corpus, per_item) in theirs.items():
        assert abs(ours.scores[key] - corpus) <= 1e-9, key
        np.testing.assert_allclose(ours.per_item[key].to_numpy(), np.asarray(per_item, dtype=float), atol=1e-9, rtol=0)
