"""Live differential tests of capeval.meteor_python against the Meteor 1.5 jar (skip without Java):
a seeded fuzz built to reach every path, and every caption pair of ../shared/data.

Defaults stay short; scale up with environment variables:

    CAPEVAL_METEOR_FUZZ=50000 python -m pytest -q tests/test_meteor_python_jar.py -k fuzz
    CAPEVAL_PARITY=1 python -m pytest -q tests/test_meteor_python_jar.py -k shared
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import capeval.meteor_python as MP
from capeval.meteor_python.oracle import jar_statistics, java_available

REASON = MP.unavailable_reason()
pytestmark = [
    pytest.mark.java,
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=f"pycocoevalcap's Meteor data: {REASON}"),
    pytest.mark.skipif(java_available() is None, reason="no Java runtime: the jar is the oracle"),
]
FUZZ_SEGMENTS = int(os.environ.get("CAPEVAL_METEOR_FUZZ", "1500"))
FUZZ_SEED = int(os.environ.get("CAPEVAL_METEOR_FUZZ_SEED", "20261202"))
FULL = os.environ.get("CAPEVAL_PARITY") == "1"
SHARED_SLICE = 150  # segments per shared set by default


def assert_same(refs, hyps, label):
    ours = MP.segment_statistics(refs, hyps, progress=False, workers=0)
    jar = jar_statistics(refs, hyps)
    bad = np.flatnonzero((ours != jar).any(axis=1))
    detail = [(int(k), hyps[k], refs[k], ours[k].tolist(), jar[k].tolist()) for k in bad[:3]]
    assert len(bad) == 0, f"{label}: {len(bad)} of {len(hyps)} segments differ, e.g. {detail}"


def test_fuzz_against_the_jar():
    from capeval.meteor_python.fuzz import SegmentFuzzer

    refs, hyps = SegmentFuzzer(MP.load_tables(progress=False), FUZZ_SEED).segments(FUZZ_SEGMENTS)
    assert_same(refs, hyps, f"fuzz seed {FUZZ_SEED}")


def test_shared_data_against_the_jar():
    datasets = pytest.importorskip("benchmarks.datasets")
    if not datasets.available():
        pytest.skip(f"shared data not found under {datasets.SHARED}")
    from capeval.meteor_python.corpora import shared_sets

    refs, hyps = [], []
    for tokenized in (False, True):
        for _, (r, h) in shared_sets(tokenized).items():
            n = len(h) if FULL else SHARED_SLICE
            refs += r[:n]
            hyps += h[:n]
    assert_same(refs, hyps, "shared data")
