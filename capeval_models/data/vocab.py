"""Word vocabulary: build from training captions, encode to padded id rows, decode back to text.

Layout follows the CS231n coco_captioning assignment: ``<NULL>`` = 0, ``<START>`` = 1, ``<END>`` = 2,
``<UNK>`` = 3, then the words by decreasing count (ties alphabetical). An encoded caption is
``<START> w1 .. wk <END> <NULL> ...`` with at most ``max_words`` words (longer captions are truncated).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from capeval._io import atomic_write_text
from capeval.tokenize import tokenize

from .errors import DataFormatError

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (NULL, START, END, UNK)
NULL_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3
MAX_WORDS = 16

_WORD_RE = re.compile(r"[a-z0-9]+|'[a-z]+")


def simple_split(text: str) -> str:
    """Lower-case and split off punctuation: ``"A dog's ball."`` -> ``"a dog 's ball"``.

    Everything that is not a letter, a digit or a PTB-style clitic (``'s``, ``'t``...) is dropped, which
    is what the PTB tokenizer plus pycocoevalcap's punctuation filter does to ordinary captions.
    """
    return " ".join(_WORD_RE.findall(text.lower()))


def tokenize_captions(texts: Sequence[str], tokenizer: str = "simple") -> list[list[str]]:
    """Tokenize captions into word lists.

    ``"simple"`` (the default) lower-cases and splits with :func:`simple_split` and hands the result to
    capeval's ``tokenize(..., "none")``; any other name (``"ptb"``, ``"corenlp"``) goes to capeval's
    tokenizer as is, after lower-casing.
    """
    texts = list(texts)
    if tokenizer == "simple":
        out = tokenize([simple_split(t) for t in texts], "none")
    else:
        out = tokenize([t.lower() for t in texts], tokenizer)
    return [s.split() for s in out]


class Vocabulary:
    """Bidirectional word <-> id map with the four special tokens at ids 0-3."""

    def __init__(self, idx_to_word: Sequence[str], tokenizer: str = "simple"):
        idx_to_word = list(idx_to_word)
        if tuple(idx_to_word[:4]) != SPECIAL_TOKENS:
            raise DataFormatError(
                f"a vocabulary must start with {list(SPECIAL_TOKENS)}, got {idx_to_word[:4]}"
            )
        word_to_idx: dict[str, int] = {}
        for i, w in enumerate(idx_to_word):
            if not isinstance(w, str):
                raise DataFormatError(f"vocabulary entry {i} is not a string: {w!r}")
            if w in word_to_idx:
                raise DataFormatError(f"vocabulary word {w!r} appears twice (ids {word_to_idx[w]} and {i})")
            word_to_idx[w] = i
        self.idx_to_word: list[str] = idx_to_word
        self.word_to_idx: dict[str, int] = word_to_idx
        self.tokenizer = tokenizer

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        captions: Iterable[str],
        min_count: int = 1,
        tokenizer: str = "simple",
        max_words: int | None = None,
    ) -> Vocabulary:
        """Vocabulary of the words that occur at least ``min_count`` times in ``captions``.

        With ``max_words`` set, only the first ``max_words`` words of each caption are counted (the words
        an encoded caption can hold).
        """
        counts: Counter[str] = Counter()
        for words in tokenize_captions(list(captions), tokenizer):
            counts.update(words[:max_words] if max_words else words)
        for tok in SPECIAL_TOKENS:
            counts.pop(tok, None)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL_TOKENS) + words, tokenizer=tokenizer)

    @classmethod
    def from_json(cls, obj: dict, source: str = "<vocabulary>") -> Vocabulary:
        """From ``{"idx_to_word": [...], ...}`` (CS231n's coco2014_vocab.json layout or ours)."""
        if not isinstance(obj, dict) or "idx_to_word" not in obj:
            raise DataFormatError(f"{source}: expected a JSON object with key 'idx_to_word'")
        vocab = cls(obj["idx_to_word"], tokenizer=obj.get("tokenizer", "simple"))
        w2i = obj.get("word_to_idx")
        if w2i is not None:
            if not isinstance(w2i, dict):
                raise DataFormatError(f"{source}: 'word_to_idx' is not a JSON object")
            bad = [w for w, i in w2i.items() if vocab.word_to_idx.get(w) != i]
            if bad or len(w2i) != len(vocab):
                raise DataFormatError(
                    f"{source}: 'word_to_idx' disagrees with 'idx_to_word' "
                    f"({len(w2i)} vs {len(vocab)} entries; mismatched words {format_words(bad)})"
                )
        return vocab

    @classmethod
    def load(cls, path) -> Vocabulary:
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_json(obj, source=str(path))

    def to_json(self) -> dict:
        return {"idx_to_word": self.idx_to_word, "word_to_idx": self.word_to_idx, "tokenizer": self.tokenizer}

    def save(self, path) -> None:
        """Write ``{"idx_to_word", "word_to_idx", "tokenizer"}`` as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_json(), ensure_ascii=False, indent=0) + "\n")

    # ------------------------------------------------------------------ mapping
    def __len__(self) -> int:
        return len(self.idx_to_word)

    def __contains__(self, word: str) -> bool:
        return word in self.word_to_idx

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.idx_to_word == other.idx_to_word

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} entries)"

    @property
    def null_id(self) -> int:
        return NULL_ID

    @property
    def start_id(self) -> int:
        return START_ID

    @property
    def end_id(self) -> int:
        return END_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def words_to_ids(self, words: Sequence[str]) -> list[int]:
        get = self.word_to_idx.get
        return [get(w, UNK_ID) for w in words]

    def encode(self, text: str, max_words: int = MAX_WORDS, pad: bool = True) -> np.ndarray:
        """``<START> w1 .. wk <END>`` (k <= max_words) as int32; padded with <NULL> to max_words + 2."""
        words = tokenize_captions([text], self.tokenizer)[0]
        if pad:
            return self.encode_tokens([words], max_words)[0]
        return np.asarray([START_ID, *self.words_to_ids(words[:max_words]), END_ID], dtype=np.int32)

    def encode_batch(self, texts: Sequence[str], max_words: int = MAX_WORDS) -> np.ndarray:
        """Encode many captions into an ``(M, max_words + 2)`` int32 array."""
        return self.encode_tokens(tokenize_captions(list(texts), self.tokenizer), max_words)

    def encode_tokens(self, token_lists: Sequence[Sequence[str]], max_words: int = MAX_WORDS) -> np.ndarray:
        """Encode already-tokenized captions into an ``(M, max_words + 2)`` int32 array."""
        out = np.full((len(token_lists), max_words + 2), NULL_ID, dtype=np.int32)
        get = self.word_to_idx.get
        for r, words in enumerate(token_lists):
            words = list(words)[:max_words]
            out[r, 0] = START_ID
            out[r, 1 : len(words) + 1] = [get(w, UNK_ID) for w in words]
            out[r, len(words) + 1] = END_ID
        return out

    def decode(self, ids, strip_unk: bool = False) -> str | list[str]:
        """Ids back to text: stops at <END>, skips <NULL> and <START>.

        A 2-D array (or list of sequences) gives one string per row.
        """
        arr = np.asarray(ids)
        if arr.ndim == 2:
            return [self._decode_row(row, strip_unk) for row in arr]
        if arr.ndim != 1:
            raise ValueError(f"decode expects a 1-D or 2-D id array, got shape {arr.shape}")
        return self._decode_row(arr, strip_unk)

    def _decode_row(self, row, strip_unk: bool) -> str:
        return ids_to_text(row, self.idx_to_word, strip_unk=strip_unk)


def ids_to_text(ids, idx_to_word, strip_unk: bool = False, *, end_id: int = END_ID,
                skip_ids: tuple = (NULL_ID, START_ID)) -> str:
    """The one ids -> text rule of capeval_models: words up to (excluding) the first <END>, <NULL> and
    <START> skipped (and <UNK> with ``strip_unk``). ``idx_to_word``: a list, a dict id -> word, an object
    with ``idx_to_word``, or None (the ids are joined as numbers). ``end_id``/``skip_ids`` serve models
    built on a vocabulary whose special tokens sit elsewhere (CS231n's word_to_idx may be any dict)."""
    itow = getattr(idx_to_word, "idx_to_word", idx_to_word)
    skip = set(skip_ids) | ({UNK_ID} if strip_unk else set())
    words = []
    for i in ids.tolist() if hasattr(ids, "tolist") else ids:
        i = int(i)
        if i == end_id:
            break
        if i in skip:
            continue
        if itow is None:
            words.append(str(i))
            continue
        word = itow.get(i) if isinstance(itow, dict) else itow[i] if 0 <= i < len(itow) else None
        if word is None:
            raise ValueError(f"id {i} is outside the vocabulary (size {len(itow)})")
        words.append(str(word))
    return " ".join(words)


def format_words(words, limit: int = 10) -> str:
    words = list(words)
    more = f" ... and {len(words) - limit} more" if len(words) > limit else ""
    return "[" + ", ".join(repr(w) for w in words[:limit]) + more + "]"
