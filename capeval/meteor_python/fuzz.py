"""A seeded generator of METEOR segments built to reach every path of the aligner, for the
differential tests against the jar (tests/test_meteor_python_fuzz.py).

Each segment mixes: everyday caption words; inflected and irregular forms (the stemmer and WordNet's
exception list); WordNet synonyms; multi-word paraphrases from the table, in both directions;
repeated words; punctuation, numbers, quotes, dashes and contractions under ``-norm``; non-breaking
prefixes ("Mr.", "No. 5", "U.S."); non-ASCII text (accents, Cyrillic, Greek sigma, CJK, emoji, dotted
I); upper case; empty, one-word and long captions.
"""

from __future__ import annotations

import random

from capeval.meteor import clean_caption

from .resources import MeteorTables

BASIC = (
    "a an the man woman person dog cat bird horse people child children boy girl group of on in at with "
    "and is are sitting standing walking running riding playing holding eating looking near next to "
    "top street table field water grass snow beach car bus train plane bike bicycle red blue white "
    "black green small large big two three some it its his her their there this that by from under "
    "over while front side road building kitchen room bed couch pizza plate food cake sandwich ball"
).split()
SUFFIXES = ("s", "es", "ed", "ing", "er", "est", "ly", "ness", "ization", "izer", "ational", "ful", "ment", "ation")
PUNCTUATION = (
    ",", ".", "!", "?", ";", ":", "...", "..", "(", ")", "-", "--", "\u2013", "\u2014", "/", "&", "$", "%",
    '"', "''", "``", "\u201c", "\u201d", "\u2018", "\u2019", "'", "`", "#", "@", "*", "+", "=", "[", "]",
)
NUMBERS = ("1", "2", "10", "1,000", "3.5", "1990's", "2x4", "10.14", "5pm", "1st", "0", "100%", "$5", "12-year-old")
CONTRACTIONS = ("don't", "it's", "man's", "dogs'", "isn't", "can't", "o'clock", "'s", "y'all", "rock'n'roll", "l'eau")
PREFIXED = (
    "Mr. Smith", "Mrs. Jones", "Dr. Who", "No. 5", "No. five", "Art. 3", "pp. 10", "U.S. flag", "e.g. this",
    "i.e. that", "A. Lincoln", "St. Louis", "etc. and", "Inc. made", "vs. them", "end.", "Jr. is", "z. z",
)
UNICODE = (
    "caf\u00e9", "na\u00efve", "ni\u00f1o", "\u00fcber", "stra\u00dfe", "\u0161koda", "\u0414\u043e\u043c",
    "\u041c\u041e\u0421\u041a\u0412\u0410", "\u039f\u0394\u039f\u03a3", "\u03a3\u039f\u03a6\u0399\u0391",
    "\u6771\u4eac", "\U0001f600", "\u0130stanbul", "\uff21\uff22", "\u00c5ngstr\u00f6m", "x\u00a0y",
    "a\u2009b", "\u00bfqu\u00e9?", "\u00a9", "\u00bd", "\u0131", "\u01c5", "\u1e9e", "\u2126",
)


class SegmentFuzzer:
    """``segments(n)``: n (references, hypothesis) pairs, cleaned as the wrapper sends them."""

    def __init__(self, tables: MeteorTables, seed: int = 0):
        self.rng = random.Random(seed)
        self.tables = tables
        self._synonym_groups: list[list[str]] | None = None
        exceptions = sorted(tables.exceptions.items())
        self.irregular = [(base, form) for form, bases in exceptions for base in bases]

    # -- vocabularies --------------------------------------------------------------------------
    def _synonyms(self) -> list[list[str]]:
        if self._synonym_groups is None:
            by_id: dict[int, list[str]] = {}
            rng = random.Random(12345)
            words = [w for w in self.tables.synsets._row if "_" not in w]
            for w in rng.sample(words, min(20000, len(words))):
                for i in self.tables.synsets.get(w, ()):
                    by_id.setdefault(i, []).append(w)
            self._synonym_groups = [g for _, g in sorted(by_id.items()) if len(g) > 1]
        return self._synonym_groups

    def _paraphrase(self) -> tuple[list[str], list[str]]:
        t = self.tables
        e = self.rng.randrange(len(t.para_entry_phrase))

        def words(sid):
            return [t.para_vocab[k] for k in t.para_seq_tokens[t.para_seq_offsets[sid] : t.para_seq_offsets[sid + 1]]]

        return words(int(t.para_entry_phrase[e])), words(int(t.para_entry_para[e]))

    def _inflect(self, word: str) -> str:
        rng = self.rng
        if rng.random() < 0.5 and self.irregular:
            base, form = rng.choice(self.irregular)
            return rng.choice((base, form))
        return word + rng.choice(SUFFIXES)

    # -- captions ------------------------------------------------------------------------------
    def _pieces(self, length: int) -> list[str]:
        rng = self.rng
        out: list[str] = []
        while len(out) < length:
            r = rng.random()
            if r < 0.45:
                out.append(rng.choice(BASIC))
            elif r < 0.55:
                out.append(self._inflect(rng.choice(BASIC)))
            elif r < 0.63:
                out.append(rng.choice(rng.choice(self._synonyms())))
            elif r < 0.70:
                out.extend(rng.choice(self._paraphrase()))
            elif r < 0.76:
                out.append(rng.choice(PUNCTUATION))
            elif r < 0.81:
                out.append(rng.choice(NUMBERS))
            elif r < 0.85:
                out.append(rng.choice(CONTRACTIONS))
            elif r < 0.89:
                out.append(rng.choice(PREFIXED))
            elif r < 0.93:
                out.append(rng.choice(UNICODE))
            elif out:
                out.append(rng.choice(out))  # a repeated word
        return out

    def _render(self, pieces: list[str]) -> str:
        rng = self.rng
        text = []
        for p in pieces:
            if rng.random() < 0.08:
                p = p.upper() if rng.random() < 0.5 else p.capitalize()
            # punctuation sometimes glued to the previous word, as in raw captions
            if text and p in PUNCTUATION and rng.random() < 0.5:
                text[-1] += p
            else:
                text.append(p)
        return " ".join(text)

    def _caption(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.03:
            return ""
        if r < 0.08:
            return self._render(self._pieces(1))
        if r < 0.12:
            return self._render(self._pieces(rng.randint(35, 70)))
        return self._render(self._pieces(rng.randint(3, 16)))

    def _related(self, ref: str) -> str:
        """A hypothesis built from a reference: words shuffled a little, some replaced or dropped,
        paraphrases swapped in, so the aligner has many competing candidates."""
        rng = self.rng
        words = ref.split()
        out = []
        for w in words:
            r = rng.random()
            if r < 0.12:
                continue
            if r < 0.25:
                out.extend(self._pieces(1))
            elif r < 0.32:
                out.append(self._inflect(w.lower()))
            else:
                out.append(w)
        if len(out) > 3 and rng.random() < 0.4:
            i, j = sorted(rng.sample(range(len(out)), 2))
            out[i:j] = reversed(out[i:j])
        if rng.random() < 0.3:
            phrase, para = self._paraphrase()
            out[rng.randint(0, len(out)) : 0] = para if rng.random() < 0.5 else phrase
        return " ".join(out)

    def segments(self, n: int) -> tuple[list[list[str]], list[str]]:
        rng = self.rng
        refs_out, hyps_out = [], []
        for _ in range(n):
            refs = [self._caption() for _ in range(rng.randint(1, 5))]
            if not any(refs):
                refs[0] = self._render(self._pieces(3))
            hyp = self._related(rng.choice([r for r in refs if r])) if rng.random() < 0.7 else self._caption()
            refs_out.append([clean_caption(r) for r in refs])
            hyps_out.append(clean_caption(hyp))
        return refs_out, hyps_out
