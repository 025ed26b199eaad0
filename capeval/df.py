"""Precomputed document frequencies for CIDEr / CIDEr-D.

A :class:`DocumentFrequencies` holds, for every n-gram of a reference corpus, the number of images
whose references contain it, plus ``ref_len = log(#images)``. Build it once from a training split,
save it, reload it, and one image (or one training batch) gets a meaningful, call-independent CIDEr-D.

File format (``.npz``, loaded with ``allow_pickle=False``, so loading never runs code):
``words`` (sorted unicode array), ``grams_<k>`` ((K, k) int32 word ids, rows sorted), ``df_<k>``
(float64), ``meta`` (a JSON string: format version, n, n_images, ref_len, source, sha256 of the
content). The hash is recomputed on load; a mismatch is an error.

Legacy pickles are imported through a restricted unpickler that only builds plain containers and
numbers: vrama91/cider's ``coco-val-df.p`` (``{ngram_tuple: df}``, ``ref_len = log(40504)``) and
ruotianluo's ``coco-train-words.p`` / ``coco-train-idxs.p``
(``{'document_frequency': {ngram_tuple: df}, 'ref_len': n_images}``).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._corpus import ScoringCorpus, tokenize_reference_lists
from ._inputs import check_n, reference_lists
from ._io import atomic_write_bytes
from .errors import DocumentFrequencyError

FORMAT_VERSION = 1
COCO_VAL_IMAGES = 40504


class DocumentFrequencies:
    """Document frequencies of n-grams (orders 1..n) over a reference corpus."""

    def __init__(
        self,
        words: Sequence[str],
        grams: Sequence[np.ndarray],
        counts: Sequence[np.ndarray],
        *,
        n_images: float,
        ref_len: float | None = None,
        source: str = "custom",
    ):
        self.n = len(grams)
        self.n_images = float(n_images)
        self.ref_len = float(np.log(float(n_images))) if ref_len is None else float(ref_len)
        self.source = source
        self._canonicalize(list(words), list(grams), list(counts))
        self._packed: dict[int, tuple[np.ndarray, np.ndarray] | dict] = {}
        self.sha256 = self._content_hash()

    # -- construction ---------------------------------------------------------------------------
    def _canonicalize(self, words, grams, counts):
        """Sorted vocabulary, sorted rows: equal content gives equal arrays and an equal hash."""
        order = sorted(range(len(words)), key=words.__getitem__)
        remap = np.empty(len(words), dtype=np.int64)
        remap[order] = np.arange(len(words))
        self.words = [words[i] for i in order]
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.grams, self.counts = [], []
        for k, (g, c) in enumerate(zip(grams, counts), start=1):
            g = np.asarray(g, dtype=np.int64).reshape(-1, k)
            g = remap[g] if g.size else g
            c = np.asarray(c, dtype=np.float64).reshape(-1)
            rows = np.lexsort(g.T[::-1]) if len(g) else np.zeros(0, np.int64)
            self.grams.append(np.ascontiguousarray(g[rows], dtype=np.int32))
            self.counts.append(np.ascontiguousarray(c[rows]))

    @classmethod
    def from_tokenized(cls, references: Sequence[Sequence[str]], n: int = 4, source: str = "corpus"):
        """From already-tokenized reference lists, one list per image."""
        n = check_n(n)
        corpus = ScoringCorpus([""] * len(references), references)
        grams = corpus.ngrams(n)
        doc_freq = corpus.document_frequencies(n)
        matrix = grams.gram_words(corpus.tokens, np.arange(grams.n_grams))
        present = doc_freq > 0
        order_of = np.searchsorted(grams.order_start, np.arange(grams.n_grams), side="right")
        per_order = [(matrix[present & (order_of == k)][:, :k], doc_freq[present & (order_of == k)]) for k in range(1, n + 1)]
        return cls(corpus.tokens.words, [g for g, _ in per_order], [c for _, c in per_order], n_images=len(references), source=source)

    @classmethod
    def from_references(cls, references: Mapping, *, tokenizer: str = "ptb", n: int = 4, source: str = "corpus"):
        """From raw references ``{id: [captions]}``, tokenized as ``evaluate`` would."""
        lists = reference_lists(references, list(references))
        return cls.from_tokenized(tokenize_reference_lists(lists, tokenizer), n=n, source=source)

    @classmethod
    def from_mapping(cls, mapping: Mapping[tuple, float], *, n_images: float, ref_len: float | None = None, source: str = "custom"):
        """From ``{ngram_tuple: df}`` (tuples of words)."""
        n = max((len(g) for g in mapping), default=4)
        words = sorted({w for g in mapping for w in g})
        index = {w: i for i, w in enumerate(words)}
        grams = [[] for _ in range(n)]
        counts = [[] for _ in range(n)]
        for g, c in mapping.items():
            if not isinstance(g, tuple) or not g or not all(isinstance(w, str) for w in g):
                raise DocumentFrequencyError(f"n-gram keys must be non-empty tuples of strings, got {g!r}")
            grams[len(g) - 1].append([index[w] for w in g])
            counts[len(g) - 1].append(float(c))
        return cls(
            words,
            [np.asarray(g, dtype=np.int64).reshape(-1, k + 1) for k, g in enumerate(grams)],
            [np.asarray(c) for c in counts],
            n_images=n_images,
            ref_len=ref_len,
            source=source,
        )

    @classmethod
    def from_legacy_pickle(cls, path, *, n_images: float | None = None):
        """Import vrama91's ``coco-val-df.p`` or ruotianluo's ``coco-train-*.p`` safely."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                obj = _RestrictedUnpickler(fh).load()
        except DocumentFrequencyError:
            raise
        except Exception as exc:
            raise DocumentFrequencyError(f"{path}: not a readable document-frequency pickle ({exc})") from None
        if isinstance(obj, Mapping) and "document_frequency" in obj:
            mapping = obj["document_frequency"]
            count = obj.get("ref_len", n_images)
            if count is None:
                raise DocumentFrequencyError(f"{path}: no 'ref_len' (number of images); pass n_images=")
            return cls.from_mapping(mapping, n_images=float(count), source=path.name)
        if isinstance(obj, Mapping):  # vrama91: a bare {ngram: df}, ref_len fixed to log(40504)
            return cls.from_mapping(obj, n_images=n_images or COCO_VAL_IMAGES, source=path.name)
        raise DocumentFrequencyError(f"{path}: unexpected pickle content of type {type(obj).__name__}")

    # -- persistence ------------------------------------------------------------------------------
    def meta(self) -> dict:
        return {
            "format": "capeval-df",
            "version": FORMAT_VERSION,
            "n": self.n,
            "n_images": self.n_images,
            "ref_len": self.ref_len,
            "source": self.source,
            "n_words": len(self.words),
            "n_grams": [len(g) for g in self.grams],
            "sha256": self.sha256,
        }

    def save(self, path) -> Path:
        """Write the ``.npz`` atomically (temp file, then rename)."""
        path = Path(path)
        arrays = {"words": np.asarray(self.words, dtype=str), "meta": np.asarray(json.dumps(self.meta()))}
        for k, (g, c) in enumerate(zip(self.grams, self.counts), start=1):
            arrays[f"grams_{k}"] = g
            arrays[f"df_{k}"] = c
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path) -> DocumentFrequencies:
        path = Path(path)
        if path.suffix in (".p", ".pkl", ".pickle"):
            return cls.from_legacy_pickle(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != "capeval-df" or meta.get("version") != FORMAT_VERSION:
                    raise DocumentFrequencyError(f"{path}: unknown format {meta.get('format')!r} version {meta.get('version')!r}")
                n = int(meta["n"])
                words = data["words"].tolist() if data["words"].size else []
                grams = [data[f"grams_{k}"] for k in range(1, n + 1)]
                counts = [data[f"df_{k}"] for k in range(1, n + 1)]
        except DocumentFrequencyError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as exc:
            why = "not an .npz archive" if "pickle" in str(exc) else str(exc)
            raise DocumentFrequencyError(f"{path}: not a capeval document-frequency file (.npz): {why}") from None
        df = cls(words, grams, counts, n_images=meta["n_images"], ref_len=meta["ref_len"], source=meta["source"])
        if df.sha256 != meta["sha256"]:
            raise DocumentFrequencyError(f"{path}: content hash mismatch (file altered or corrupted)")
        return df

    @classmethod
    def coerce(cls, df) -> DocumentFrequencies | None:
        if df is None or isinstance(df, DocumentFrequencies):
            return df
        if isinstance(df, (str, Path)):
            return cls.load(df)
        raise TypeError(f"df must be a DocumentFrequencies, a path or None, not {type(df).__name__}")

    def _content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([FORMAT_VERSION, self.n, repr(self.ref_len)]).encode())
        h.update("\n".join(self.words).encode("utf-8", "surrogatepass"))
        for g, c in zip(self.grams, self.counts):
            h.update(g.astype("<i4").tobytes())
            h.update(c.astype("<f8").tobytes())
        return h.hexdigest()

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def signature(self) -> str:
        return f"{self.source}@{self.short_hash}"

    # -- lookup -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(sum(len(g) for g in self.grams))

    def __getitem__(self, ngram: tuple[str, ...] | str) -> float:
        words = tuple(ngram.split()) if isinstance(ngram, str) else tuple(ngram)
        ids = [self.word_index.get(w, -1) for w in words]
        matrix = np.full((1, max(self.n, len(ids))), -1, dtype=np.int64)
        matrix[0, : len(ids)] = ids
        if -1 in ids or len(ids) > self.n or not ids:
            return 0.0
        return float(self._lookup_ids(matrix[:, : self.n], np.array([len(ids)]))[0])

    def _packed_order(self, k: int):
        if k not in self._packed:
            base = len(self.words) + 1
            g = self.grams[k - 1].astype(np.int64)
            if base**k < 2**62:
                keys = np.zeros(len(g), dtype=np.int64)
                for j in range(k):
                    keys = keys * base + (g[:, j] + 1)
                order = np.argsort(keys)
                self._packed[k] = (keys[order], self.counts[k - 1][order])
            else:  # huge vocabulary: a dictionary of tuples
                self._packed[k] = {tuple(row): c for row, c in zip(g.tolist(), self.counts[k - 1].tolist())}
        return self._packed[k]

    def _lookup_ids(self, matrix: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """``matrix`` (G, n) of this object's word ids (-1 unknown), ``orders`` (G,): df per row."""
        out = np.zeros(len(matrix), dtype=np.float64)
        base = len(self.words) + 1
        for k in range(1, self.n + 1):
            rows = np.flatnonzero((orders == k) & (matrix[:, :k] >= 0).all(axis=1)) if matrix.shape[1] >= k else np.zeros(0, np.int64)
            if not len(rows):
                continue
            table = self._packed_order(k)
            if isinstance(table, dict):
                out[rows] = [table.get(tuple(r), 0.0) for r in matrix[rows, :k].tolist()]
                continue
            keys = np.zeros(len(rows), dtype=np.int64)
            for j in range(k):
                keys = keys * base + (matrix[rows, j] + 1)
            sorted_keys, sorted_counts = table
            pos = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
            if len(sorted_keys):
                hit = sorted_keys[pos] == keys
                out[rows[hit]] = sorted_counts[pos[hit]]
        return out

    def lookup(self, gram_words: np.ndarray, corpus_words: Sequence[str]) -> np.ndarray:
        """Document frequency of n-grams given as (G, n) word ids of another vocabulary (-1 padded)."""
        to_own = np.array([self.word_index.get(w, -1) for w in corpus_words] + [-1], dtype=np.int64)
        gram_words = np.asarray(gram_words, dtype=np.int64)
        orders = (gram_words >= 0).sum(axis=1)
        own = to_own[gram_words]  # -1 padding maps to the trailing -1
        if own.shape[1] > self.n:  # orders above ours have df 0
            orders = np.where(orders > self.n, 0, orders)
            own = own[:, : self.n]
        return self._lookup_ids(own, orders)

    def __repr__(self) -> str:
        return f"DocumentFrequencies(n={self.n}, n_images={self.n_images:g}, ngrams={len(self)}, source={self.source!r}, sha256={self.short_hash})"


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only dicts, tuples, lists, strings and numbers (also numpy scalars): no code runs."""

    _ALLOWED = {
        ("collections", "defaultdict"),
        ("builtins", "float"),
        ("builtins", "int"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "str"),
        ("builtins", "bytes"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def __init__(self, fh):
        super().__init__(fh, encoding="latin1")

    def find_class(self, module, name):
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DocumentFrequencyError(f"refusing to unpickle {module}.{name}: only plain data is allowed")


