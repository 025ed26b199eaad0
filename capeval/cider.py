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

from collections.abc import Mapping, Sequence

import numpy as np

from ._corpus import ScoringCorpus
from ._ngrams import NgramCounts, segment_starts
from .df import DocumentFrequencies

SIGMA = 6.0

__all__ = ["DocumentFrequencies", "cider_scores", "cider_d", "cider", "CiderDReward", "SIGMA"]


def corpus_document_frequencies(corpus: ScoringCorpus, grams: NgramCounts) -> np.ndarray:
    """For each n-gram id, the number of items whose references contain it."""
    ref = ~corpus.caption_is_hyp[grams.caption]
    g = grams.gram[ref]
    item = corpus.caption_item[grams.caption[ref]]
    first = segment_starts(g, item)
    return np.bincount(g[first], minlength=grams.n_grams).astype(np.float64)


def cider_scores(
    corpus: ScoringCorpus,
    df: DocumentFrequencies | None = None,
    n: int = 4,
    sigma: float = SIGMA,
    defended: bool = True,
) -> np.ndarray:
    """Per-item CIDEr-D (``defended=True``) or CIDEr scores, shape (N,); the corpus score is their mean."""
    grams = corpus.ngrams(n)
    if df is None:
        doc_freq = corpus_document_frequencies(corpus, grams)
        ref_len = np.log(float(corpus.n_items))
    else:
        doc_freq = df.lookup(grams.gram_words(corpus.tokens, np.arange(grams.n_grams)), corpus.tokens.words)
        ref_len = df.ref_len
    weight = ref_len - np.log(np.maximum(1.0, doc_freq))
    value = grams.count * weight[grams.gram]  # tf-idf weight of each (n-gram, caption) entry

    n_captions = corpus.tokens.n_captions
    norm = np.sqrt(np.bincount(grams.caption * n + grams.order, weights=value * value, minlength=n_captions * n))
    norm = norm.reshape(n_captions, n)

    # entries of one (n-gram, item) segment: the hypothesis' entry first (if any), then references'
    item = corpus.caption_item[grams.caption]
    is_hyp = corpus.caption_is_hyp[grams.caption]
    seg_id = np.cumsum(segment_starts(grams.gram, item)) - 1
    hyp_value = np.zeros(seg_id[-1] + 1 if len(seg_id) else 0)
    has_hyp = np.zeros(len(hyp_value), dtype=bool)
    hyp_value[seg_id[is_hyp]] = value[is_hyp]
    has_hyp[seg_id[is_hyp]] = True
    pair = ~is_hyp & has_hyp[seg_id]  # reference entries sharing an n-gram with their hypothesis
    h, r = hyp_value[seg_id[pair]], value[pair]
    product = np.minimum(h, r) * r if defended else h * r
    dot = np.bincount(grams.caption[pair] * n + grams.order[pair], weights=product, minlength=n_captions * n)
    dot = dot.reshape(n_captions, n)[corpus.ref_caption]  # (R, n)

    norm_hyp = norm[corpus.hyp_caption][corpus.ref_item]
    norm_ref = norm[corpus.ref_caption]
    both = (norm_hyp != 0) & (norm_ref != 0)
    sim = np.where(both, dot / np.where(both, norm_hyp * norm_ref, 1.0), dot)
    if defended:
        # coco's "length" is the number of bigrams (its counts2vec counts n-grams of index 1)
        bigrams = np.maximum(corpus.tokens.lengths - 1, 0) if n >= 2 else np.zeros(n_captions, np.int64)
        delta = (bigrams[corpus.hyp_caption][corpus.ref_item] - bigrams[corpus.ref_caption]).astype(np.float64)
        sim = sim * np.power(np.e, -(delta**2) / (2 * sigma**2))[:, None]
    per_item = np.add.reduceat(sim, corpus.ref_start[:-1], axis=0)  # (N, n): sum over references
    return per_item.mean(axis=1) / corpus.n_refs * 10.0


def _score(refs, preds, df, n, sigma, defended, tokenizer):
    from .evaluate import prepare

    prepared = prepare(refs, preds, tokenizer=tokenizer)
    df = DocumentFrequencies.coerce(df)
    scores = cider_scores(prepared.corpus, df=df, n=n, sigma=sigma, defended=defended)
    return float(scores.mean()), dict(zip(prepared.ids, scores.tolist()))


def cider_d(
    refs: Mapping,
    preds: Mapping,
    df: DocumentFrequencies | str | None = None,
    *,
    n: int = 4,
    sigma: float = SIGMA,
    tokenizer: str = "ptb",
) -> tuple[float, dict]:
    """CIDEr-D (pycocoevalcap's "CIDEr"): ``(corpus score, {id: score})``."""
    return _score(refs, preds, df, n, sigma, True, tokenizer)


def cider(
    refs: Mapping,
    preds: Mapping,
    df: DocumentFrequencies | str | None = None,
    *,
    n: int = 4,
    tokenizer: str = "ptb",
) -> tuple[float, dict]:
    """Original CIDEr (vrama91/cider's ``Cider``: no clipping, no length penalty)."""
    return _score(refs, preds, df, n, SIGMA, False, tokenizer)


class CiderDReward:
    """CIDEr-D rewards for self-critical training: references encoded once, many samples scored fast.

    ``references`` maps an image key to its tokenized reference captions (strings). ``df`` is the
    precomputed :class:`DocumentFrequencies` (from the training split, typically); without it, the
    frequencies of ``references`` themselves are used, which is what self-critical codebases do
    with ``coco-train-idxs``. ``vocab`` (id -> word) lets :meth:`score` take token-id arrays.
    """

    def __init__(
        self,
        references: Mapping[object, Sequence[str]],
        df: DocumentFrequencies | str | None = None,
        *,
        vocab: Sequence[str] | Mapping[int, str] | None = None,
        end_token: int | None = None,
        n: int = 4,
        sigma: float = SIGMA,
    ):
        from .evaluate import _as_reference_lists  # validation shared with evaluate()

        self.keys = list(references)
        self.key_index = {k: i for i, k in enumerate(self.keys)}
        ref_lists = _as_reference_lists(references, self.keys)
        self.n, self.sigma = n, sigma
        if df is None:
            df = DocumentFrequencies.from_tokenized(ref_lists, n=n, source="references")
        self.df = DocumentFrequencies.coerce(df)
        if vocab is not None:
            words = [vocab[i] for i in range(len(vocab))] if isinstance(vocab, Mapping) else list(vocab)
            self.vocab_words = words
        else:
            self.vocab_words = None
        self.end_token = end_token
        self._refs = ref_lists

    def _texts_from_ids(self, tokens: np.ndarray) -> list[str]:
        if self.vocab_words is None:
            raise ValueError("pass vocab= to score token-id arrays")
        words = self.vocab_words
        out = []
        for row in np.asarray(tokens):
            ws = []
            for t in row.tolist():
                if self.end_token is not None and t == self.end_token:
                    break
                if t == 0:  # <NULL> padding
                    break
                ws.append(words[t])
            out.append(" ".join(ws))
        return out

    def score(self, samples, image_keys: Sequence) -> np.ndarray:
        """CIDEr-D of each sample against the references of its image; returns (len(samples),)."""
        texts = list(samples) if not isinstance(samples, np.ndarray) else self._texts_from_ids(samples)
        if len(texts) != len(image_keys):
            raise ValueError(f"{len(texts)} samples but {len(image_keys)} image keys")
        try:
            rows = [self.key_index[k] for k in image_keys]
        except KeyError as exc:
            from .errors import MissingIdError

            raise MissingIdError(f"no references for image key {exc.args[0]!r}") from None
        corpus = ScoringCorpus(texts, [self._refs[i] for i in rows])
        return cider_scores(corpus, df=self.df, n=self.n, sigma=self.sigma, defended=True)
