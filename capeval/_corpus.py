"""The layout every vectorized metric works on: one hypothesis and its references per item.

Captions are stored item by item, hypothesis first: ``[hyp_0, ref_0_0, ref_0_1, ..., hyp_1, ref_1_0, ...]``.
Within any n-gram group sorted by caption, the entries of one item are therefore contiguous and the
hypothesis (if present) comes first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from ._ngrams import NgramCounts, TokenizedCorpus, count_ngrams, encode_words

# whitespace other than single interior spaces (captions joined with NUL): split(" ") != split()
_UNCLEAN = re.compile(r"[^\S ]|  |^ | $| \x00|\x00 ")


class ScoringCorpus:
    """Tokenized hypotheses and references of N items, encoded once and shared by all metrics."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]):
        if len(hypotheses) != len(references):
            raise ValueError("one hypothesis per item is required")
        self.hypotheses = list(hypotheses)
        self.references = [list(r) for r in references]
        self.n_items = len(self.hypotheses)
        self.n_refs = np.fromiter((len(r) for r in self.references), dtype=np.int64, count=self.n_items)
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
        return encode_words([c.split() for c in self.captions])

    @cached_property
    def rouge_tokens(self) -> TokenizedCorpus:
        """Words as pycocoevalcap's ROUGE-L sees them: ``str.split(" ")`` (so "" is one empty token)."""
        if _UNCLEAN.search("\x00".join(self.captions)):
            return encode_words([c.split(" ") for c in self.captions])
        # single-spaced text: split(" ") equals split() except that "" becomes [""]
        tok = self.tokens
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
