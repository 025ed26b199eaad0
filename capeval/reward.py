"""CIDEr-D rewards for self-critical training: references encoded once, many samples scored fast.

The references' n-grams are counted once (:func:`capeval._ngrams.count_ngrams`) and kept as one
sorted table per order, keyed by ``(id of the (k-1)-gram prefix, last word)``. Each call counts the
samples' n-grams the same way and finds them in those tables, so word ids never need packing into a
fixed number of bits: any vocabulary size works. Words a call sees for the first time live only for
that call, so memory stays bounded over any number of calls. The scores come from the same CIDEr-D
kernel as ``evaluate`` (:func:`capeval.metrics.cider.cider_from_pairs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._corpus import tokenize_reference_lists
from ._inputs import check_choice, check_n, check_sigma, check_texts, reference_lists
from ._ngrams import TokenizedCorpus, count_ngrams, encode_words, find_sorted
from .df import DocumentFrequencies
from .errors import EmptyReferencesError, InputError, InvalidCaptionError, MissingIdError, OptionError
from .metrics.cider import SIGMA, bigram_lengths, cider_from_pairs, clipped_products, idf_weights
from .tokenize import TOKENIZERS

__all__ = ["CiderDReward"]


class CiderDReward:
    """CIDEr-D of sampled captions against the references of their image, for self-critical training.

    ``references`` maps an image key to its reference captions, already tokenized (``tokenizer``
    tokenizes them here otherwise). ``df`` is the precomputed :class:`DocumentFrequencies` (from the
    training split, typically); without it, the frequencies of ``references`` themselves are used.
    ``vocab`` (id -> word, a list or mapping, any size) lets :meth:`score` take token-id arrays
    ``(B, T)``; a row ends at ``end_token`` or at ``<NULL>`` (id ``null_token``, 0).

    Scores equal ``evaluate(..., metrics="cider_d", tokenizer="none", df=df)`` on the same captions.
    """

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
        self.n, self.sigma = check_n(n), check_sigma(sigma)
        check_choice(tokenizer, TOKENIZERS, "tokenizer")
        if not isinstance(references, Mapping) or not references:
            raise EmptyReferencesError("CiderDReward needs a non-empty mapping {image key: [reference captions]}")
        self.keys = list(references)
        self.key_index = {k: i for i, k in enumerate(self.keys)}
        ref_lists = tokenize_reference_lists(reference_lists(references, self.keys), tokenizer)
        self.df = DocumentFrequencies.from_tokenized(ref_lists, n=self.n, source="references") if df is None else DocumentFrequencies.coerce(df, n=self.n)
        self.end_token, self.null_token = end_token, null_token

        # permanent word ids: the model vocabulary's words first, then the references' other words
        self.word_id: dict[str, int] = {}
        model_words = [] if vocab is None else ([vocab[i] for i in range(len(vocab))] if isinstance(vocab, Mapping) else list(vocab))
        self._model_to_word = np.fromiter((self.word_id.setdefault(w, len(self.word_id)) for w in model_words), dtype=np.int64, count=len(model_words))
        self.model_vocab_size = len(model_words)
        refs = encode_words([r.split() for rs in ref_lists for r in rs], self.word_id)
        self.n_words = len(self.word_id)
        self._df_index = np.array([self.df.word_index.get(w, -1) for w in refs.words], dtype=np.int64)

        # reference n-grams: the lookup tables, tf-idf values, norms and lengths
        grams = count_ngrams(refs, self.n)
        n_grams = grams.n_grams
        if n_grams * max(self.n_words, 1) >= 2**62:
            raise OptionError(f"{n_grams} reference n-grams x {self.n_words} words is too large for one CiderDReward")
        matrix = grams.gram_words(refs, np.arange(n_grams))
        orders = np.searchsorted(grams.order_start, np.arange(n_grams), side="right")
        self._level_keys: list[np.ndarray] = []
        self._level_ids: list[np.ndarray] = []
        for k in range(1, self.n + 1):
            ids = np.arange(grams.order_start[k - 1], grams.order_start[k], dtype=np.int64)
            rows = matrix[ids]
            keys = rows[:, 0].copy() if k == 1 else self._prefix_ids(rows[:, : k - 1]) * self.n_words + rows[:, k - 1]
            order = np.argsort(keys)
            self._level_keys.append(keys[order])
            self._level_ids.append(ids[order])
        self.gram_weight = idf_weights(self.df._lookup_ids(self._df_ids(matrix), orders), self.df.ref_len)
        value = grams.count * self.gram_weight[grams.gram]
        caption = grams.caption.astype(np.int64)
        n_ref_captions = refs.n_captions
        self.n_refs = np.array([len(r) for r in ref_lists], dtype=np.int64)
        self.ref_start = np.zeros(len(ref_lists) + 1, dtype=np.int64)
        np.cumsum(self.n_refs, out=self.ref_start[1:])
        self.ref_norm = np.sqrt(np.bincount(caption * self.n + grams.order, value * value, minlength=n_ref_captions * self.n)).reshape(-1, self.n)
        self.ref_bigrams = bigram_lengths(refs.lengths, self.n)
        self._n_grams = n_grams
        image = np.repeat(np.arange(len(ref_lists), dtype=np.int64), self.n_refs)[caption]
        entry_key = image * n_grams + grams.gram
        sort = np.argsort(entry_key, kind="stable")
        self._entry_key, self._entry_ref, self._entry_value = entry_key[sort], caption[sort], value[sort]

    # -- n-gram lookup --------------------------------------------------------------------------------
    def _prefix_ids(self, rows: np.ndarray) -> np.ndarray:
        """Reference n-gram id of each row of word ids ``(M, k)`` (all of order k), -1 where none."""
        found = np.full(len(rows), -1, dtype=np.int64)
        known = (rows[:, 0] >= 0) & (rows[:, 0] < self.n_words)
        found[known] = self._find(0, rows[known, 0])
        for k in range(1, rows.shape[1]):
            word = rows[:, k]
            ok = (found >= 0) & (word >= 0) & (word < self.n_words)
            nxt = np.full(len(rows), -1, dtype=np.int64)
            nxt[ok] = self._find(k, found[ok] * self.n_words + word[ok])
            found = nxt
        return found

    def _find(self, level: int, keys: np.ndarray) -> np.ndarray:
        pos = find_sorted(self._level_keys[level], keys.astype(np.int64))
        out = np.full(len(keys), -1, dtype=np.int64)
        out[pos >= 0] = self._level_ids[level][pos[pos >= 0]]
        return out

    def _gram_ids(self, matrix: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """Reference n-gram ids of n-grams given as ``(G, n)`` word ids (-1 padded), -1 where absent."""
        out = np.full(len(matrix), -1, dtype=np.int64)
        for k in range(1, self.n + 1):
            rows = np.flatnonzero(orders == k)
            if len(rows):
                out[rows] = self._prefix_ids(matrix[rows, :k])
        return out

    def _df_ids(self, matrix: np.ndarray, extra_df_index: np.ndarray | None = None) -> np.ndarray:
        """Word ids -> the df table's word ids (-1 for padding and words it lacks)."""
        table = self._df_index if extra_df_index is None else np.concatenate([self._df_index, extra_df_index])
        out = np.full(matrix.shape, -1, dtype=np.int64)
        present = matrix >= 0
        out[present] = table[matrix[present]]
        return out

    # -- samples --------------------------------------------------------------------------------------
    def _sample_tokens(self, samples):
        """Word ids, caption offsets and the df ids of words new to this call."""
        if not isinstance(samples, np.ndarray) and not isinstance(samples, (str, bytes)):
            samples = list(samples)
            if samples and not all(isinstance(s, str) for s in samples) and all(isinstance(s, (list, tuple, np.ndarray)) for s in samples):
                samples = np.asarray(samples)
        if isinstance(samples, np.ndarray):
            return (*self._token_id_rows(samples), None)
        texts = check_texts(samples, "sample")
        fresh: dict[str, int] = {}  # words unseen by the references and the vocabulary: this call only
        base = self.n_words
        lookup = self.word_id.get
        flat = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            words = text.split()
            lengths[row] = len(words)
            for w in words:
                i = lookup(w)
                if i is None:
                    i = fresh.setdefault(w, base + len(fresh))
                flat.append(i)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        extra = np.array([self.df.word_index.get(w, -1) for w in fresh], dtype=np.int64)
        return np.asarray(flat, dtype=np.int64), offsets, extra

    def _token_id_rows(self, samples: np.ndarray):
        if samples.dtype.kind not in "iu":
            raise InputError(f"token-id samples must be an integer array, got dtype {samples.dtype}")
        if samples.ndim != 2:
            raise InputError(f"token-id samples must be a (B, T) array, got shape {samples.shape}")
        if not self.model_vocab_size:
            raise InputError("pass vocab= to CiderDReward to score token-id arrays")
        stop = samples == self.null_token
        if self.end_token is not None:
            stop |= samples == self.end_token
        lengths = np.where(stop.any(axis=1), stop.argmax(axis=1), samples.shape[1])
        keep = np.arange(samples.shape[1]) < lengths[:, None]
        tokens = samples[keep].astype(np.int64)
        bad = np.flatnonzero((tokens < 0) | (tokens >= self.model_vocab_size))
        if len(bad):
            row = int(np.searchsorted(np.cumsum(lengths), bad[0], side="right"))
            raise InputError(f"sample {row}: token id {int(tokens[bad[0]])} outside the vocabulary of {self.model_vocab_size} words")
        offsets = np.zeros(len(samples) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return self._model_to_word[tokens], offsets

    def score(self, samples, image_keys: Sequence) -> np.ndarray:
        """CIDEr-D of each sample against the references of its image; returns (len(samples),).

        ``samples``: token strings, or a (B, T) integer token-id array (with ``vocab=``)."""
        n = self.n
        ids, offsets, extra_df = self._sample_tokens(samples)
        n_samples = len(offsets) - 1
        image_keys = list(image_keys)
        if n_samples != len(image_keys):
            raise InputError(f"{n_samples} samples but {len(image_keys)} image keys")
        try:
            image = np.fromiter((self.key_index[k] for k in image_keys), dtype=np.int64, count=n_samples)
        except KeyError as exc:
            raise MissingIdError(f"no references for image key {exc.args[0]!r}") from None
        except TypeError as exc:
            raise InvalidCaptionError(f"image keys must be hashable: {exc}") from None
        if not n_samples:
            return np.zeros(0)

        # the samples' n-grams, counted per sample over their own compact word ids
        distinct, compact = np.unique(ids, return_inverse=True)
        grams = count_ngrams(TokenizedCorpus(compact.astype(np.int64), offsets, [""] * len(distinct)), n)
        matrix = grams.gram_words(TokenizedCorpus(ids, offsets, []), np.arange(grams.n_grams))
        orders = np.searchsorted(grams.order_start, np.arange(grams.n_grams), side="right")
        gid = self._gram_ids(matrix, orders)
        weight = np.empty(grams.n_grams)
        known_gram = gid >= 0
        weight[known_gram] = self.gram_weight[gid[known_gram]]
        if not known_gram.all():  # n-grams absent from every reference: idf from the df table
            unknown = ~known_gram
            weight[unknown] = idf_weights(self.df._lookup_ids(self._df_ids(matrix[unknown], extra_df), orders[unknown]), self.df.ref_len)
        sample = grams.caption.astype(np.int64)
        value = grams.count * weight[grams.gram]
        norm = np.sqrt(np.bincount(sample * n + grams.order, value * value, minlength=n_samples * n)).reshape(-1, n)

        # one slot per (sample, reference of its image)
        slots = self.n_refs[image]
        slot_start = np.zeros(n_samples + 1, dtype=np.int64)
        np.cumsum(slots, out=slot_start[1:])
        slot_ref = np.repeat(self.ref_start[image], slots) + (np.arange(slot_start[-1]) - np.repeat(slot_start[:-1], slots))

        # matches: the reference entries of the sample's image holding the same n-gram
        known = known_gram[grams.gram]
        query = image[sample[known]] * self._n_grams + gid[grams.gram[known]]
        lo = np.searchsorted(self._entry_key, query, side="left")
        hi = np.searchsorted(self._entry_key, query, side="right")
        reps = hi - lo
        entry = np.repeat(lo - np.cumsum(reps) + reps, reps) + np.arange(reps.sum())
        sample_of = np.repeat(sample[known], reps)
        slot = slot_start[sample_of] + (self._entry_ref[entry] - self.ref_start[image[sample_of]])
        product = clipped_products(np.repeat(value[known], reps), self._entry_value[entry], defended=True)
        dot = np.bincount(slot * n + np.repeat(grams.order[known], reps), product, minlength=len(slot_ref) * n).reshape(-1, n)

        hyp_bigrams = bigram_lengths(np.diff(offsets), n)
        return cider_from_pairs(
            dot,
            np.repeat(norm, slots, axis=0),
            self.ref_norm[slot_ref],
            np.repeat(hyp_bigrams, slots) - self.ref_bigrams[slot_ref],
            slot_start[:-1],
            slots,
            self.sigma,
            defended=True,
        )
