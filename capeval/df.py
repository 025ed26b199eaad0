"""Precomputed document frequencies for CIDEr / CIDEr-D.

A :class:`DocumentFrequencies` holds, for every n-gram of a reference corpus, the number of images
whose references contain it, plus ``ref_len = log(#images)``. Build it once from a training split,
save it, reload it, and one image (or one training batch) gets a meaningful, call-independent CIDEr-D.

File format (``.npz``, loaded with ``allow_pickle=False``, so loading never runs code):
``words`` (sorted unicode array), ``grams_<k>`` ((K, k) int32 word ids, rows sorted), ``df_<k>``
(float64), ``meta`` (a JSON string: format version, n, n_images, ref_len, source, the tokenizer the
references were tokenized with, the capeval version that built it, sha256 of the content). On load
the arrays' shapes, types and word ids are checked and the hash recomputed from them before any is
used; anything wrong is a :class:`~capeval.errors.DocumentFrequencyError` naming the file.

Counts depend on the tokenizer and on n: scoring with another tokenizer, or with a larger n than the
file holds, silently changes CIDEr(-D). :meth:`DocumentFrequencies.check_compatible` (and
``coerce(df, tokenizer=, n=)``) refuses that unless ``allow_mismatch=True``. Files and pickles that
record no tokenizer (format version 1, legacy pickles) cannot be checked: their signature ends with
``+tok:unknown``.

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
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._corpus import ScoringCorpus, tokenize_reference_lists
from ._inputs import check_n, reference_lists
from ._io import atomic_write_bytes
from ._ngrams import find_in_sorted, map_vocabulary, pack_ngram_rows, packs_exactly
from ._version import __version__
from .errors import DocumentFrequencyError, DocumentFrequencyMismatchError

FORMAT_VERSION = 2  # 2 records the tokenizer and the capeval version; 1 (no tokenizer) still loads
_READABLE_VERSIONS = (1, 2)
COCO_VAL_IMAGES = 40504
_MAX_N = 64  # no sane n-gram order is larger: a bigger "n" in a file is damage


class PackedLookup:
    """``lookup`` for document-frequency tables that give, per order ``k``, sorted packed keys and their
    counts (``_packed_order(k)``, see :func:`~capeval._ngrams.pack_ngram_rows`) or a dictionary of
    word-id tuples; needs ``n``, ``words`` and ``word_index``. Shared by :class:`DocumentFrequencies`
    and the scale engines' lean table."""

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
            sorted_keys, sorted_counts = table
            hit, pos = find_in_sorted(sorted_keys, pack_ngram_rows(matrix[rows, :k], base))
            out[rows[hit]] = sorted_counts[pos[hit]]
        return out

    def lookup(self, gram_words: np.ndarray, corpus_words: Sequence[str]) -> np.ndarray:
        """Document frequency of n-grams given as (G, n) word ids of another vocabulary (-1 padded)."""
        gram_words = np.asarray(gram_words, dtype=np.int64)
        orders = (gram_words >= 0).sum(axis=1)
        own = map_vocabulary(corpus_words, self.word_index)[gram_words]  # -1 padding stays -1
        if own.shape[1] > self.n:  # orders above ours have df 0
            orders = np.where(orders > self.n, 0, orders)
            own = own[:, : self.n]
        return self._lookup_ids(own, orders)


class DocumentFrequencies(PackedLookup):
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
        tokenizer: str | None = None,
        capeval_version: str | None = None,
    ):
        self.n = len(grams)
        self.n_images = float(n_images)
        self.ref_len = float(np.log(float(n_images))) if ref_len is None else float(ref_len)
        self.source = source
        self.tokenizer = tokenizer  # None: unknown (legacy files, counts from pre-tokenized lists)
        self.capeval_version = __version__ if capeval_version is None else capeval_version
        self._canonicalize(list(words), list(grams), list(counts))
        self._packed: dict[int, tuple[np.ndarray, np.ndarray] | dict] = {}
        self.sha256 = _content_hash(self.n, self.ref_len, self.words, self.grams, self.counts)

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
    def from_tokenized(cls, references: Sequence[Sequence[str]], n: int = 4, source: str = "corpus", tokenizer: str | None = None):
        """From already-tokenized reference lists, one list per image.

        ``tokenizer``: the tokenizer that produced the lists, recorded so a scoring run with another
        one is refused (unknown by default: then no check is possible).
        """
        n = check_n(n)
        corpus = ScoringCorpus([""] * len(references), references)
        grams = corpus.ngrams(n)
        doc_freq = corpus.document_frequencies(n)
        matrix = grams.gram_words(corpus.tokens, np.arange(grams.n_grams))
        present = doc_freq > 0
        order_of = np.searchsorted(grams.order_start, np.arange(grams.n_grams), side="right")
        per_order = [(matrix[present & (order_of == k)][:, :k], doc_freq[present & (order_of == k)]) for k in range(1, n + 1)]
        return cls(corpus.tokens.words, [g for g, _ in per_order], [c for _, c in per_order], n_images=len(references), source=source, tokenizer=tokenizer)

    @classmethod
    def from_references(cls, references: Mapping, *, tokenizer: str = "ptb", n: int = 4, source: str = "corpus"):
        """From raw references ``{id: [captions]}``, tokenized as ``evaluate`` would; records ``tokenizer``."""
        lists = reference_lists(references, list(references))
        return cls.from_tokenized(tokenize_reference_lists(lists, tokenizer), n=n, source=source, tokenizer=tokenizer)

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
        except DocumentFrequencyError as exc:
            raise DocumentFrequencyError(f"{path}: {exc}") from None
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
            "tokenizer": self.tokenizer,
            "capeval_version": self.capeval_version,
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
    def load(cls, path, *, tokenizer: str | None = None, n: int | None = None, allow_mismatch: bool = False) -> DocumentFrequencies:
        """Read a ``.npz`` written by :meth:`save` (or a legacy pickle: ``.p``, ``.pkl``, ``.pickle``).

        Every way a file can be damaged (not a zip, truncated, a CRC error, missing or ill-shaped
        arrays, word ids out of range, a hash that does not match) raises
        :class:`~capeval.errors.DocumentFrequencyError` naming the file. With ``tokenizer`` / ``n``
        the file is also checked against them (:meth:`check_compatible`).
        """
        path = Path(path)
        if path.suffix in (".p", ".pkl", ".pickle"):
            df = cls.from_legacy_pickle(path)
        else:
            df = cls._load_npz(path)
        df.check_compatible(tokenizer, n, allow_mismatch=allow_mismatch, where=str(path))
        return df

    @classmethod
    def _load_npz(cls, path: Path) -> DocumentFrequencies:
        def damaged(why: str) -> DocumentFrequencyError:
            return DocumentFrequencyError(f"{path}: not a valid capeval document-frequency file (.npz): {why}")

        try:
            with np.load(path, allow_pickle=False) as data:
                if not isinstance(data, np.lib.npyio.NpzFile):
                    raise damaged("a single .npy array, not an .npz archive")
                if "meta" not in data.files:
                    raise damaged("no 'meta' record")
                meta = _read_meta(data, damaged)
                names = ["words"] + [f"{kind}_{k}" for k in range(1, meta["n"] + 1) for kind in ("grams", "df")]
                missing = [name for name in names if name not in data.files]
                if missing:
                    raise damaged(f"array {missing[0]!r} is missing")
                arrays = {name: data[name] for name in names}
                n = meta["n"]
        except DocumentFrequencyError:
            raise
        except FileNotFoundError:
            raise DocumentFrequencyError(f"{path}: no such file") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeError, NotImplementedError, RuntimeError, struct.error, OverflowError) as exc:
            # a truncated archive, a CRC error, a damaged zip header (an unknown compression method,
            # an "encrypted" flag), a member that is not an .npy array, a pickled object array
            why = "not an .npz archive" if "pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
            raise damaged(why) from None
        words, grams, counts = _checked_arrays(arrays, n, damaged)
        # Arrays written by save() are already canonical, so the hash is computed from them as read,
        # before anything is built from them; then the constructor's own hash must agree.
        if _content_hash(n, meta["ref_len"], words, grams, counts) != meta["sha256"]:
            raise DocumentFrequencyError(f"{path}: content hash mismatch (file altered or corrupted)")
        df = cls(
            words,
            grams,
            counts,
            n_images=meta["n_images"],
            ref_len=meta["ref_len"],
            source=meta["source"],
            tokenizer=meta.get("tokenizer"),
            capeval_version=meta.get("capeval_version") or "unknown",
        )
        if df.sha256 != meta["sha256"]:  # rows or words not in save()'s order
            raise DocumentFrequencyError(f"{path}: content hash mismatch (arrays not in canonical order)")
        return df

    def check_compatible(self, tokenizer: str | None = None, n: int | None = None, *, allow_mismatch: bool = False, where: str | None = None) -> None:
        """Refuse scoring with another tokenizer, or a larger n, than these counts were built with.

        Either would change CIDEr(-D) without a sign (n-grams tokenized differently are not found;
        orders above ``self.n`` get document frequency 0). A smaller n is fine: counts of k-grams do
        not depend on the largest order. ``allow_mismatch=True`` skips the check. A tokenizer that
        is not recorded (``None``) cannot be checked; the signature says so.
        """
        if allow_mismatch:
            return
        problems = []
        if tokenizer is not None and self.tokenizer is not None and tokenizer != self.tokenizer:
            problems.append(f"built with tokenizer {self.tokenizer!r}, scoring uses {tokenizer!r}")
        if n is not None and n > self.n:
            problems.append(f"built with n={self.n}, scoring uses n={n} (orders above {self.n} would get document frequency 0)")
        if problems:
            raise DocumentFrequencyMismatchError(
                f"{where or self.signature}: document frequencies {' and '.join(problems)}; the scores would silently change. "
                "Rebuild them with the scoring settings, or pass allow_mismatch=True (CLI: --allow-df-mismatch) if this is intended"
            )

    @classmethod
    def coerce(cls, df, *, tokenizer: str | None = None, n: int | None = None, allow_mismatch: bool = False) -> DocumentFrequencies | None:
        """``df`` as a :class:`DocumentFrequencies` (a path is loaded), checked against ``tokenizer`` / ``n`` when given."""
        if df is None:
            return None
        if isinstance(df, (str, Path)):
            return cls.load(df, tokenizer=tokenizer, n=n, allow_mismatch=allow_mismatch)
        if not isinstance(df, DocumentFrequencies):
            raise TypeError(f"df must be a DocumentFrequencies, a path or None, not {type(df).__name__}")
        df.check_compatible(tokenizer, n, allow_mismatch=allow_mismatch)
        return df

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def signature(self) -> str:
        """``source@hash``; ``+tok:unknown`` where no tokenizer is recorded (legacy files), so it cannot be checked."""
        return f"{self.source}@{self.short_hash}" + ("" if self.tokenizer else "+tok:unknown")

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
            g = self.grams[k - 1]
            if packs_exactly(base, k):
                keys = pack_ngram_rows(g, base)
                order = np.argsort(keys)
                self._packed[k] = (keys[order], self.counts[k - 1][order])
            else:  # huge vocabulary: a dictionary of tuples
                self._packed[k] = {tuple(row): c for row, c in zip(g.tolist(), self.counts[k - 1].tolist())}
        return self._packed[k]

    def __repr__(self) -> str:
        return (
            f"DocumentFrequencies(n={self.n}, n_images={self.n_images:g}, ngrams={len(self)}, source={self.source!r}, "
            f"tokenizer={self.tokenizer!r}, sha256={self.short_hash})"
        )


def _content_hash(n: int, ref_len: float, words: Sequence[str], grams: Sequence[np.ndarray], counts: Sequence[np.ndarray]) -> str:
    """sha256 of the canonical content (format 1's scheme: unchanged so old files keep their hash)."""
    h = hashlib.sha256()
    h.update(json.dumps([1, n, repr(float(ref_len))]).encode())
    h.update("\n".join(words).encode("utf-8", "surrogatepass"))
    for g, c in zip(grams, counts):
        h.update(np.asarray(g).astype("<i4").tobytes())
        h.update(np.asarray(c).astype("<f8").tobytes())
    return h.hexdigest()


def _read_meta(data, damaged) -> dict:
    """The ``meta`` record, with every field load() relies on present and of the right type."""
    meta_array = data["meta"]
    if meta_array.dtype.kind != "U" or meta_array.shape != ():
        raise damaged("'meta' is not a JSON string")
    try:
        meta = json.loads(str(meta_array))
    except ValueError:
        raise damaged("'meta' is not valid JSON") from None
    if not isinstance(meta, dict):
        raise damaged("'meta' is not a JSON object")
    if meta.get("format") != "capeval-df" or meta.get("version") not in _READABLE_VERSIONS:
        raise damaged(f"unknown format {meta.get('format')!r} version {meta.get('version')!r}")
    n = meta.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_N:
        raise damaged(f"n must be an integer from 1 to {_MAX_N}, got {n!r}")
    for key, kind in (("n_images", (int, float)), ("ref_len", (int, float)), ("source", str), ("sha256", str)):
        if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), kind):
            raise damaged(f"'meta' field {key!r} is missing or of the wrong type")
    if not all(np.isfinite([meta["n_images"], meta["ref_len"]])):
        raise damaged("n_images and ref_len must be finite")
    if meta.get("tokenizer") is not None and not isinstance(meta["tokenizer"], str):
        raise damaged("'meta' field 'tokenizer' must be a string or null")
    return meta


def _checked_arrays(arrays: dict, n: int, damaged):
    """words, grams and counts with the shapes and types save() writes, word ids in range."""
    words = arrays["words"]
    if words.ndim != 1 or (words.size and words.dtype.kind != "U"):
        raise damaged("'words' must be a 1-D array of strings")
    words = words.tolist()
    grams, counts = [], []
    for k in range(1, n + 1):
        g, c = arrays[f"grams_{k}"], arrays[f"df_{k}"]
        if g.dtype.kind not in "iu" or g.ndim != 2 or g.shape[1] != k:
            raise damaged(f"'grams_{k}' must be a 2-D integer array with {k} columns, got {g.dtype} {g.shape}")
        if c.dtype.kind != "f" or c.ndim != 1 or len(c) != len(g):
            raise damaged(f"'df_{k}' must be a 1-D float array as long as 'grams_{k}' ({len(g)}), got {c.dtype} {c.shape}")
        if g.size and (g.min() < 0 or g.max() >= len(words)):
            raise damaged(f"'grams_{k}' holds word ids outside 0..{len(words) - 1}")
        if not np.isfinite(c).all() or (c < 0).any():
            raise damaged(f"'df_{k}' holds negative or non-finite counts")
        grams.append(g)
        counts.append(c)
    return words, grams, counts


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


