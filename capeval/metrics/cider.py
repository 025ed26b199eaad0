"""CIDEr-D and CIDEr, vectorized, with the numbers of pycocoevalcap 1.2 and vrama91/cider.

* **CIDEr-D** is what pycocoevalcap reports under the name "CIDEr": tf-idf n-gram vectors (n = 1..4),
  the hypothesis' weights clipped by the reference's (``min(hyp, ref) * ref``), a Gaussian length
  penalty (sigma 6) on the difference of the *bigram counts* (coco's "length"), the mean over n,
  divided by the number of references, times 10.
* **CIDEr** is the original metric of vrama91/cider's ``Cider``: plain cosine similarity, no clipping,
  no length penalty (still x10).

Document frequencies come from the references being scored (``df=None``, as in pycocoevalcap:
``ref_len = log(#items)``), or from a precomputed :class:`DocumentFrequencies` built once from a
reference corpus, which is what one image, one batch, or a self-critical reward needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._corpus import ScoringCorpus
from ..df import DocumentFrequencies
from ..errors import OptionError
from .base import SIGMA, MeanMetric, Options

__all__ = ["SIGMA", "CIDEr", "CIDErD", "CorpusFrequencies", "cider_scores", "cider_from_pairs", "idf_weights"]


# -- the formula, shared by the corpus scorer and capeval.reward.CiderDReward ---------------------
def idf_weights(doc_freq: np.ndarray, ref_len: float) -> np.ndarray:
    """tf-idf weights of n-grams from their document frequencies: ``ref_len - log(max(1, df))``."""
    return ref_len - np.log(np.maximum(1.0, doc_freq))


def clipped_products(hyp_value: np.ndarray, ref_value: np.ndarray, defended: bool) -> np.ndarray:
    """Dot-product terms of matching n-grams: CIDEr-D clips the hypothesis' weight by the reference's."""
    product = np.minimum(hyp_value, ref_value) if defended else hyp_value.copy()
    product *= ref_value
    return product


def bigram_lengths(lengths: np.ndarray, n: int) -> np.ndarray:
    """coco's "length" of a caption: its number of bigrams (its counts2vec counts n-grams of index 1)."""
    return np.maximum(lengths - 1, 0) if n >= 2 else np.zeros(len(lengths), np.int64)


def cider_from_pairs(
    dot: np.ndarray,
    norm_hyp: np.ndarray,
    norm_ref: np.ndarray,
    length_delta: np.ndarray,
    group_start: np.ndarray,
    n_refs: np.ndarray,
    sigma: float,
    defended: bool,
) -> np.ndarray:
    """CIDEr(-D) per hypothesis from its (hypothesis, reference) pairs.

    ``dot``, ``norm_hyp``, ``norm_ref``: (P, n) per pair and order; ``length_delta``: (P,) bigram-length
    differences; pairs of hypothesis i are rows ``group_start[i]:group_start[i + 1]`` (``n_refs[i]`` of
    them). The cosine per order, times the Gaussian length penalty for CIDEr-D, averaged over orders,
    summed over references, divided by their number, times 10."""
    # the cosine dot / (norm_hyp * norm_ref) where both norms are non-zero, else the dot itself; in place
    either_zero = (norm_hyp == 0) | (norm_ref == 0)
    sim = norm_hyp * norm_ref
    sim[either_zero] = 1.0
    np.divide(dot, sim, out=sim)
    sim[either_zero] = dot[either_zero]
    del either_zero
    if defended:
        delta = length_delta.astype(np.float64)
        sim *= np.power(np.e, -(delta**2) / (2 * sigma**2))[:, None]
    if not len(sim):
        return np.zeros(len(n_refs))
    per_item = np.add.reduceat(sim, group_start, axis=0)  # (N, n): sum over references
    return per_item.mean(axis=1) / n_refs * 10.0


# -- the corpus scorer ----------------------------------------------------------------------------
@dataclass
class CorpusFrequencies:
    """Document frequencies of the references being scored (pycocoevalcap's default), per n-gram id
    of one :class:`ScoringCorpus`: ``ref_len = log(#items)``."""

    corpus: ScoringCorpus
    doc_freq: np.ndarray
    ref_len: float


def fit_frequencies(corpus: ScoringCorpus, df: DocumentFrequencies | None, n: int):
    """The frequency state CIDEr scores with: ``df`` itself, or the corpus' own frequencies."""
    if df is not None:
        return df
    return CorpusFrequencies(corpus, corpus.document_frequencies(n), float(np.log(float(corpus.n_items))))


def cider_scores(
    corpus: ScoringCorpus,
    df: DocumentFrequencies | CorpusFrequencies | None = None,
    n: int = 4,
    sigma: float = SIGMA,
    defended: bool = True,
) -> np.ndarray:
    """Per-item CIDEr-D (``defended=True``) or CIDEr scores, shape (N,); the corpus score is their mean."""
    grams = corpus.ngrams(n)
    state = fit_frequencies(corpus, None, n) if df is None else df
    if isinstance(state, CorpusFrequencies):
        if state.corpus is not corpus:
            raise OptionError("corpus frequencies fitted on another corpus: fit on this one, or pass a DocumentFrequencies")
        doc_freq = state.doc_freq
    else:
        doc_freq = state.lookup(grams.gram_words(corpus.tokens, np.arange(grams.n_grams)), corpus.tokens.words)
    weight = idf_weights(doc_freq, state.ref_len)
    del doc_freq

    def values(entries) -> np.ndarray:  # tf-idf weight of (n-gram, caption) entries
        value = weight[grams.gram[entries]]
        value *= grams.count[entries]
        return value

    n_captions = corpus.tokens.n_captions
    norm = np.zeros(n_captions * n)
    # one block per n-gram order: every (caption, order) sum then runs over its entries in n-gram order
    # in one pass, whatever else the corpus holds, so a caption's score does not depend on which
    # captions are scored with it (the stream and Dask engines' chunks give evaluate()'s numbers)
    bounds = np.searchsorted(grams.order, np.arange(n + 1))  # entries are grouped by order, ascending
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        part = slice(lo, hi)
        squares = values(part)
        np.square(squares, out=squares)
        slot = grams.caption[part].astype(np.intp)  # bincount's index type: no conversion copy
        slot *= n
        slot += grams.order[part]
        norm += np.bincount(slot, weights=squares, minlength=n_captions * n)
        del squares, slot  # before the next block's
    norm = np.sqrt(norm).reshape(n_captions, n)

    # reference entries sharing an n-gram with their item's hypothesis, each with the hypothesis' entry
    pairs = corpus.hypothesis_pairs(n)
    ref_entry = pairs.ref_entry
    product = clipped_products(values(pairs.hyp_entry[pairs.owner]), values(ref_entry), defended)
    dot = np.bincount(grams.caption[ref_entry] * n + grams.order[ref_entry], weights=product, minlength=n_captions * n)
    del product
    dot = dot.reshape(n_captions, n)[corpus.ref_caption]  # (R, n)

    bigrams = bigram_lengths(corpus.tokens.lengths, n)
    return cider_from_pairs(
        dot,
        norm[corpus.hyp_caption][corpus.ref_item],
        norm[corpus.ref_caption],
        bigrams[corpus.hyp_caption][corpus.ref_item] - bigrams[corpus.ref_caption],
        corpus.ref_start[:-1],
        corpus.n_refs,
        sigma,
        defended,
    )


class CIDErD(MeanMetric):
    """CIDEr-D, what pycocoevalcap reports as "CIDEr": the mean of per-item scores."""

    name = "cider_d"
    aliases = ("ciderd",)
    key = "CIDEr-D"
    default = True
    report_rank = 0
    coco = ("CIDEr", {"CIDEr-D": "CIDEr"})
    defended = True
    uses_document_frequencies = True

    def fit(self, corpus, options: Options, handle=None):
        return fit_frequencies(corpus, options.df, options.n)

    def item_scores(self, corpus, state, options: Options) -> np.ndarray:
        return cider_scores(corpus, df=state, n=options.n, sigma=options.sigma, defended=self.defended)

    def signature(self, options: Options, state=None) -> dict:
        return {"df": options.df_signature, "n": options.n, "sigma": options.sigma}


class CIDEr(CIDErD):
    """The original CIDEr (vrama91/cider's ``Cider``: no clipping, no length penalty), only when asked for."""

    name = "cider"
    aliases = ()
    key = "CIDEr"
    default = False
    report_rank = 1
    coco = None  # pycocoevalcap has no undefended CIDEr
    defended = False

    def signature(self, options: Options, state=None) -> dict:
        return {"df": options.df_signature, "n": options.n}


CIDER_D = CIDErD()
CIDER = CIDEr()
