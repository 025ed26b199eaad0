"""capeval.tokenize: the pure-Python PTB tokenizer against golden outputs of the CoreNLP 3.4.1 jar.

The fixtures (``tests/fixtures/tokenize_*.json.gz``) were written by ``make_tokenize_fixtures.py`` with the
jar as oracle, so these tests need neither Java nor pycocoevalcap.  Live differential tests against the
jar are in ``test_tokenize_jar.py``.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from capeval.errors import InvalidCaptionError
from capeval.tokenize import (
    PUNCTUATIONS,
    TOKENIZERS,
    ptb_line_counts,
    ptb_tokenize,
    tokenize,
    tokenize_lists,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import tokenize_data  # noqa: E402

T = importlib.import_module("capeval.tokenize")  # the package re-exports the function under this name


def _load(name):
    path = FIXTURES / name
    with gzip.open(path, "rb") as fh:
        return json.loads(fh.read())


@pytest.fixture(scope="module")
def fuzz_fixture():
    return _load("tokenize_fuzz.json.gz")


def _mismatches(got, expected, captions, limit=5):
    bad = [(i, captions[i], expected[i], got[i]) for i in range(len(expected)) if got[i] != expected[i]]
    return len(bad), "\n".join(f"[{i}] {c!r}\n  jar: {e!r}\n  ptb: {g!r}" for i, c, e, g in bad[:limit])


# --------------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------------


def test_signature_and_shape():
    out = tokenize(["A man riding a bike.", "Two dogs"])
    assert out == ["a man riding a bike", "two dogs"]
    assert tokenize(["A man riding a bike."], "ptb") == ["a man riding a bike"]
    assert TOKENIZERS == ("ptb", "corenlp", "none")
    assert tokenize([]) == []


def test_none_returns_captions_unchanged():
    caps = ["already tokenized text", "", "Keep  Case ."]
    assert tokenize(caps, "none") == caps
    assert tokenize(tuple(caps), tokenizer="none") == caps


def test_unknown_tokenizer():
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokenize(["x"], "spacy")


@pytest.mark.parametrize("tokenizer", ["ptb", "none", "corenlp"])
@pytest.mark.parametrize("bad", [None, 3, float("nan"), ["a"], b"bytes"])
def test_non_string_caption_names_its_index(tokenizer, bad):
    with pytest.raises(InvalidCaptionError, match="caption 2"):
        tokenize(["ok", "fine", bad, "x"], tokenizer)


def test_a_single_string_is_rejected():
    with pytest.raises(InvalidCaptionError, match="sequence of captions"):
        tokenize("a caption")


def test_str_subclasses_are_accepted():
    class S(str):
        pass

    assert tokenize([S("Hello World")]) == ["hello world"]


def test_tokenize_lists():
    assert tokenize_lists(["I don't know.", "", "..."]) == [["i", "do", "n't", "know"], [], []]
    # tokens may hold a no-break space (phone numbers, fractions): never split there
    assert tokenize_lists(["1 1/2 cups"]) == [["1\u00a01/2", "cups"]]


def test_cache_does_not_leak_between_documents():
    # the same caption gives different tokens depending on what follows it (see docs/tokenizer.md)
    assert tokenize(["grade A.", "The end"]) == ["grade a", "the end"]
    assert tokenize(["grade A.", "the end"]) == ["grade a.", "the end"]
    assert tokenize(["grade A.", "The end"]) == ["grade a", "the end"]


def test_punctuations_match_pycocoevalcap_source():
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None:
        pytest.skip("pycocoevalcap not installed")
    src = Path(list(spec.submodule_search_locations)[0], "tokenizer", "ptbtokenizer.py").read_text()
    ns: dict = {}
    start = src.index("PUNCTUATIONS = [")
    exec(src[start : src.index("]", start) + 1].replace("\\\n", ""), ns)  # noqa: S102
    assert set(ns["PUNCTUATIONS"]) == set(PUNCTUATIONS)


# --------------------------------------------------------------------------------------------------
# Behaviour, case by case (expected values produced by the jar)
# --------------------------------------------------------------------------------------------------

DOCUMENT = [
    ("A man riding a bike.", "a man riding a bike"),
    ("I don't know", "i do n't know"),
    ("cannot gonna wanna gotta lemme gimme", "can not gon na wan na got ta lem me gim me"),
    ('"Hello" he said', "hello he said"),
    ("(paren) [brack] {brace} <angle>", "-lrb- paren -rrb- -lsb- brack -rsb- -lcb- brace -rcb- <angle>"),
    ("It's 1,000 dollars, 3.5% and 1/2 at 9:30", "it 's 1,000 dollars 3.5 % and 1/2 at 9:30"),
    ("&amp; &lt; &quot;x&quot;", "& < x"),
    ("U.S. Dr. Smith", "u.s. dr. smith"),
    ("a -- b — c … d ...", "a b c d"),
    ("café 😀 end", "café end"),
    ("a\x85b", "a b"),
    ("ΟΔΟΣ-LSB- ΑΣ", "οδοσ-lsb ας"),
    ("The 'TWAS 'tis y'all", "the 't was 't is y' all"),
    ("e-mail me@x.com or see www.x.com", "e-mail me@x.com or see www.x.com"),
    ("£3 €5 ¢ ½ ⅓ ⅕", "# 3 $ 5 cents 1/2 1/3 ⅕"),
    ("Mr. Smith's dog", "mr. smith 's dog"),
    ("#tag @user :) ;-)", "#tag @user :-rrb- ;--rrb-"),
    ("1-800-555-1234 (555) 123-4567 1 1/2", "1-800-555-1234 -lrb-555-rrb-\u00a0123-4567 1\u00a01/2"),
    ("<b>bold</b> <a href='x'>", "<b> bold </b> <a\u00a0href='x'>"),
    ("İstanbul ſeq.", "i\u0307stanbul ſeq."),
]


def test_document_of_special_cases():
    caps = [c for c, _ in DOCUMENT]
    assert tokenize(caps) == [e for _, e in DOCUMENT]


@pytest.mark.parametrize(
    "doc, expected",
    [
        # a one-letter acronym keeps its period unless the next caption starts with one of the words of
        # PTBLexer's sentence-start list ("The", "It", "He", ... case-sensitive)
        (["grade A.", "The end"], ["grade a", "the end"]),
        (["grade A.", "the end"], ["grade a.", "the end"]),
        (["grade A.", "", "  It is"], ["grade a", "", "it is"]),
        # fig., No., ca., pp., op., art. keep their period only before a number
        (["see fig.", "3 dogs"], ["see fig.", "3 dogs"]),
        (["see fig.", "dogs"], ["see fig", "dogs"]),
        # the last caption of a call ends the file: trailing context that needs a character fails there
        (["back in '90"], ["back in 90"]),
        (["back in '90", "x"], ["back in '90", "x"]),
        (["x etc."], ["x etc."]),
        (["Inc.", "The"], ["inc.", "the"]),
    ],
)
def test_context_across_captions(doc, expected):
    assert tokenize(doc) == expected


@pytest.mark.parametrize(
    "doc, expected, lines",
    [
        (["a\x0bb", "c"], ["a b", "c"], [2, 1]),
        (["a\r", "b"], ["a", "b"], [1, 1]),  # "\r" + the joining "\n" is one line break
        (["a\rb\u2028c\u2029d\x0ce", "f"], ["a b c d e", "f"], [5, 1]),
        (["x\x0b"], ["x"], [2]),
        (["a\x85b"], ["a b"], [1]),  # U+0085 is an ellipsis for 3.4.1, not a line break
        (["<!a\x0bb> c", "x"], ["<!a\x0bb> c", "x"], [1, 1]),  # inside a token a separator does not break
    ],
)
def test_line_separators_keep_captions_whole(doc, expected, lines):
    assert tokenize(doc) == expected
    assert ptb_line_counts(doc) == lines


def test_newline_is_a_space_like_in_pycocoevalcap():
    assert tokenize(["a dog\non a\nbench", "x"]) == ["a dog on a bench", "x"]


def test_lone_surrogates_are_dropped():
    assert tokenize(["a \ud83d dog"]) == ["a dog"]


# --------------------------------------------------------------------------------------------------
# Golden fixtures
# --------------------------------------------------------------------------------------------------


def test_fuzz_document(fuzz_fixture):
    part = fuzz_fixture["fuzz"]
    assert len(part["captions"]) >= 20000
    got = ptb_tokenize(part["captions"])
    n, detail = _mismatches(got, part["expected"], part["captions"])
    assert n == 0, f"{n} of {len(got)} fuzz captions differ from the jar:\n{detail}"


def test_fuzz_corpus_is_reproducible(fuzz_fixture):
    part = fuzz_fixture["fuzz"]
    assert tokenize_data.fuzz_corpus(200, part["seed"]) == part["captions"][:200]


def test_context_document(fuzz_fixture):
    part = fuzz_fixture["context"]
    got = ptb_tokenize(part["captions"])
    n, detail = _mismatches(got, part["expected"], part["captions"])
    assert n == 0, f"{n} context captions differ from the jar:\n{detail}"


def test_single_caption_documents(fuzz_fixture):
    part = fuzz_fixture["eof"]
    got = [ptb_tokenize([c])[0] for c in part["captions"]]
    n, detail = _mismatches(got, part["expected"], part["captions"])
    assert n == 0, f"{n} captions differ at the end of the file:\n{detail}"


def test_separators_with_sentinels(fuzz_fixture):
    part = fuzz_fixture["separators"]
    doc = []
    for c in part["captions"]:
        doc += [c, fuzz_fixture["sentinel"]]
    got = ptb_tokenize(doc)[0::2]
    n, detail = _mismatches(got, part["expected"], part["captions"])
    assert n == 0, f"{n} captions with line separators differ:\n{detail}"
    assert ptb_line_counts(doc)[0::2] == part["jar_lines"]


@pytest.fixture(scope="module")
def shared_fixture():
    if not tokenize_data.shared_available():
        pytest.skip(f"shared data not found at {tokenize_data.SHARED}")
    path = FIXTURES / "tokenize_shared.json.gz"
    if not path.is_file():
        pytest.skip("tokenize_shared.json.gz missing (run tests/fixtures/make_tokenize_fixtures.py)")
    return _load(path.name), tokenize_data.shared_sets()


@pytest.mark.parametrize(
    "name",
    ["coco_subset4800", "coco_fakecap_results", "coco_cocoapi_fakecap_results",
     "coco_subset4800_student_results_dups", "nice_val", "nice_hints", "nlgeval_hyp"],
)
def test_shared_real_captions(shared_fixture, name):
    fixture, sets = shared_fixture
    if name not in sets or name not in fixture["sets"]:
        pytest.skip(f"{name} not available")
    caps, expected = sets[name], fixture["sets"][name]
    if tokenize_data.digest(caps) != expected["digest"]:
        pytest.skip(f"{name} differs from the data the fixture was made from; regenerate the fixture")
    got = ptb_tokenize(caps)
    n, detail = _mismatches(got, expected["expected"], caps)
    assert n == 0, f"{n} of {len(caps)} real captions differ from the jar:\n{detail}"


def test_shared_sets_are_about_fifty_thousand_captions(shared_fixture):
    fixture, _ = shared_fixture
    assert sum(s["n"] for s in fixture["sets"].values()) >= 50000


# --------------------------------------------------------------------------------------------------
# The character table is the jar's
# --------------------------------------------------------------------------------------------------


def test_character_table_is_current():
    if importlib.util.find_spec("pycocoevalcap") is None:
        pytest.skip("pycocoevalcap not installed (the table is read from its jar)")
    spec = importlib.util.spec_from_file_location("tokenize_make_tables", FIXTURES / "tokenize_make_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table = (Path(T.__file__).parent / "_ptb_tables.py").read_text(encoding="utf-8")
    assert mod.build(T.find_corenlp_jar()) == table
