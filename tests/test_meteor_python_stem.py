"""The jar's English stemmer reproduced from nltk: on every WordNet and paraphrase-table word, against a
recorded digest of the jar's own output (no Java) and live against its ``englishStemmer`` class (JDK)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import capeval.meteor_python as MP
from capeval.meteor_python.stem import JarStemmer

FIXTURES = Path(__file__).parent / "fixtures"
REASON = MP.unavailable_reason()
needs_tables = pytest.mark.skipif(REASON is not None, reason=f"pycocoevalcap's Meteor data: {REASON}")


def fixture():
    with gzip.open(FIXTURES / "meteor_python_stems.json.gz", "rt", encoding="utf-8") as fh:
        return json.load(fh)


def vocabulary(tables) -> list[str]:
    words = set(tables.synsets._row) | set(tables.exceptions) | set(tables.para_vocab)
    words |= {b for bases in tables.exceptions.values() for b in bases}
    return sorted(words)


def digest(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def test_known_differences_from_nltk_by_hand():
    stem = JarStemmer().compute
    # nltk gives "realize"/"rotate"/"poetize": Snowball's R2 is a position, so Step 5 drops the "e".
    assert stem("realization") == "realiz"
    assert stem("rotationally") == "rotat"
    assert stem("poetizer") == "poetiz"
    assert stem("communization") == "communiz"
    # ...but a final "e" left after Step 5 removed the word's own second "e" stays.
    assert stem("absentee") == "absente"
    assert stem("agreed") == "agre"
    assert stem("running") == "run"
    assert stem("generalization") == "general"
    # The jar neither lower-cases nor folds U+201B; nltk does both.
    assert stem("Running") == "Run"
    assert stem("\u201brunning") == "\u201brun"


@needs_tables
def test_every_dictionary_word_against_the_recorded_jar_output():
    fx = fixture()
    tables = MP.load_tables(progress=False)
    words = vocabulary(tables)
    assert (len(words), digest(words)) == (fx["count"], fx["words_sha256"])
    stemmer = JarStemmer()  # computed afresh (the cache's stems come from the same code)
    stems = [stemmer.compute(w) for w in words]
    for word, jar_stem in fx["nltk_differs"].items():
        assert stemmer.compute(word) == jar_stem, word
    assert len(fx["nltk_differs"]) == 18  # 16 WordNet words, 7 paraphrase words, 5 in both
    assert digest(f"{w}\t{s}" for w, s in zip(words, stems)) == fx["pairs_sha256"]
    assert all(tables.stems[w] == s for w, s in zip(words, stems))


@needs_tables
@pytest.mark.java
@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="needs a JDK (javac)")
def test_every_dictionary_word_against_the_jar_stemmer_live(tmp_path):
    tables = MP.load_tables(progress=False)
    words = vocabulary(tables)
    source = FIXTURES / "meteor_python_JarStems.java"
    subprocess.run(["javac", "-cp", str(tables.jar), "-d", str(tmp_path), str(source)], check=True)
    done = subprocess.run(
        ["java", "-cp", f"{tables.jar}:{tmp_path}", "JarStems"],
        input=("\n".join(words) + "\n").encode("utf-8"),
        capture_output=True,
        check=True,
    )
    jar_stems = done.stdout.decode("utf-8").split("\n")[:-1]
    stemmer = JarStemmer()
    mismatches = [(w, j, stemmer.compute(w)) for w, j in zip(words, jar_stems) if stemmer.compute(w) != j]
    assert len(jar_stems) == len(words)
    assert mismatches == []
    assert digest(f"{w}\t{s}" for w, s in zip(words, jar_stems)) == fixture()["pairs_sha256"]
