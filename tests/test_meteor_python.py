"""capeval.meteor_python: METEOR 1.5's statistics in Python, checked against the jar's recorded outputs
(no Java needed) and against values worked out by hand on a small stand-in table."""

from __future__ import annotations

import gzip
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import capeval.meteor_python as MP
from capeval.errors import EmptyReferencesError, InputError, InvalidCaptionError, MeteorUnavailableError
from capeval.meteor import meteor_score_from_stats, meteor_scores_from_stats
from capeval.meteor_python import resources
from capeval.meteor_python._java import java_hash, java_tokens, java_trim
from capeval.meteor_python.normalize import normalize_line, parse_nonbreaking_prefixes

FIXTURES = Path(__file__).parent / "fixtures"
REASON = MP.unavailable_reason()
needs_tables = pytest.mark.skipif(REASON is not None, reason=f"pycocoevalcap's Meteor data: {REASON}")
FULL = os.environ.get("CAPEVAL_PARITY") == "1"


def load_fixture(name):
    with gzip.open(FIXTURES / name, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def parse_lines(lines):
    return np.array([[float(x) for x in line.split()] for line in lines], dtype=np.float64)


# -- Java semantics -------------------------------------------------------------------------------
def test_java_hash_matches_string_hashcode():
    assert java_hash("hello") == 99162322  # "hello".hashCode()
    assert java_hash("Aa") == java_hash("BB") == 2112
    assert java_hash("aan") == java_hash("ac0")  # the collision the edge fixture's first case uses
    assert java_hash("\U0001f600") == 0xD83D * 31 + 0xDE00  # UTF-16 code units, not the code point
    assert java_hash("polygenelubricants") == -2**31  # wraps to a signed int
    assert java_hash("") == 0


def test_java_tokenizer_and_trim():
    assert java_tokens(" a\tb\n\nc\fd\re ") == ["a", "b", "c", "d", "e"]
    assert java_tokens("a\x0bb\u00a0c") == ["a\x0bb\u00a0c"]  # vertical tab and NBSP are not delimiters
    assert java_trim("\x00\x1f a b \x01") == "a b"
    assert java_trim("\u00a0a\u00a0") == "\u00a0a\u00a0"


def test_normalizer_by_hand():
    prefixes = parse_nonbreaking_prefixes("Mr\nNo #NUMERIC_ONLY#\n# a comment\n\n")
    assert prefixes == {"Mr": 1, "No": 2}
    assert normalize_line("a dog, a cat.", prefixes) == "a dog , a cat ."
    assert normalize_line("Mr. Smith", prefixes) == "Mr. Smith"
    assert normalize_line("U.S. flag", prefixes) == "US flag"  # dotted initialism, dots dropped
    assert normalize_line("No. 5", prefixes) == "No. 5"  # numeric-only prefix before a number
    assert normalize_line("No. Five", prefixes) == "No . Five"
    assert normalize_line("Zz. next", prefixes) == "Zz. next"  # any word before a lower-case word
    assert normalize_line("1,000 a,b", prefixes) == "1,000 a , b"
    assert normalize_line("don't 1990's", prefixes) == "don 't 1990 's"
    assert normalize_line("wait... what", prefixes) == "wait ... what"
    assert normalize_line("well-known \u201cgood\u201d", prefixes) == 'well known " good "'
    # U+2013 is spaced out first (not a word character), then folded to "-": no longer between words.
    assert normalize_line("a\u2013b -- c", prefixes) == "a - b - c"


# -- against the jar's recorded outputs -----------------------------------------------------------
@needs_tables
@pytest.mark.parametrize("name", ["edge", "fuzz"])
def test_cases_equal_the_jar(name):
    """Hand-picked edge cases and 400 seeded fuzz segments (every path of the aligner)."""
    fx = load_fixture("meteor_python_cases.json.gz")["sets"][name]
    stats = MP.segment_statistics(fx["refs"], fx["hyps"], progress=False)
    np.testing.assert_array_equal(stats, parse_lines(fx["stats"]))
    np.testing.assert_allclose(meteor_scores_from_stats(stats), fx["scores"], rtol=0, atol=1e-12)
    assert abs(meteor_score_from_stats(stats) - fx["corpus"]) <= 1e-12


@needs_tables
def test_hash_collision_is_an_exact_match():
    """"aan" and "ac0" have the same String.hashCode, so the jar aligns them exactly."""
    stats = MP.segment_statistics([["ac0 a dog"]], ["a dog aan"], progress=False)[0]
    assert stats[4] == 2 and stats[6] == 1  # exact content (dog, aan) and function ("a") matches
    assert stats[20] == 2  # ac0->aan, then a dog: two chunks
    fx = load_fixture("meteor_python_cases.json.gz")["sets"]["edge"]
    assert fx["hyps"][0] == "a dog aan"
    np.testing.assert_array_equal(stats, parse_lines(fx["stats"][:1])[0])


@needs_tables
@pytest.mark.parametrize("name", ["coco_loo", "nice_val"])
def test_wrapper_fixtures(name):
    """The jar's statistics recorded for the wrapper: COCO leave-one-out and NICE val, PTB-tokenized
    (the first 600 segments; all 4,800/5,000 with CAPEVAL_PARITY=1)."""
    fx = load_fixture(f"meteor_{name}.json.gz")
    n = len(fx["preds"]) if FULL else 600
    stats = MP.segment_statistics(fx["refs"][:n], fx["preds"][:n], progress=False, workers=0 if FULL else 1)
    np.testing.assert_array_equal(stats, parse_lines(fx["stats"][:n]))
    np.testing.assert_allclose(meteor_scores_from_stats(stats), fx["scores"][:n], rtol=0, atol=1e-12)
    if FULL:
        assert abs(meteor_score_from_stats(stats) - fx["corpus"]) <= 1e-12


@needs_tables
def test_nlgeval_published_score():
    datasets = pytest.importorskip("benchmarks.datasets")
    folder = datasets.SHARED / "nlgeval"
    if not folder.is_dir():
        pytest.skip(f"shared data not found under {datasets.SHARED}")
    ref1, ref2, hyp = ((folder / f).read_text(encoding="utf-8").splitlines() for f in ("ref1.txt", "ref2.txt", "hyp.txt"))
    stats = MP.segment_statistics([list(p) for p in zip(ref1, ref2)], hyp, progress=False)
    assert round(meteor_score_from_stats(stats), 6) == 0.295797  # nlg-eval's README


@needs_tables
def test_workers_do_not_change_results(monkeypatch):
    fx = load_fixture("meteor_python_cases.json.gz")["sets"]["fuzz"]
    monkeypatch.setattr(MP, "MIN_SEGMENTS_PER_WORKER", 50)
    one = MP.segment_statistics(fx["refs"], fx["hyps"], progress=False, workers=1)
    three = MP.segment_statistics(fx["refs"], fx["hyps"], progress=False, workers=3)
    np.testing.assert_array_equal(one, three)
    np.testing.assert_array_equal(one, parse_lines(fx["stats"]))


@needs_tables
def test_repeated_segments_are_scored_once_with_the_same_numbers(monkeypatch):
    fx = load_fixture("meteor_python_cases.json.gz")["sets"]["fuzz"]
    order = [5, 1, 5, 2, 1, 5, 0]
    refs, hyps = [fx["refs"][k] for k in order], [fx["hyps"][k] for k in order]
    jar = parse_lines([fx["stats"][k] for k in order])
    calls = []
    real = MP._segment_statistics
    monkeypatch.setattr(MP, "_segment_statistics", lambda r, h, *a: calls.append(len(h)) or real(r, h, *a))
    np.testing.assert_array_equal(MP.segment_statistics(refs, hyps, progress=False), jar)
    assert calls == [4]  # 4 distinct segments
    monkeypatch.setattr(MP, "REUSE_IDENTICAL_SEGMENTS", False)
    np.testing.assert_array_equal(MP.segment_statistics(refs, hyps, progress=False), jar)
    assert calls == [4, 7]


@needs_tables
def test_fuzzer_is_seeded():
    tables = MP.load_tables(progress=False)
    from capeval.meteor_python.fuzz import SegmentFuzzer

    assert SegmentFuzzer(tables, 7).segments(30) == SegmentFuzzer(tables, 7).segments(30)
    assert SegmentFuzzer(tables, 7).segments(30) != SegmentFuzzer(tables, 8).segments(30)


# -- bad input ------------------------------------------------------------------------------------
@needs_tables
def test_bad_input_is_named():
    with pytest.raises(InvalidCaptionError, match="segment 1"):
        MP.segment_statistics([["a"], ["b ||| c"]], ["a", "b"], progress=False)
    with pytest.raises(InvalidCaptionError, match="hypothesis of segment 0"):
        MP.segment_statistics([["a"]], ["a\nb"], progress=False)
    with pytest.raises(InputError, match="2 reference lists but 1 hypotheses"):
        MP.segment_statistics([["a"], ["b"]], ["a"], progress=False)
    with pytest.raises(EmptyReferencesError, match="segment 0"):
        MP.segment_statistics([[]], ["a"], progress=False)
    with pytest.raises(InvalidCaptionError, match="hypothesis 0"):
        MP.segment_statistics([["a"]], [None], progress=False)
    with pytest.raises(InvalidCaptionError, match="reference 1 of segment 0"):
        MP.segment_statistics([["a", 3]], ["a"], progress=False)
    assert MP.segment_statistics([], [], progress=False).shape == (0, 23)


def test_unavailable_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(resources.ENV_JAR, str(tmp_path / "nowhere" / "meteor-1.5.jar"))
    reason = MP.unavailable_reason()
    assert reason is not None and "pip install pycocoevalcap" in reason
    with pytest.raises(MeteorUnavailableError, match="pip install pycocoevalcap"):
        MP.segment_statistics([["a"]], ["a"], progress=False)
    jar = make_stand_in_jar(tmp_path / "nopara")
    (jar.parent / "data" / "paraphrase-en.gz").unlink()
    assert "no paraphrase table" in MP.unavailable_reason(jar)


# -- a stand-in table: the cache, and paraphrase matches worked out by hand ------------------------
def make_stand_in_jar(root: Path, paraphrases: bytes = b"0.5\nqa qb qc\nza zb\n") -> Path:
    """A meteor-1.5.jar holding tiny English tables, with data/paraphrase-en.gz beside it."""
    root.mkdir(parents=True, exist_ok=True)
    jar = root / "meteor-1.5.jar"
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("function/english.words", "the\na\n")
        z.writestr("nonbreaking/english.prefixes", "Mr\n")
        z.writestr("synonym/english.synsets", "car\n1\nautomobile\n1 2\n")
        z.writestr("synonym/english.exceptions", "go\nwent gone\n")
    (root / "data").mkdir(exist_ok=True)
    with gzip.open(root / "data" / "paraphrase-en.gz", "wb") as fh:
        fh.write(paraphrases)
    return jar


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    monkeypatch.setenv(resources.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(resources, "_LOADED", {})
    return make_stand_in_jar(tmp_path / "jar")


def test_paraphrase_matches_by_hand(stand_in):
    # Reference phrase "qa qb qc" -> hypothesis "za zb": x, the paraphrase and y are each the only
    # candidate for their words, so all are fixed; one chunk.
    row = MP.segment_statistics([["x qa qb qc y"]], ["x za zb y"], progress=False, jar=stand_in)[0]
    expected = [4, 5, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 1, 4, 5]
    assert row.tolist() == expected
    # The other direction: the hypothesis holds the phrase (the transducer's second pass).
    row = MP.segment_statistics([["x za zb y"]], ["x qa qb qc y"], progress=False, jar=stand_in)[0]
    assert row.tolist() == [5, 4, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 2, 0, 0, 1, 5, 4]


def test_synonyms_and_irregular_forms_by_hand(stand_in):
    # car/automobile share synset 1; "went" is an irregular form of "go" (exceptions file) but "go"
    # has no synsets here, so it matches nothing; "the" is a function word on both sides.
    row = MP.segment_statistics([["the car went"]], ["the automobile went"], progress=False, jar=stand_in)[0]
    assert row[:4].tolist() == [3, 3, 1, 1]
    assert row[4:8].tolist() == [1, 1, 1, 1]  # exact: went (content), the (function)
    assert row[12:16].tolist() == [1, 1, 0, 0]  # synonym: automobile/car
    assert row[20:].tolist() == [1, 3, 3]


def test_cache_is_built_once_and_rebuilt_when_the_table_changes(stand_in, tmp_path):
    tables = MP.load_tables(stand_in, progress=False)
    first = tables.cache_file
    assert (first / "manifest.json").is_file() and first.parent.parent == tmp_path / "cache"
    assert len(tables.para_entry_phrase) == 1
    stamp = (first / "manifest.json").stat().st_mtime_ns
    resources._LOADED.clear()
    assert MP.load_tables(stand_in, progress=False).cache_file == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp  # loaded, not rebuilt
    # A changed table (new content, so a new hash): a new cache file with the new entries.
    make_stand_in_jar(stand_in.parent, b"0.5\nqa qb qc\nza zb\n0.25\nza zb\nqa qb qc\n")
    resources._LOADED.clear()
    again = MP.load_tables(stand_in, progress=False)
    assert again.cache_file != first and len(again.para_entry_phrase) == 2
    # A damaged cache file is rebuilt in place.
    (again.cache_file / "manifest.json").write_bytes(b"not a cache")
    resources._LOADED.clear()
    rebuilt = MP.load_tables(stand_in, progress=False)
    assert rebuilt.cache_file == again.cache_file and len(rebuilt.para_entry_phrase) == 2
    assert not list(again.cache_file.parent.glob("*.tmp")) and not list(again.cache_file.parent.glob("*.damaged"))


def test_concurrent_builders_agree(stand_in):
    results, errors = [], []

    def build():
        try:
            results.append(resources._load_or_build(resources.find_jar(stand_in))[0])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for key in other:
            np.testing.assert_array_equal(other[key], results[0][key])
    target = resources.cache_path(resources.find_jar(stand_in))
    np.testing.assert_array_equal(resources._read_cache(target)["entry_phrase"], results[0]["entry_phrase"])
    assert not list(target.parent.glob("*.tmp"))
