"""ROUGE-L exactly as pycocoevalcap 1.2's ``Rouge`` (beta 1.2, best precision and best recall taken
over the references independently, tokens from ``str.split(" ")``).

The longest common subsequence of every (hypothesis, reference) pair is computed with the
bit-parallel algorithm of Allison-Dix / Hyyrö: the hypothesis' word positions become bits of a
uint64, and each reference word updates the state of *all* pairs at once with a few numpy ops.
Hypotheses longer than 64 tokens (rare) fall back to the classic dynamic programme.
"""

from __future__ import annotations

import numpy as np

from .._corpus import ScoringCorpus
from .._ngrams import SortedKeys, segment_starts
from .base import MeanMetric, Options

BETA = 1.2
_WORD_BITS = 64
_REF_BLOCK = 1 << 13  # references per block of mask lookups


def _lcs_dynamic(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common subsequence, one row at a time (for long hypotheses)."""
    prev = np.zeros(len(b) + 1, dtype=np.int64)
    for x in a:
        match = np.concatenate(([0], prev[:-1] + 1))
        cur = np.where(np.concatenate(([False], b == x)), match, 0)
        cur = np.maximum.accumulate(np.maximum(cur, prev))
        prev = cur
    return int(prev[-1])


def _token_positions(offsets: np.ndarray, captions: np.ndarray):
    """Flat word positions of the given captions, the index of their caption in ``captions``,
    and their offset inside the caption."""
    lengths = offsets[captions + 1] - offsets[captions]
    owner = np.repeat(np.arange(len(captions), dtype=np.int64), lengths)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return offsets[captions][owner] + within, owner, within


def _reference_masks(corpus, tok, mask_keys, masks, ref_tok_start, n_tokens) -> np.ndarray:
    """For every reference token, the mask of its word in its item's hypothesis (a word absent from
    it finds -1, which reads the zero mask appended last); looked up in blocks of references."""
    mask_index = SortedKeys(mask_keys, build=n_tokens >= 4096)  # its set-up's temporaries come and go first
    tok_mask = np.empty(n_tokens, dtype=np.uint64)
    masks = np.append(masks, np.uint64(0))
    n_words = max(len(tok.words), 1)
    for lo in range(0, len(ref_tok_start), _REF_BLOCK):
        block = slice(lo, lo + _REF_BLOCK)
        pos, owner, _ = _token_positions(tok.offsets, corpus.ref_caption[block])
        query = corpus.ref_item[block][owner] * n_words
        query += tok.word_ids[pos]
        start = int(ref_tok_start[lo])
        tok_mask[start : start + len(query)] = masks[mask_index.find(query)]
    return tok_mask


def lcs_lengths(corpus: ScoringCorpus) -> np.ndarray:
    """LCS length of each item's hypothesis with each of its references, shape (R,)."""
    tok = corpus.rouge_tokens
    lengths = tok.lengths
    hyp_len = lengths[corpus.hyp_caption]
    ref_len = lengths[corpus.ref_caption]
    n_words = max(len(tok.words), 1)
    short = hyp_len <= _WORD_BITS  # items whose hypothesis fits in one machine word

    # match masks: for (item, word), the bits of the hypothesis positions holding that word
    hyp_pos, hyp_owner, hyp_offset = _token_positions(tok.offsets, corpus.hyp_caption[short])
    bit = np.left_shift(np.uint64(1), hyp_offset.astype(np.uint64))
    del hyp_offset
    key = np.flatnonzero(short)[hyp_owner]  # the item, then its (item, word) key
    del hyp_owner
    key *= n_words
    key += tok.word_ids[hyp_pos]
    del hyp_pos
    order = np.argsort(key, kind="stable")
    key, bit = key[order], bit[order]
    del order
    first = np.flatnonzero(segment_starts(key))
    mask_keys = key[first]
    masks = np.bitwise_or.reduceat(bit, first) if len(first) else np.zeros(0, np.uint64)
    del bit, key, first

    ref_tok_start = np.cumsum(ref_len) - ref_len  # start of each reference in tok_mask
    tok_mask = _reference_masks(corpus, tok, mask_keys, masks, ref_tok_start, int(ref_len.sum()))
    del mask_keys, masks

    # bit-parallel LCS over all pairs; references sorted by length so column j touches only longer ones
    pair_short = short[corpus.ref_item]
    refs = np.flatnonzero(pair_short)
    refs = refs[np.argsort(-ref_len[refs], kind="stable")]
    state = np.full(len(refs), np.uint64(2**64 - 1), dtype=np.uint64)
    sorted_len = ref_len[refs]
    for j in range(int(sorted_len[0]) if len(refs) else 0):
        active = int(np.searchsorted(-sorted_len, -j, side="left"))  # refs longer than j
        m = tok_mask[ref_tok_start[refs[:active]] + j]
        s = state[:active]
        u = s & m
        state[:active] = (s + u) | (s - u)
    m_len = hyp_len[corpus.ref_item[refs]].astype(np.uint64)
    low = np.where(m_len >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(m_len, 63)) - np.uint64(1))
    lcs = np.zeros(len(ref_len), dtype=np.int64)
    lcs[refs] = m_len.astype(np.int64) - np.bitwise_count(state & low).astype(np.int64)

    for r in np.flatnonzero(~pair_short):  # long hypotheses: classic dynamic programme
        c_h = corpus.hyp_caption[corpus.ref_item[r]]
        c_r = corpus.ref_caption[r]
        lcs[r] = _lcs_dynamic(tok.word_ids[tok.offsets[c_h] : tok.offsets[c_h + 1]], tok.word_ids[tok.offsets[c_r] : tok.offsets[c_r + 1]])
    return lcs


def rouge_l_scores(corpus: ScoringCorpus, beta: float = BETA) -> np.ndarray:
    """Per-item ROUGE-L, shape (N,); the corpus score is their mean."""
    tok = corpus.rouge_tokens
    lcs = lcs_lengths(corpus).astype(np.float64)
    hyp_len = tok.lengths[corpus.hyp_caption].astype(np.float64)
    ref_len = tok.lengths[corpus.ref_caption].astype(np.float64)
    prec = np.maximum.reduceat(lcs / hyp_len[corpus.ref_item], corpus.ref_start[:-1])
    rec = np.maximum.reduceat(lcs / ref_len, corpus.ref_start[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        score = ((1 + beta**2) * prec * rec) / (rec + beta**2 * prec)
    return np.where((prec != 0) & (rec != 0), score, 0.0)


class RougeL(MeanMetric):
    """ROUGE-L (beta 1.2), the mean of per-item scores."""

    name = "rouge_l"
    aliases = ("rouge", "rougel")
    key = "ROUGE_L"
    default = True
    display = {"ROUGE_L": "ROUGE-L"}
    report_rank = 40
    coco = ("Rouge", {})

    def item_scores(self, corpus, state, options: Options) -> np.ndarray:
        return rouge_l_scores(corpus)

    def signature(self, options: Options, state=None) -> dict:
        return {"beta": BETA}


ROUGE_L = RougeL()
