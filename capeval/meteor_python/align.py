"""Meteor 1.5's aligner and statistics (``edu.cmu.meteor.aligner.Aligner`` and its matchers,
``MeteorScorer.getMeteorStats``), behaviour for behaviour; docs/meteor_python.md lists each reproduced
quirk. Line 1 is the hypothesis ("test"), line 2 the reference; a match is stored at its reference
start, as in the jar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from ._java import java_hash
from .normalize import meteor_words
from .resources import HASH_MULTIPLIER, MeteorTables
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
    """The paraphrase entries whose phrase and paraphrase both occur in the corpus at hand: phrase
    (tuple of words) -> paraphrases (tuples) in file order, and the same as a trie over phrase words
    (the jar's transducer: a walk stops at the first word with no transition)."""

    entries: dict = field(default_factory=dict)
    trie: dict = field(default_factory=dict)  # word -> [children, paraphrases]: the transducer

    @classmethod
    def for_sentences(cls, tables: MeteorTables, sentences) -> ParaphraseIndex:
        """Keep the entries whose phrase and paraphrase both occur as n-grams of ``sentences`` (word
        lists): a few ten thousand of the 5.27 M. Sequences are compared by a 64-bit rolling hash of
        their token ids first (vectorized), then exactly by their words."""
        vocab_ids = _vocab_index(tables)
        offsets = tables.para_seq_offsets
        lengths = np.diff(offsets)
        corpus = _corpus_ngram_hashes(sentences, vocab_ids, int(lengths.max()) if len(lengths) else 0)
        ordered = tables.para_seq_hash_sorted
        first = np.searchsorted(ordered, corpus, side="left")
        last = np.searchsorted(ordered, corpus, side="right")
        usable = np.zeros(len(lengths), dtype=bool)
        order = tables.para_seq_hash_order
        single = (last - first) == 1
        usable[order[first[single]]] = True
        for k in np.flatnonzero((last - first) > 1).tolist():  # sequences sharing a hash: all of them
            usable[order[first[k] : last[k]]] = True
        phrase, para = tables.para_entry_phrase, tables.para_entry_para
        # A phrase of no words sits on the transducer's root, which the jar's walk never emits; an empty
        # paraphrase (none in the shipped table) occurs everywhere.
        keep = np.flatnonzero(usable[phrase] & (usable[para] | (lengths[para] == 0)) & (lengths[phrase] > 0))
        index = cls()
        vocab, tokens = tables.para_vocab, tables.para_seq_tokens
        decoded: dict[int, tuple] = {}

        def words_of(sid: int) -> tuple:
            seq = decoded.get(sid)
            if seq is None:
                seq = decoded[sid] = tuple(vocab[t] for t in tokens[offsets[sid] : offsets[sid + 1]].tolist())
            return seq

        # (A hash collision only keeps an entry that can never match: matching compares words.)
        for p_id, q_id in zip(phrase[keep].tolist(), para[keep].tolist()):
            index.entries.setdefault(words_of(p_id), []).append(words_of(q_id))
        for key, values in index.entries.items():
            node = [index.trie, None]
            for word in key:
                node = node[0].setdefault(word, [{}, ()])
            node[1] = values
        return index

    def paths(self, words: list[str], start: int):
        """``ParaphraseTransducer.getReferencePaths(words, start)``: (phrase length, paraphrase) pairs,
        shortest phrase first, each phrase's paraphrases in file order."""
        out = []
        children = self.trie
        for end in range(start, len(words)):
            node = children.get(words[end])
            if node is None:
                break
            children, paras = node
            length = end - start + 1
            out.extend((length, para) for para in paras)
        return out


def _corpus_ngram_hashes(sentences, vocab_ids: dict, max_length: int) -> np.ndarray:
    """The same hash for every n-gram (n <= max_length) of the sentences made only of table words."""
    ids = []
    for words in sentences:
        ids.extend(vocab_ids.get(w, -1) for w in words)
        ids.append(-1)  # sentence boundary
    arr = np.asarray(ids, dtype=np.int64)
    valid = arr >= 0
    tokens = np.where(valid, arr + 1, 0).astype(np.uint64)
    found = []
    hashes = np.zeros(len(arr), dtype=np.uint64)
    ok = np.ones(len(arr), dtype=bool)
    with np.errstate(over="ignore"):
        for n in range(1, max_length + 1):
            # n-grams starting at each position: extend the (n-1)-grams by the token at start + n - 1.
            width = len(arr) - n + 1
            if width <= 0:
                break
            hashes = hashes[:width] * HASH_MULTIPLIER + tokens[n - 1 : n - 1 + width]
            ok = ok[:width] & valid[n - 1 : n - 1 + width]
            found.append(hashes[ok])
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)


_VOCAB_INDEX: dict[int, dict] = {}


def _vocab_index(tables: MeteorTables) -> dict:
    index = _VOCAB_INDEX.get(id(tables))
    if index is None:
        index = _VOCAB_INDEX[id(tables)] = {w: i for i, w in enumerate(tables.para_vocab)}
    return index


class Sentence:
    """One side of an alignment with everything the matchers read, computed once per distinct text."""

    __slots__ = ("words", "hashes", "stem_hashes", "synsets", "function", "paths_by_first", "by_word", "_lookups")

    def __init__(self, words: list[str], infos: list[WordInfo], paraphrases: ParaphraseIndex):
        self.words = tuple(words)
        self.hashes = [x.hash for x in infos]
        self.stem_hashes = [x.stem_hash for x in infos]
        self.synsets = [x.synsets for x in infos]
        self.function = [x.function for x in infos]
        # Phrases of this sentence in the table, (rank, start, phrase length, paraphrase) with rank
        # the jar's order, grouped by the paraphrase's first word (None: an empty paraphrase).
        self.paths_by_first: dict[str | None, list[tuple]] = {}
        rank = 0
        for start in range(len(words)):
            for length, para in paraphrases.paths(words, start):
                self.paths_by_first.setdefault(para[0] if para else None, []).append((rank, start, length, para))
                rank += 1
        # Positions (ascending) of each word, to find paraphrase candidates by lookup.
        self.by_word: dict[str, list[int]] = {}
        for i, word in enumerate(words):
            self.by_word.setdefault(word, []).append(i)
        self._lookups = None

    def lookups(self) -> tuple[dict, dict]:
        """Positions (ascending) of each word hash and stem hash; built when the sentence is first a
        hypothesis (references are only looked up by word)."""
        if self._lookups is None:
            by_hash: dict[int, list[int]] = {}
            by_stem: dict[int, list[int]] = {}
            for i, (h, stem) in enumerate(zip(self.hashes, self.stem_hashes)):
                by_hash.setdefault(h, []).append(i)
                by_stem.setdefault(stem, []).append(i)
            self._lookups = (by_hash, by_stem)
        return self._lookups

    def paraphrase_hits(self, other: Sentence) -> list[tuple]:
        """(rank, start here, phrase length, start in ``other``, paraphrase length) for each of this
        sentence's phrases whose paraphrase occurs in ``other``, in the jar's order (phrase by phrase,
        then by position in ``other``)."""
        if not self.paths_by_first:
            return []
        hits = []
        words = other.words
        for first, positions in other.by_word.items():
            for rank, start, length, para in self.paths_by_first.get(first, ()):
                n = len(para)
                for i in positions:
                    if n == 1 or words[i : i + n] == para:
                        hits.append((rank, start, length, i, n))
        for rank, start, length, _ in self.paths_by_first.get(None, ()):
            hits.extend((rank, start, length, i, 0) for i in range(len(words)))
        hits.sort()
        return hits


class Aligner:
    """Scores hypothesis/reference texts as ``MeteorScorer`` does with ``-l en -norm``."""

    def __init__(self, tables: MeteorTables, paraphrases: ParaphraseIndex | None = None):
        self.tables = tables
        self.paraphrases = paraphrases or ParaphraseIndex()
        self.stemmer = JarStemmer(tables.stems)
        self._words: dict[str, list[str]] = {}
        self._info: dict[str, WordInfo] = {}
        self._sentences: dict[str, Sentence] = {}

    # -- text -> words -------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        words = self._words.get(text)
        if words is None:
            words = self._words[text] = meteor_words(text, self.tables.prefixes)
        return words

    def sentence(self, text: str) -> Sentence:
        sentence = self._sentences.get(text)
        if sentence is None:
            words = self.words(text)
            sentence = self._sentences[text] = Sentence(words, [self.info(w) for w in words], self.paraphrases)
        return sentence

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
    def statistics(self, test: Sentence, ref: Sentence) -> list[float]:
        """The 23 statistics of one hypothesis against one reference (``getMeteorStats(Alignment)``)."""
        n1, n2 = len(test.words), len(ref.words)
        h1, h2 = test.hashes, ref.hashes
        matches: list[list[Match]] = [[] for _ in range(n2)]
        cover1 = [0] * n1
        cover2 = [0] * n2

        def add_word(module, j, i):
            matches[j].append(Match(module, j, 1, i, 1))
            cover1[i] += 1
            cover2[j] += 1

        # Candidates in the jar's order: stage by stage, then by reference position, then by
        # hypothesis position (the lookups give positions in ascending order).
        by_hash, by_stem = test.lookups()
        hash_positions = by_hash.get
        for j in range(n2):
            for i in hash_positions(h2[j], ()):
                add_word(EXACT, j, i)
        # Identical hash sequences: the jar stops after exact matching.
        if h1 != h2:
            stem_positions = by_stem.get
            s2 = ref.stem_hashes
            for j in range(n2):
                hj = h2[j]
                for i in stem_positions(s2[j], ()):
                    if h1[i] != hj:
                        add_word(STEM, j, i)
            y1, y2 = test.synsets, ref.synsets
            for j in range(n2):
                yj, hj = y2[j], h2[j]
                if yj:
                    for i in range(n1):
                        if y1[i] and h1[i] != hj and not yj.isdisjoint(y1[i]):
                            add_word(SYNONYM, j, i)

            def add(start, length, match_start, match_length):
                matches[start].append(Match(PARAPHRASE, start, length, match_start, match_length))
                for k in range(match_start, match_start + match_length):
                    cover1[k] += 1
                for k in range(start, start + length):
                    cover2[k] += 1

            # Reference phrases whose paraphrase occurs in the hypothesis, then the other way round.
            for _, j, length, i, para_length in ref.paraphrase_hits(test):
                add(j, length, i, para_length)
            for _, i, length, j, para_length in test.paraphrase_hits(ref):
                add(j, para_length, i, length)

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
        f1, f2 = test.function, ref.function
        for m in final:
            if m is None:
                continue
            for k in range(m.match_start, m.match_start + m.match_length):
                if f1[k]:
                    function1[m.module] += 1
                else:
                    content1[m.module] += 1
            for k in range(m.start, m.start + m.length):
                if f2[k]:
                    function2[m.module] += 1
                else:
                    content2[m.module] += 1
        row = [float(n1), float(n2), float(sum(f1)), float(sum(f2))]
        for k in range(N_MODULES):
            row += [float(content1[k]), float(content2[k]), float(function1[k]), float(function2[k])]
        row += [float(_count_chunks(final)), float(sum(content1) + sum(function1)), float(sum(content2) + sum(function2))]
        return row


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


# A partial alignment: (-rank, chunks, distance, idx, last_match_end, used1, used2, chosen), where
# ``chosen`` is a linked list (match, rest) of the matches this path picked (fixed ones are shared).
# The first three fields are the sort key: higher rank, then fewer chunks, then smaller distance. The
# jar mutates its path objects; each mutation here makes a new tuple with the same values.
_ORDER = itemgetter(0, 1, 2)


def _resolve(matches, fixed, used1: int, used2: int):
    """``Aligner.resolve``: the beam search, left to right over reference positions.

    Reproduced as the jar runs it: list.sort is stable like Collections.sort; only the best
    ``BEAM_SIZE`` paths of a position are extended; and the distance of each newly picked match is
    added to the *parent* path (a slip in the jar), so the skip path and later siblings carry it.
    """
    n2 = len(matches)
    open_candidates = [bool(c) and fixed[j] is None for j, c in enumerate(matches)]
    if not any(open_candidates):
        return None  # nothing left to choose: the fixed matches are the alignment
    next_paths = [(0, 0, 0, 0, -1, used1, used2, None)]
    for current in range(n2):
        paths = next_paths
        next_paths = []
        append = next_paths.append
        if len(paths) > 1:
            paths.sort(key=_ORDER)
            del paths[BEAM_SIZE:]
        candidates = matches[current] if open_candidates[current] else ()
        for path in paths:
            neg_rank, chunks, distance, idx, last_end, u1, u2, chosen = path
            if u2 >> current & 1:
                if current < idx:
                    append(path)
                else:
                    m = fixed[idx]
                    if m is not None:
                        append((
                            neg_rank - m.rank_gain,
                            chunks + (last_end != -1 and m.match_start != last_end),
                            distance + m.distance,
                            m.start + m.length,
                            m.match_start + m.match_length,
                            u1,
                            u2,
                            chosen,
                        ))
                continue
            for m in candidates:
                if u2 & m.mask2 or u1 & m.mask1:
                    continue
                append((
                    neg_rank - m.rank_gain,
                    chunks + (last_end != -1 and m.match_start != last_end),
                    distance,
                    m.start + m.length,
                    m.match_start + m.match_length,
                    u1 | m.mask1,
                    u2 | m.mask2,
                    (m, chosen),
                ))
                distance += m.distance  # the parent's, not the new path's
            append((neg_rank, chunks + (last_end != -1), distance, idx + 1, -1, u1, u2, chosen))
        if not next_paths:
            next_paths.append(paths[0])
    # The last step closes each path's open chunk, then the best path wins.
    paths = next_paths
    if len(paths) > 1:
        paths.sort(key=_ORDER)
        del paths[BEAM_SIZE:]
        paths = [(p[0], p[1] + (p[4] != -1), *p[2:]) for p in paths]
        paths.sort(key=_ORDER)
    return paths[0][7]


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
