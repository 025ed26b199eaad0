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
_CHUNK = 1 << 21

__all__ = ["DocumentFrequencies", "cider_scores", "cider_d", "cider", "CiderDReward", "SIGMA"]


def corpus_document_frequencies(corpus: ScoringCorpus, grams: NgramCounts) -> np.ndarray:
    """For each n-gram id, the number of items whose references contain it."""
    seg = corpus.segments(len(grams.order_start) - 1)
    # a segment's first reference entry: the segment's first entry, or its second after a hypothesis
    first_ref = seg.first + seg.is_hyp[seg.first]
    last = np.append(seg.first[1:], len(seg.seg_id))
    has_ref = first_ref < last
    return np.bincount(grams.gram[first_ref[has_ref]], minlength=grams.n_grams).astype(np.float64)


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
    value = weight[grams.gram]  # tf-idf weight of each (n-gram, caption) entry
    value *= grams.count
    del weight, doc_freq

    n_captions = corpus.tokens.n_captions
    norm = np.zeros(n_captions * n)
    for lo in range(0, len(value), _CHUNK):  # in chunks: no full-size temporaries at the peak
        part = slice(lo, lo + _CHUNK)
        norm += np.bincount(grams.caption[part] * n + grams.order[part], weights=np.square(value[part]), minlength=n_captions * n)
    norm = np.sqrt(norm).reshape(n_captions, n)

    # entries of one (n-gram, item) segment: the hypothesis' entry first (if any), then references'
    seg = corpus.segments(n)
    is_hyp, seg_id = seg.is_hyp, seg.seg_id
    hyp_value = np.zeros(len(seg.first))
    has_hyp = np.zeros(len(seg.first), dtype=bool)
    hyp_value[seg_id[is_hyp]] = value[is_hyp]
    has_hyp[seg_id[is_hyp]] = True
    pair = ~is_hyp & has_hyp[seg_id]  # reference entries sharing an n-gram with their hypothesis
    h, r = hyp_value[seg_id[pair]], value[pair]
    del value
    product = np.minimum(h, r) if defended else h
    product *= r
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


def _ngram_occurrences(ids: np.ndarray, offsets: np.ndarray, n: int, base: int):
    """Every n-gram occurrence of orders 1..n as (caption, packed key, order-1).

    Keys pack word ids + 1 in ``base`` (``base**n < 2**63``): distinct orders never collide."""
    lengths = np.diff(offsets)
    caption_of_pos = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    remaining = np.repeat(offsets[1:], lengths) - np.arange(len(ids), dtype=np.int64)
    caps, keys, orders = [], [], []
    key = np.zeros(len(ids), dtype=np.int64)
    for k in range(n):
        starts = np.flatnonzero(remaining > k)
        key[starts] = key[starts] * base + ids[starts + k] + 1
        caps.append(caption_of_pos[starts])
        keys.append(key[starts].copy())
        orders.append(np.full(len(starts), k, dtype=np.int64))
    return np.concatenate(caps), np.concatenate(keys), np.concatenate(orders)


def _unique_counts(caption: np.ndarray, key: np.ndarray, order: np.ndarray):
    """Collapse occurrences into unique (caption, key) pairs with counts."""
    sort = np.lexsort((key, caption))
    caption, key, order = caption[sort], key[sort], order[sort]
    first = np.flatnonzero(segment_starts(caption, key))
    counts = np.diff(np.append(first, len(key)))
    return caption[first], key[first], order[first], counts


class CiderDReward:
    """CIDEr-D rewards for self-critical training: references encoded once, many samples scored fast.

    ``references`` maps an image key to its reference captions, already tokenized (``tokenizer``
    tokenizes them here otherwise). ``df`` is the precomputed :class:`DocumentFrequencies` (from the
    training split, typically); without it, the frequencies of ``references`` themselves are used.
    ``vocab`` (id -> word, a list or mapping) lets :meth:`score` take token-id arrays ``(B, T)``;
    a row ends at ``end_token`` or at ``<NULL>`` (id ``null_token``, 0).

    Scores equal ``evaluate(..., metrics="cider_d", df=df)`` on the same captions.
    """

    _BASE = 2**15  # word ids + 1 below this: 4-grams pack into 60 bits

    def __init__(
        self,
        references: Mapping[object, Sequence[str]],
        df: DocumentFrequencies | str | None = None,
        *,
        vocab: Sequence[str] | Mapping[int, str] | None = None,
        end_token: int | None = None,
        null_token: int = 0,
        tokenizer: str = "none",
        n: int = 4,
        sigma: float = SIGMA,
    ):
        from .evaluate import _as_reference_lists  # validation shared with evaluate()
        from .tokenize import tokenize

        if n > 4:
            raise ValueError("CiderDReward packs n-grams up to n=4")
        self.keys = list(references)
        self.key_index = {k: i for i, k in enumerate(self.keys)}
        ref_lists = _as_reference_lists(references, self.keys)
        if tokenizer != "none":
            flat = iter(tokenize([c for refs in ref_lists for c in refs], tokenizer))
            ref_lists = [[next(flat) for _ in refs] for refs in ref_lists]
        self.n, self.sigma = n, sigma
        self.df = DocumentFrequencies.from_tokenized(ref_lists, n=n, source="references") if df is None else DocumentFrequencies.coerce(df)
        self.end_token, self.null_token = end_token, null_token
        # word ids: the model vocabulary first, so token-id arrays need no translation
        self.word_id: dict[str, int] = {}
        if vocab is not None:
            words = [vocab[i] for i in range(len(vocab))] if isinstance(vocab, Mapping) else list(vocab)
            for w in words:
                self.word_id.setdefault(w, len(self.word_id))
            self.model_vocab_size = len(words)
        else:
            self.model_vocab_size = 0
        ref_tokens = [r.split() for refs in ref_lists for r in refs]
        for toks in ref_tokens:
            for w in toks:
                if w not in self.word_id:
                    self.word_id[w] = len(self.word_id)
        self._check_vocab()
        self._word_to_df = np.zeros(0, dtype=np.int64)

        # references: unique (ref, n-gram) entries with tf-idf values, norms and bigram lengths
        self.n_refs = np.array([len(r) for r in ref_lists], dtype=np.int64)
        self.ref_start = np.zeros(len(ref_lists) + 1, dtype=np.int64)
        np.cumsum(self.n_refs, out=self.ref_start[1:])
        ids, offsets = self._encode(ref_tokens)
        cap, key, order, count = _unique_counts(*_ngram_occurrences(ids, offsets, n, self._BASE))
        self.gram_keys, gram = np.unique(key, return_inverse=True)
        self.gram_weight = self._weights(self.gram_keys)
        value = count * self.gram_weight[gram]
        n_ref_total = len(ref_tokens)
        self.ref_norm = np.sqrt(np.bincount(cap * n + order, value * value, minlength=n_ref_total * n)).reshape(-1, n)
        self.ref_bigrams = np.maximum(np.diff(offsets) - 1, 0) if n >= 2 else np.zeros(n_ref_total, np.int64)
        image = np.repeat(np.arange(len(ref_lists), dtype=np.int64), self.n_refs)[cap]
        entry_key = image * len(self.gram_keys) + gram
        sort = np.argsort(entry_key, kind="stable")
        self.entry_key, self.entry_ref, self.entry_value = entry_key[sort], cap[sort], value[sort]

    def _check_vocab(self):
        if len(self.word_id) >= self._BASE - 1:
            raise ValueError(f"CiderDReward supports vocabularies below {self._BASE - 1} words; use evaluate() beyond")

    def _encode(self, token_lists):
        get = self.word_id.setdefault
        flat = [get(w, len(self.word_id)) for toks in token_lists for w in toks]
        self._check_vocab()
        offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in token_lists], out=offsets[1:])
        return np.asarray(flat, dtype=np.int64), offsets

    def _weights(self, keys: np.ndarray) -> np.ndarray:
        """idf weights ``ref_len - log(max(1, df))`` of packed n-gram keys."""
        if len(self._word_to_df) < len(self.word_id):  # words seen since last time
            words = sorted(self.word_id, key=self.word_id.get)
            self._word_to_df = np.array([self.df.word_index.get(w, -1) for w in words] + [-1], dtype=np.int64)
        powers = self._BASE ** np.arange(self.n, dtype=np.int64)
        digits = (keys[:, None] // powers) % self._BASE  # digits[:, j]: word (j from the end) + 1
        orders = (digits > 0).sum(axis=1)
        back = orders[:, None] - 1 - np.arange(self.n)  # column i holds the digit of word i
        words = np.take_along_axis(digits, np.maximum(back, 0), axis=1) - 1
        words = np.where(back >= 0, words, -1)
        doc_freq = self.df._lookup_ids(self._word_to_df[words], orders)
        return self.df.ref_len - np.log(np.maximum(1.0, doc_freq))

    def _sample_tokens(self, samples):
        """Word-id arrays of the samples: from a (B, T) id array or from token strings."""
        if isinstance(samples, np.ndarray) and samples.dtype.kind in "iu":
            if samples.ndim != 2:
                raise ValueError("token-id samples must be a (B, T) array")
            if not self.model_vocab_size:
                raise ValueError("pass vocab= to score token-id arrays")
            stop = samples == self.null_token
            if self.end_token is not None:
                stop |= samples == self.end_token
            lengths = np.where(stop.any(axis=1), stop.argmax(axis=1), samples.shape[1])
            keep = np.arange(samples.shape[1]) < lengths[:, None]
            ids = samples[keep].astype(np.int64)
            if len(ids) and (ids.min() < 0 or ids.max() >= self.model_vocab_size):
                raise ValueError("token ids outside the vocabulary")
            offsets = np.zeros(len(samples) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            return ids, offsets
        return self._encode([s.split() for s in samples])

    def score(self, samples, image_keys: Sequence) -> np.ndarray:
        """CIDEr-D of each sample against the references of its image; returns (len(samples),).

        ``samples``: token strings, or a (B, T) token-id array (with ``vocab=``)."""
        n = self.n
        ids, offsets = self._sample_tokens(samples)
        n_samples = len(offsets) - 1
        if n_samples != len(image_keys):
            raise ValueError(f"{n_samples} samples but {len(image_keys)} image keys")
        try:
            image = np.array([self.key_index[k] for k in image_keys], dtype=np.int64)
        except KeyError as exc:
            from .errors import MissingIdError

            raise MissingIdError(f"no references for image key {exc.args[0]!r}") from None

        cap, key, order, count = _unique_counts(*_ngram_occurrences(ids, offsets, n, self._BASE))
        pos = np.minimum(np.searchsorted(self.gram_keys, key), max(len(self.gram_keys) - 1, 0))
        known = self.gram_keys[pos] == key if len(self.gram_keys) else np.zeros(len(key), bool)
        weight = np.empty(len(key))
        weight[known] = self.gram_weight[pos[known]]
        if not known.all():  # n-grams absent from every reference: idf from the df table
            weight[~known] = self._weights(key[~known])
        value = count * weight
        norm = np.sqrt(np.bincount(cap * n + order, value * value, minlength=n_samples * n)).reshape(-1, n)

        # one slot per (sample, reference of its image)
        slots = self.n_refs[image]
        slot_start = np.zeros(n_samples + 1, dtype=np.int64)
        np.cumsum(slots, out=slot_start[1:])
        slot_ref = np.repeat(self.ref_start[image], slots) + (np.arange(slot_start[-1]) - np.repeat(slot_start[:-1], slots))

        # matches: the reference entries of the sample's image holding the same n-gram
        query = image[cap[known]] * len(self.gram_keys) + pos[known]
        lo = np.searchsorted(self.entry_key, query, side="left")
        hi = np.searchsorted(self.entry_key, query, side="right")
        reps = hi - lo
        entry = np.repeat(lo - np.cumsum(reps) + reps, reps) + np.arange(reps.sum())
        h = np.repeat(value[known], reps)
        r = self.entry_value[entry]
        sample_of = np.repeat(cap[known], reps)
        slot = slot_start[sample_of] + (self.entry_ref[entry] - self.ref_start[image[sample_of]])
        dot = np.bincount(slot * n + np.repeat(order[known], reps), np.minimum(h, r) * r, minlength=len(slot_ref) * n).reshape(-1, n)

        norm_hyp = np.repeat(norm, slots, axis=0)
        norm_ref = self.ref_norm[slot_ref]
        both = (norm_hyp != 0) & (norm_ref != 0)
        sim = np.where(both, dot / np.where(both, norm_hyp * norm_ref, 1.0), dot)
        hyp_bigrams = np.maximum(np.diff(offsets) - 1, 0) if n >= 2 else np.zeros(n_samples, np.int64)
        delta = (np.repeat(hyp_bigrams, slots) - self.ref_bigrams[slot_ref]).astype(np.float64)
        sim = sim * np.power(np.e, -(delta**2) / (2 * self.sigma**2))[:, None]
        per_sample = np.add.reduceat(sim, slot_start[:-1], axis=0) if len(sim) else np.zeros((n_samples, n))
        return per_sample.mean(axis=1) / slots * 10.0
