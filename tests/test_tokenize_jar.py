"""Live differential tests: capeval's pure-Python ``ptb`` tokenizer and its ``corenlp`` backend against the
CoreNLP 3.4.1 jar of an installed pycocoevalcap.  Skipped without Java or pycocoevalcap."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from capeval.errors import TokenizerError
from capeval.tokenize import _clean_line, corenlp_raw_lines, corenlp_tokenize, ptb_tokenize

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import tokenize_data  # noqa: E402

T = importlib.import_module("capeval.tokenize")

pytestmark = [
    pytest.mark.java,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime (java on PATH)"),
    pytest.mark.skipif(importlib.util.find_spec("pycocoevalcap") is None, reason="needs pycocoevalcap 1.2 (its jar)"),
]


def _jar_document(captions):
    lines = corenlp_raw_lines(captions)
    assert len(lines) == len(captions)
    return [_clean_line(line) for line in lines]


def test_fresh_fuzz_against_the_jar():
    # a seed the fixtures do not use: new strings every time the generator changes
    caps = tokenize_data.fuzz_corpus(3000, 424242) + tokenize_data.context_corpus(500, 4242)
    expected = _jar_document(caps)
    got = ptb_tokenize(caps)
    bad = [(c, e, g) for c, e, g in zip(caps, expected, got) if e != g]
    assert not bad, "\n".join(f"{c!r}\n  jar: {e!r}\n  ptb: {g!r}" for c, e, g in bad[:5])


def test_corenlp_backend_matches_ptb_and_keeps_alignment():
    caps = tokenize_data.separator_corpus(300, 99) + tokenize_data.context_corpus(200, 98)
    assert corenlp_tokenize(caps) == ptb_tokenize(caps)


def test_corenlp_backend_equals_pycocoevalcap_pipeline():
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    caps = ["A man riding a bike.", "I don't know (why)!", "the U.S.", "back in '90"]
    raw = corenlp_raw_lines(caps)
    expected = [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in raw]
    assert T.tokenize(caps, "corenlp") == expected == ptb_tokenize(caps)


def test_corenlp_leaves_nothing_in_site_packages():
    jar_dir = T.find_corenlp_jar().parent
    before = sorted(os.listdir(jar_dir))
    corenlp_tokenize(["a dog", "a cat"])
    assert sorted(os.listdir(jar_dir)) == before


def test_corenlp_line_count_mismatch_names_the_caption(monkeypatch):
    caps = ["a dog", "a cat", "one\x0btwo", "a bird"]
    monkeypatch.setattr(T, "ptb_line_counts", lambda texts: [1] * len(texts))  # a wrong prediction
    with pytest.raises(TokenizerError, match="caption 2"):
        corenlp_tokenize(caps)


def test_corenlp_without_java(monkeypatch):
    monkeypatch.setattr(T.shutil, "which", lambda name: None)
    with pytest.raises(TokenizerError, match="Java"):
        corenlp_tokenize(["a dog"])
