"""The jar's English stemmer (``org.tartarus.snowball.ext.englishStemmer``, an older Snowball Porter2)
from nltk's ``SnowballStemmer("english")`` plus the corrections where the two differ.

Two differences are known and corrected here:

* nltk keeps its R1/R2 regions as suffix strings and trims them as suffixes are replaced; when a
  Step 2/3 replacement ("ization" -> "ize", "ational" -> "ate", ...) straddles the R2 boundary its R2
  comes out empty and Step 5 keeps a final "e" that Snowball, which keeps R2 as a position in
  the word, deletes: the jar stems "realization" to "realiz" and "rotationally" to "rotat", nltk to
  "realize" and "rotate". The correction applies Step 5's R2 rule with the position.
* nltk lower-cases the word and folds the apostrophes U+2018/2019/201B to "'"; the jar does neither
  (Meteor lower-cases before stemming, so this only matters for characters that Java leaves alone and
  Python changes). Such characters are hidden from nltk behind private-use placeholders, which the
  Porter2 rules, like the jar's, treat as consonants.

tests/test_meteor_python_stem.py proves the result equal to the jar's class on every word of WordNet
(the synonym and exception files) and of the paraphrase table.
"""

from __future__ import annotations

_VOWELS = frozenset("aeiouy")
_R1_PREFIXES = ("gener", "commun", "arsen")
# Returned unchanged or from nltk's exception table before any region is computed.
_EXCEPTIONAL = frozenset(
    "skis skies dying lying tying idly gently ugly early only singly sky news howe atlas cosmos bias andes".split()
)
_NLTK_FOLDED = frozenset("\u2018\u2019\u201b")
_PLACEHOLDER_BASE = 0xF0000  # Supplementary Private Use Area-A


def _region2_start(word: str) -> int:
    """Snowball's p2 for a word after the prelude (initial apostrophe already dropped; consonant y -> Y)."""
    chars = list(word)
    for i, c in enumerate(chars):
        if c == "y" and (i == 0 or chars[i - 1] in _VOWELS):
            chars[i] = "Y"
    n = len(chars)

    def after_vowel_consonant(start: int) -> int:
        for i in range(start + 1, n):
            if chars[i] not in _VOWELS and chars[i - 1] in _VOWELS:
                return i + 1
        return n

    for prefix in _R1_PREFIXES:
        if word.startswith(prefix):
            p1 = len(prefix)
            break
    else:
        p1 = after_vowel_consonant(0)
    # R2 is R1's own R1: the search starts at p1 (a vowel at p1 - 1 does not count).
    return after_vowel_consonant(p1)


class JarStemmer:
    """``stem(word)`` as Meteor 1.5's ``SnowballStemmerWrapper(englishStemmer)`` returns it.

    ``known``: stems computed before (the cache holds those of every WordNet and paraphrase-table
    word), so nltk, slow to import, is only loaded for other words. ``new_stems`` collects those.
    """

    def __init__(self, known: dict[str, str] | None = None):
        self._nltk = None
        self.known = known if known is not None else {}
        self.new_stems: dict[str, str] = {}

    def stem(self, word: str) -> str:
        stem = self.known.get(word)
        if stem is None:
            stem = self.new_stems.get(word)
            if stem is None:
                stem = self.new_stems[word] = self.compute(word)
        return stem

    def compute(self, word: str) -> str:
        if self._nltk is None:
            from nltk.stem.snowball import SnowballStemmer

            self._nltk = SnowballStemmer("english")
        hidden: dict[str, str] = {}
        if not word.isascii() or word.lower() != word:
            masked = []
            for c in word:
                if c in _NLTK_FOLDED or c.lower() != c:
                    c = hidden.setdefault(c, chr(_PLACEHOLDER_BASE + len(hidden)))
                masked.append(c)
            word = "".join(masked)
        stem = self._nltk.stem(word)
        if len(word) > 2 and word not in _EXCEPTIONAL:
            stem = _apply_step5_by_position(word, stem)
        if hidden:
            restore = {v: k for k, v in hidden.items()}
            stem = "".join(restore.get(c, c) for c in stem)
        return stem


def _apply_step5_by_position(word: str, stem: str) -> str:
    """Delete a final "e" at or beyond p2 that nltk's Step 5 kept (only a replacement can leave one)."""
    if not stem.endswith("e"):
        return stem
    if word.startswith("'"):
        word = word[1:]
    last = len(stem) - 1
    # Step 5 deletes one letter: a final "e" left after it deleted the word's own second "e"
    # ("absentee" -> "absente", "agreed" -> "agre") is right.
    if word.startswith(stem + "e"):
        return stem
    if last >= _region2_start(word):
        return stem[:-1]
    return stem
