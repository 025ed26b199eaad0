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
    segment_starts,
)
from .tokenize import TOKENIZERS, tokenize


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
        self._segments: dict[int, NgramSegments] = {}
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
        seg = self.segments(n)
        # a segment's first reference entry: the segment's first entry, or its second after a hypothesis
        first_ref = seg.first + seg.is_hyp[seg.first]
        last = np.append(seg.first[1:], len(seg.seg_id))
        has_ref = first_ref < last
        self._doc_freq[n] = np.bincount(grams.gram[first_ref[has_ref]], minlength=grams.n_grams).astype(np.float64)
        return self._doc_freq[n]

    def segments(self, n: int) -> NgramSegments:
        """The (n-gram, item) segments of ``ngrams(n)`` (CIDEr's pairing of hypothesis and reference entries)."""
        if n not in self._segments:
            grams = self.ngrams(n)
            small = np.int32 if len(grams.caption) < 2**31 else np.int64
            item = self.caption_item.astype(small)[grams.caption]
            start = segment_starts(grams.gram, item)
            seg_id = np.cumsum(start, dtype=small)
            seg_id -= 1
            self._segments[n] = NgramSegments(
                item=item,
                is_hyp=self.caption_is_hyp[grams.caption],
                first=np.flatnonzero(start).astype(small),
                seg_id=seg_id,
            )
        return self._segments[n]


@dataclass
class NgramSegments:
    """Entries of one n-gram within one item form a segment: the hypothesis' entry first, if any."""

    item: np.ndarray  # (E,) item of each entry
    is_hyp: np.ndarray  # (E,) entry belongs to the hypothesis
    first: np.ndarray  # (S,) index of each segment's first entry
    seg_id: np.ndarray  # (E,) segment of each entry


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
