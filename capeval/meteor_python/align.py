"""Meteor 1.5's aligner and statistics (``edu.cmu.meteor.aligner.Aligner`` and its matchers,
``MeteorScorer.getMeteorStats``), behaviour for behaviour; docs/meteor_python.md lists each reproduced
quirk. Line 1 is the hypothesis ("test"), line 2 the reference; a match is stored at its reference
start, as in the jar.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._java import java_hash
from .normalize import meteor_words
from .resources import MeteorTables
from .stem import JarStemmer

BEAM_SIZE = 40
EXACT, STEM, SYNONYM, PARAPHRASE = range(4)
N_MODULES = 4
# The alignment search ranks partial alignments with weights 1 / 0.5 / 0.5 / 0.5 added to *int* fields
# (``matches1 += length * weight`` truncates the sum), so a one-word non-exact match adds 0.
_RANK_WEIGHTS = (1.0, 0.5, 0.5, 0.5)
_NO_SYNSETS: frozenset = frozenset()

# SYNONYM's morphological fallback (SynonymDictionary.morph): suffix -> replacement, tried in order.
_MORPH_RULES = (
    ("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
    ("ies", "y"), ("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
    ("ing", ""), ("er", ""), ("est", ""), ("er", "e"), ("est", "e"),
)


@dataclass(slots=True)
class WordInfo:
    """What the matchers need of one (normalized, lower-cased) word."""

    hash: int
    stem_hash: int
    synsets: frozenset
    function: bool


class Match:
    """One candidate match: reference words ``start:start+length`` with hypothesis words
    ``match_start:match_start+match_length``; ``rank_gain`` is its (truncated) weight in the search."""

    __slots__ = ("start", "length", "match_start", "match_length", "module", "rank_gain", "mask2", "mask1", "distance")

    def __init__(self, module: int, start: int, length: int, match_start: int, match_length: int):
        self.module = module
        self.start = start
        self.length = length
        self.match_start = match_start
        self.match_length = match_length
        w = _RANK_WEIGHTS[module]
        self.rank_gain = int(match_length * w) + int(length * w)
        self.mask2 = ((1 << length) - 1) << start
        self.mask1 = ((1 << match_length) - 1) << match_start
        self.distance = abs(start - match_start)


@dataclass
class ParaphraseIndex:
    """The paraphrase entries whose phrase and paraphrase use only words of the corpus at hand:
    phrase (tuple of words) -> paraphrases (tuples) in file order, and every prefix of a phrase (the
    transducer's states, so a lookup stops where the jar's walk stops)."""

    entries: dict = field(default_factory=dict)
    prefixes: set = field(default_factory=set)
    max_length: int = 0

    @classmethod
    def for_words(cls, tables: MeteorTables, words) -> ParaphraseIndex:
        vocab_ids = _vocab_index(tables)
        wanted = np.zeros(len(tables.para_vocab) + 1, dtype=np.int8)
        for w in words:
            tid = vocab_ids.get(w)
            if tid is not None:
                wanted[tid] = 1
        offsets = tables.para_seq_offsets
        lengths = np.diff(offsets)
        present = np.concatenate(([0], np.cumsum(wanted[tables.para_seq_tokens], dtype=np.int64)))
        usable = (present[offsets[1:]] - present[offsets[:-1]]) == lengths
        phrase, para = tables.para_entry_phrase, tables.para_entry_para
        # A phrase of no words sits on the transducer's root, which the jar's walk never emits.
        keep = np.flatnonzero(usable[phrase] & usable[para] & (lengths[phrase] > 0))
        index = cls()
        vocab, tokens = tables.para_vocab, tables.para_seq_tokens
        decoded: dict[int, tuple] = {}

        def words_of(sid: int) -> tuple:
            seq = decoded.get(sid)
            if seq is None:
                seq = decoded[sid] = tuple(vocab[t] for t in tokens[offsets[sid] : offsets[sid + 1]])
            return seq

        for e in keep.tolist():
            key = words_of(int(phrase[e]))
            index.entries.setdefault(key, []).append(words_of(int(para[e])))
        for key in index.entries:
            index.max_length = max(index.max_length, len(key))
            for n in range(1, len(key) + 1):
                index.prefixes.add(key[:n])
        return index

    def paths(self, words: list[str], start: int):
        """``ParaphraseTransducer.getReferencePaths(words, start)``: (phrase length, paraphrase) pairs,
        shortest phrase first, each phrase's paraphrases in file order."""
        out = []
        for end in range(start + 1, min(len(words), start + self.max_length) + 1):
            key = tuple(words[start:end])
            if key not in self.prefixes:
                break
            for para in self.entries.get(key, ()):
                out.append((end - start, para))
        return out


_VOCAB_INDEX: dict[int, dict] = {}


def _vocab_index(tables: MeteorTables) -> dict:
    index = _VOCAB_INDEX.get(id(tables))
    if index is None:
        index = _VOCAB_INDEX[id(tables)] = {w: i for i, w in enumerate(tables.para_vocab)}
    return index


class Aligner:
    """Scores hypothesis/reference word lists as ``MeteorScorer`` does with ``-l en -norm``."""

    def __init__(self, tables: MeteorTables, paraphrases: ParaphraseIndex | None = None):
        self.tables = tables
        self.paraphrases = paraphrases or ParaphraseIndex()
        self.stemmer = JarStemmer()
        self._words: dict[str, list[str]] = {}
        self._info: dict[str, WordInfo] = {}

    # -- text -> words -------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        words = self._words.get(text)
        if words is None:
            words = self._words[text] = meteor_words(text, self.tables.prefixes)
        return words

    def info(self, word: str) -> WordInfo:
        info = self._info.get(word)
        if info is None:
            info = self._info[word] = WordInfo(
                hash=java_hash(word),
                stem_hash=java_hash(self.stemmer.stem(word)),
                synsets=self._synsets(word),
                function=word in self.tables.function_words,  # words are lower-cased already
            )
        return info

    def _synsets(self, word: str) -> frozenset:
        """``getSynSets(word)`` united with ``getStemSynSets(word)``."""
        synsets = self.tables.synsets
        found = set(synsets.get(word, ()))
        bases = self.tables.exceptions.get(word)
        if bases is not None:
            for base in bases:
                found.update(synsets.get(base, ()))
        else:
            found.update(synsets.get(_morph(word, synsets), ()))
        return frozenset(found) if found else _NO_SYNSETS

    # -- one alignment -------------------------------------------------------------------------
    def statistics(self, test: list[str], ref: list[str]) -> list[float]:
        """The 23 statistics of one hypothesis against one reference (``getMeteorStats(Alignment)``)."""
        info = self.info
        t_info = [info(w) for w in test]
        r_info = [info(w) for w in ref]
        n1, n2 = len(test), len(ref)
        h1 = [x.hash for x in t_info]
        h2 = [x.hash for x in r_info]
        matches: list[list[Match]] = [[] for _ in range(n2)]
        cover1 = [0] * n1
        cover2 = [0] * n2

        def add(module, start, length, match_start, match_length):
            matches[start].append(Match(module, start, length, match_start, match_length))
            for k in range(match_start, match_start + match_length):
                cover1[k] += 1
            for k in range(start, start + length):
                cover2[k] += 1

        for j in range(n2):
            for i in range(n1):
                if h1[i] == h2[j]:
                    add(EXACT, j, 1, i, 1)
        # Identical hash sequences: the jar stops after exact matching.
        if h1 != h2:
            s1 = [x.stem_hash for x in t_info]
            s2 = [x.stem_hash for x in r_info]
            for j in range(n2):
                for i in range(n1):
                    if s1[i] == s2[j] and h1[i] != h2[j]:
                        add(STEM, j, 1, i, 1)
            y1 = [x.synsets for x in t_info]
            y2 = [x.synsets for x in r_info]
            for j in range(n2):
                if not y2[j]:
                    continue
                for i in range(n1):
                    if y1[i] and not y1[i].isdisjoint(y2[j]) and h1[i] != h2[j]:
                        add(SYNONYM, j, 1, i, 1)
            self._paraphrase_matches(test, ref, add)

        fixed: list[Match | None] = [None] * n2
        used1 = used2 = 0
        for j in range(n2):
            if len(matches[j]) == 1:
                m = matches[j][0]
                if all(cover2[j + k] == 1 for k in range(m.length)) and all(
                    cover1[m.match_start + k] == 1 for k in range(m.match_length)
                ):
                    fixed[j] = m
                    used2 |= m.mask2
                    used1 |= m.mask1
        chosen = _resolve(matches, fixed, used1, used2)
        final = list(fixed)
        while chosen is not None:
            m, chosen = chosen
            final[m.start] = m

        content1 = [0] * N_MODULES
        content2 = [0] * N_MODULES
        function1 = [0] * N_MODULES
        function2 = [0] * N_MODULES
        for m in final:
            if m is None:
                continue
            for k in range(m.match_start, m.match_start + m.match_length):
                if t_info[k].function:
                    function1[m.module] += 1
                else:
                    content1[m.module] += 1
            for k in range(m.start, m.start + m.length):
                if r_info[k].function:
                    function2[m.module] += 1
                else:
                    content2[m.module] += 1
        chunks = _count_chunks(final)
        row = [
            float(n1),
            float(n2),
            float(sum(x.function for x in t_info)),
            float(sum(x.function for x in r_info)),
        ]
        for k in range(N_MODULES):
            row += [float(content1[k]), float(content2[k]), float(function1[k]), float(function2[k])]
        row += [float(chunks), float(sum(content1) + sum(function1)), float(sum(content2) + sum(function2))]
        return row

    def _paraphrase_matches(self, test, ref, add) -> None:
        index = self.paraphrases
        if not index.entries:
            return
        n1, n2 = len(test), len(ref)
        # Reference phrases whose paraphrase occurs in the hypothesis...
        for j in range(n2):
            for length, para in index.paths(ref, j):
                p = len(para)
                for i in range(n1):
                    if i + p <= n1 and all(test[i + k] == para[k] for k in range(p)):
                        add(PARAPHRASE, j, length, i, p)
        # ...then hypothesis phrases whose paraphrase occurs in the reference.
        for i in range(n1):
            for length, para in index.paths(test, i):
                p = len(para)
                for j in range(n2):
                    if j + p <= n2 and all(ref[j + k] == para[k] for k in range(p)):
                        add(PARAPHRASE, j, p, i, length)


def _morph(word: str, synsets: dict) -> str:
    """``SynonymDictionary.morph``: a WordNet base form by suffix rules, "" when none is known."""
    if word.endswith("ss") or len(word) <= 2:
        return word
    suffix_ful = "ful" if word.endswith("ful") else ""
    for suffix, replacement in _MORPH_RULES:
        if word.endswith(suffix):
            base = word[: len(word) - len(suffix)] + replacement
            if base in synsets:
                return base + suffix_ful
    return ""


# A partial alignment: [rank, chunks, distance, idx, last_match_end, used1, used2, chosen], where
# ``chosen`` is a linked list (match, rest) of the matches this path picked (fixed ones are shared).
_RANK, _CHUNKS, _DISTANCE, _IDX, _LAST_END, _USED1, _USED2, _CHOSEN = range(8)


def _order(path):
    return (-path[_RANK], path[_CHUNKS], path[_DISTANCE])


def _resolve(matches, fixed, used1: int, used2: int):
    """``Aligner.resolve``: the beam search, left to right over reference positions.

    Reproduced as the jar runs it: list.sort is stable like Collections.sort; only the best
    ``BEAM_SIZE`` paths of a position are extended; and the distance of each newly picked match is
    added to the *parent* path (a slip in the jar), so the skip path and later siblings carry it.
    """
    n2 = len(matches)
    next_paths = [[0, 0, 0, 0, -1, used1, used2, None]]
    for current in range(n2 + 1):
        paths = next_paths
        next_paths = []
        paths.sort(key=_order)
        for path in paths[:BEAM_SIZE]:
            if current == n2:
                if path[_LAST_END] != -1:
                    path[_CHUNKS] += 1
                next_paths.append(path)
                continue
            if path[_USED2] >> current & 1:
                if current < path[_IDX]:
                    next_paths.append(path)
                else:
                    m = fixed[path[_IDX]]
                    if m is not None:
                        path[_RANK] += m.rank_gain
                        if path[_LAST_END] != -1 and m.match_start != path[_LAST_END]:
                            path[_CHUNKS] += 1
                        path[_IDX] = m.start + m.length
                        path[_LAST_END] = m.match_start + m.match_length
                        path[_DISTANCE] += m.distance
                        next_paths.append(path)
                continue
            for m in matches[current]:
                if path[_USED2] & m.mask2 or path[_USED1] & m.mask1:
                    continue
                new = path.copy()
                new[_USED2] |= m.mask2
                new[_USED1] |= m.mask1
                new[_CHOSEN] = (m, path[_CHOSEN])
                new[_RANK] += m.rank_gain
                if new[_LAST_END] != -1 and m.match_start != new[_LAST_END]:
                    new[_CHUNKS] += 1
                new[_IDX] = m.start + m.length
                new[_LAST_END] = m.match_start + m.match_length
                path[_DISTANCE] += m.distance
                next_paths.append(new)
            if path[_LAST_END] != -1:
                path[_CHUNKS] += 1
                path[_LAST_END] = -1
            path[_IDX] += 1
            next_paths.append(path)
        if not next_paths:
            next_paths.append(paths[0])
    next_paths.sort(key=_order)
    return next_paths[0][_CHOSEN]


def _count_chunks(final) -> int:
    """``Aligner.getCountAndChunks``: chunks of the final alignment (recounted, not the search's)."""
    chunks = 0
    idx = 0
    last_end = -1
    n = len(final)
    while idx < n:
        m = final[idx]
        if m is None:
            if last_end != -1:
                chunks += 1
                last_end = -1
            idx += 1
        else:
            if last_end != -1 and m.match_start != last_end:
                chunks += 1
            idx = m.start + m.length
            last_end = m.match_start + m.match_length
    if last_end != -1:
        chunks += 1
    return chunks
