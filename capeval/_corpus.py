"""The layout every vectorized metric works on: one hypothesis and its references per item.

Captions are stored item by item, hypothesis first: ``[hyp_0, ref_0_0, ref_0_1, ..., hyp_1, ref_1_0, ...]``.
Within any n-gram group sorted by caption, the entries of one item are therefore contiguous and the
hypothesis (if present) comes first.

This is the corpus layer: :func:`prepare` turns validated input dicts into a :class:`Prepared`
(ids, tokenized text, the encoded :class:`ScoringCorpus`), and the corpus counts what several
metrics and :class:`~capeval.df.DocumentFrequencies` share (n-grams, document frequencies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain

import numpy as np

from ._inputs import align_ids, check_choice, predictions, reference_lists
from ._ngrams import (
    OTHER_WHITESPACE,
    NgramCounts,
    TokenizedCorpus,
    count_ngrams,
    encode_captions,
    encode_words,
)
from .tokenize import TOKENIZERS, tokenize

_CHUNK = 1 << 20  # entries per block where a full-size temporary is not needed


def _single_spaced(captions: list[str]) -> bool:
    """True when every caption is words separated by single spaces (then split(" ") == split(),
    but for "" which split(" ") turns into [""]). A few C-level scans of the joined text."""
    joined = "\x00".join(captions)
    if "  " in joined or " \x00" in joined or "\x00 " in joined or joined.startswith(" ") or joined.endswith(" "):
        return False
    return not any(ch in joined for ch in OTHER_WHITESPACE)


class ScoringCorpus:
    """Tokenized hypotheses and references of N items, encoded once and shared by all metrics."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]], ids: Sequence | None = None):
        if len(hypotheses) != len(references):
            raise ValueError("one hypothesis per item is required")
        self.ids = None if ids is None else list(ids)  # the items' ids, for messages that name one
        self.hypotheses = list(hypotheses)
        self.references = references if isinstance(references, list) else list(references)
        self.n_items = len(self.hypotheses)
        self.n_refs = np.fromiter(map(len, self.references), dtype=np.int64, count=self.n_items)
        per_item = self.n_refs + 1
        self.caption_item = np.repeat(np.arange(self.n_items, dtype=np.int64), per_item)
        item_start = np.zeros(self.n_items + 1, dtype=np.int64)
        np.cumsum(per_item, out=item_start[1:])
        self.hyp_caption = item_start[:-1]
        self.caption_is_hyp = np.zeros(len(self.caption_item), dtype=bool)
        self.caption_is_hyp[self.hyp_caption] = True
        self.ref_caption = np.flatnonzero(~self.caption_is_hyp)
        self.ref_item = self.caption_item[self.ref_caption]
        self.ref_start = np.zeros(self.n_items + 1, dtype=np.int64)  # refs of item i: ref_start[i]:ref_start[i+1]
        np.cumsum(self.n_refs, out=self.ref_start[1:])
        self._ngrams: dict[int, NgramCounts] = {}
        self._pairs: dict[int, HypothesisPairs] = {}
        self._doc_freq: dict[int, np.ndarray] = {}

    @cached_property
    def captions(self) -> list[str]:
        out: list[str] = []
        for hyp, refs in zip(self.hypotheses, self.references):
            out.append(hyp)
            out.extend(refs)
        return out

    @cached_property
    def tokens(self) -> TokenizedCorpus:
        """Words as BLEU and CIDEr see them: ``str.split()``."""
        return encode_captions(self.captions)

    @cached_property
    def rouge_tokens(self) -> TokenizedCorpus:
        """Words as pycocoevalcap's ROUGE-L sees them: ``str.split(" ")`` (so "" is one empty token)."""
        tok = self.tokens
        single_spaced = tok.single_spaced if tok.single_spaced is not None else _single_spaced(self.captions)
        if not single_spaced:
            return encode_words([c.split(" ") for c in self.captions])
        # single-spaced text: split(" ") equals split() except that "" becomes [""]
        lengths = tok.lengths
        empty = lengths == 0
        if not empty.any():
            return tok
        words = tok.words + [""]
        new_lengths = np.maximum(lengths, 1)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(new_lengths, out=offsets[1:])
        ids = np.full(int(offsets[-1]), len(words) - 1, dtype=np.int64)
        keep = np.repeat(~empty, new_lengths)
        ids[keep] = tok.word_ids
        return TokenizedCorpus(ids, offsets, words)

    def ngrams(self, n: int) -> NgramCounts:
        if n not in self._ngrams:
            self._ngrams[n] = count_ngrams(self.tokens, n)
        return self._ngrams[n]

    def document_frequencies(self, n: int) -> np.ndarray:
        """For each n-gram id of ``ngrams(n)``, the number of items whose references contain it
        (counted once per corpus: CIDEr and CIDEr-D share it)."""
        if n in self._doc_freq:
            return self._doc_freq[n]
        grams = self.ngrams(n)
        # an item's references hold an n-gram once per (n-gram, item) run of entries that holds a
        # reference entry; its first reference entry starts the run or follows the hypothesis' entry
        counts = np.zeros(grams.n_grams, dtype=np.int64)
        size = len(grams.gram)
        for lo in range(0, size, _CHUNK):  # in blocks: no entry-sized temporaries
            hi = min(lo + _CHUNK, size)
            prev = lo - 1 if lo else 0  # the entry before the block, to compare its first entry with
            gram, caption = grams.gram[prev:hi], grams.caption[prev:hi]
            is_hyp = self.caption_is_hyp[caption]
            item = self.caption_item[caption]
            first_ref = np.ones(hi - prev, dtype=bool)  # starts a run, or follows the hypothesis' entry
            first_ref[1:] = (gram[1:] != gram[:-1]) | (item[1:] != item[:-1]) | is_hyp[:-1]
            first_ref &= ~is_hyp
            if lo:
                gram, first_ref = gram[1:], first_ref[1:]
            counts += np.bincount(gram[first_ref], minlength=grams.n_grams)
        self._doc_freq[n] = counts.astype(np.float64)
        return self._doc_freq[n]

    def hypothesis_pairs(self, n: int) -> HypothesisPairs:
        """Each hypothesis entry of ``ngrams(n)`` and the reference entries it meets: those of the same
        n-gram in its item's references, which are the entries right after it (entries are sorted by
        n-gram, then caption, and an item's references are the captions right after its hypothesis).
        What BLEU clips with and CIDEr takes products of."""
        if n not in self._pairs:
            grams = self.ngrams(n)
            size = len(grams.gram)
            hyp_entry = np.flatnonzero(self.caption_is_hyp[grams.caption])
            run = np.zeros(len(hyp_entry), dtype=np.int64)  # reference entries following each hypothesis entry
            max_refs = int(self.n_refs.max(initial=0))
            for lo in range(0, len(hyp_entry), _CHUNK // 4):  # in blocks: small temporaries
                block = hyp_entry[lo : lo + _CHUNK // 4]
                hyp_caption = grams.caption[block]
                hyp_gram = grams.gram[block]
                refs_end = hyp_caption + 1 + self.n_refs[self.caption_item[hyp_caption]]  # one past its item's last reference
                open_ = np.arange(len(block))  # hypothesis entries whose run may go on
                for ahead in range(1, max_refs + 1):
                    at = block[open_] + ahead
                    inside = at < size
                    open_, at = open_[inside], at[inside]
                    open_ = open_[(grams.gram[at] == hyp_gram[open_]) & (grams.caption[at] < refs_end[open_])]
                    if not len(open_):
                        break
                    run[lo + open_] = ahead
            has_run = np.flatnonzero(run)
            run = run[has_run]
            owner = np.repeat(has_run, run)
            # pair p of hypothesis entry j (the i-th of its run, from 0): entry hyp_entry[j] + 1 + i, where
            # i = p - (pairs before j's run)
            ref_entry = np.repeat(hyp_entry[has_run] + 1 - (np.cumsum(run) - run), run)
            ref_entry += np.arange(len(ref_entry))
            small = np.int32 if len(grams.gram) < 2**31 else np.int64  # half the memory while cached
            self._pairs[n] = HypothesisPairs(hyp_entry=hyp_entry.astype(small), ref_entry=ref_entry.astype(small), owner=owner.astype(small))
        return self._pairs[n]


@dataclass
class HypothesisPairs:
    """The (hypothesis entry, reference entry) pairs of one n-gram within one item, in the order of
    the reference entries (ascending)."""

    hyp_entry: np.ndarray  # (H,) index of each hypothesis entry (ascending)
    ref_entry: np.ndarray  # (P,) index of each reference entry sharing its n-gram with its hypothesis
    owner: np.ndarray  # (P,) the pair's hypothesis entry, as an index into ``hyp_entry`` (ascending)


@dataclass
class Prepared:
    """Validated, aligned and tokenized input: what every metric scores."""

    ids: list
    references: list[list[str]]  # tokenized
    predictions: list[str]  # tokenized
    tokenizer: str
    corpus: ScoringCorpus = field(init=False)

    def __post_init__(self):
        self.corpus = ScoringCorpus(self.predictions, self.references, self.ids)

    @property
    def nrefs(self) -> str:
        """The number of references per item for signatures: ``5``, or a range ``1-2``."""
        counts = self.corpus.n_refs
        lo, hi = int(counts.min()), int(counts.max())
        return str(lo) if lo == hi else f"{lo}-{hi}"


def tokenize_reference_lists(ref_lists: list[list[str]], tokenizer: str, following: Sequence[str] = ()) -> list[list[str]]:
    """Tokenize every reference in one call (the PTB lexer looks one caption ahead, as the jar does);
    ``following``: the captions after these in a larger input (context only: not returned)."""
    if tokenizer == "none":
        return ref_lists
    flat = tokenize(list(chain.from_iterable(ref_lists)) + list(following), tokenizer)
    ends = np.cumsum([len(r) for r in ref_lists]).tolist()
    return [flat[a:b] for a, b in zip([0] + ends[:-1], ends)]


def prepare(refs: Mapping, preds: Mapping, tokenizer: str = "ptb", strict: bool = True) -> Prepared:
    """Validate and align ids, tokenize every caption, encode for the metrics."""
    check_choice(tokenizer, TOKENIZERS, "tokenizer")
    ids = align_ids(refs, preds, strict)
    ref_lists = reference_lists(refs, ids)
    pred_list = predictions(preds, ids)
    # two calls, references then predictions, each in id order, as pycocoevalcap does: the PTB
    # lexer looks one caption ahead, so a caption's tokens can depend on the caption after it
    tok_refs = tokenize_reference_lists(ref_lists, tokenizer)
    tok_preds = pred_list if tokenizer == "none" else tokenize(pred_list, tokenizer)
    return Prepared(ids, tok_refs, tok_preds, tokenizer)
