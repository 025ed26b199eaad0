"""Lazy, chunked input for the scale engines: shards and globs of JSONL, CSV and Parquet files.

Items are read in the order of the files (shards in the order given, a glob's matches sorted), the
references and the predictions side by side: the two sides must list the same ids in the same order
(as any file written from one id list does), which is what lets both be read lazily. A mismatch is a
:class:`~capeval.errors.MissingIdError` naming the files, lines and ids at fault.

Ids and captions follow :mod:`capeval.formats`' conventions (its field names, id and caption checks).
Formats without a lazy reader (COCO JSON, Karpathy, plain JSON) are read whole by
:mod:`capeval.formats` and then chunked like the others.

The PTB tokenizer looks one caption ahead (a caption's tokens can depend on the next one), so every
chunk carries the first captions of the chunks after it (:func:`with_lookahead`): tokenized this way,
chunk by chunk, every caption gets exactly the tokens of one call over all references (then one over
all predictions), which is what :func:`capeval.evaluate` does.

JSONL inputs of one record per image (a list of references per line) can also be cut into
:class:`RawChunk` s, whole lines of bytes that are parsed and validated where they are scored (a Dask
worker: :func:`parse_raw_chunk`), so that the process reading the files only splits lines. Any input
this cut does not fit (grouped one-caption records, sides of different lengths, lone carriage
returns, non-ASCII blank lines) raises :class:`RawLayoutError`, and the caller reads it item by item
instead, which gives every item and every error exactly.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._corpus import tokenize_reference_lists
from ..errors import DuplicateIdError, FormatError, InputError, MissingIdError
from ..formats import ID_FIELDS, REF_LIST_FIELDS, _check_caption, _check_id, _field, _parse_json

LAZY_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_LAZY_FORMATS = {"jsonl": "jsonl", "ndjson": "jsonl", "nice": "csv", "nice-submission": "csv", "csv": "csv", "parquet": "parquet"}


class RawLayoutError(Exception):
    """The input does not fit raw reading (see the module notes): read it item by item instead.
    Not a :class:`~capeval.errors.CapevalError`: no user sees it."""


@dataclass
class RawSegment:
    """Whole lines ``data`` of the file ``path``, the first of them line ``first_line``."""

    path: Path
    first_line: int
    data: bytes


@dataclass
class RawChunk:
    """``size`` items as unparsed lines: the same ``size`` non-blank lines of each side."""

    references: list[RawSegment]
    predictions: list[RawSegment]
    size: int
    start: int


@dataclass
class Chunk:
    """Consecutive items: ``ids``, reference lists and predictions (raw, or tokenized)."""

    ids: list
    references: list[list[str]]
    predictions: list[str]
    start: int  # position of the first item in the whole input

    def __len__(self) -> int:
        return len(self.ids)


# -- paths ------------------------------------------------------------------------------------------
def expand_paths(spec) -> list[Path]:
    """A path, a glob pattern, or a list of them, as a list of existing files (globs sorted)."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    out: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(glob.glob(text))
            if not matches:
                raise FormatError(f"{text}: no file matches this pattern")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(text))
    for path in out:
        if not path.is_file():
            raise FormatError(f"{path}: no such file")
    if not out:
        raise FormatError("no input file given")
    return out


def _lazy_kind(path: Path, format: str) -> str | None:
    fmt = str(format).strip().lower()
    if fmt != "auto":
        return _LAZY_FORMATS.get(fmt)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return LAZY_SUFFIXES.get(suffixes[-1] if suffixes else "")


def _open_binary(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _open_text(path: Path):
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> FormatError:
    return FormatError(f"{path}: not valid UTF-8 ({exc.reason}); re-save it as UTF-8")


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open_text(path) as fh:
        try:
            yield from enumerate(fh, start=1)
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, exc) from None


def _segment_lines(segment: RawSegment) -> Iterator[tuple[int, str]]:
    """The numbered lines of a segment, split as :func:`_text_lines` splits the file."""
    try:  # lines end at b"\n", never inside a UTF-8 sequence: decoding a segment is decoding its lines
        text = segment.data.decode("utf-8-sig" if segment.first_line == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(segment.path, exc) from None
    return enumerate(io.StringIO(text, newline=""), start=segment.first_line)


# -- records: (id, value, where) --------------------------------------------------------------------
def _jsonl_objects(path: Path, lines: Iterable[tuple[int, str]] | None = None) -> Iterator[tuple[str, object]]:
    for number, line in _text_lines(path) if lines is None else lines:
        if line.strip():
            yield f"line {number}", _parse_json(path, line, where=f", line {number}")


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with _open_text(path) as fh:
        first = fh.readline()
        delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in first and "," not in first) else ","
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter))] if first else []
        if not header:
            raise FormatError(f"{path}: the file is empty")
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        line = 2
        try:
            for row in reader:
                if row and any(f.strip() for f in row):
                    if len(row) != len(header):
                        raise FormatError(f"{path}, line {line}: expected {len(header)} fields ({','.join(header)}), found {len(row)}")
                    yield f"line {line}", dict(zip(header, row))
                line = reader.line_num + 2
        except csv.Error as exc:
            raise FormatError(f"{path}, line {line}: malformed CSV ({exc})") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is part of the dask extra
        raise FormatError(f"{path}: reading Parquet needs pyarrow (pip install 'capeval[dask]')") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise FormatError(f"{path}: not a readable Parquet file ({exc})") from None
    row = 0
    for batch in parquet.iter_batches(batch_size=8192):
        columns = batch.to_pydict()
        for values in zip(*columns.values()):
            row += 1
            yield f"row {row}", dict(zip(columns, values))


def _records(path: Path, kind: str):
    return {"jsonl": _jsonl_objects, "csv": _csv_rows, "parquet": _parquet_rows}[kind](path)


def _record_id(path: Path, obj, where: str):
    if not isinstance(obj, Mapping):
        raise FormatError(f"{path}, {where}: expected an object with an image id and captions, got {type(obj).__name__}")
    id_field = _field(obj, ID_FIELDS)
    if id_field is None:
        raise FormatError(f"{path}, {where}: no image id (expected one of {', '.join(ID_FIELDS)}; found {', '.join(map(str, obj)) or 'nothing'})")
    return _check_id(obj[id_field], path, where)


def reference_records(path: Path, records: Iterable[tuple[str, object]], lists_only: bool = False) -> Iterator[tuple[object, list[str], str]]:
    """``(id, [captions], where)`` per image; consecutive one-caption records of an id are grouped
    (``lists_only``: a one-caption record raises :class:`RawLayoutError`: its group may go on past
    the lines at hand)."""
    current, captions, first_where = None, None, ""
    for where, obj in records:
        key = _record_id(path, obj, where)
        list_field = _field(obj, REF_LIST_FIELDS)
        if list_field is not None:
            value = obj[list_field]
            if not isinstance(value, (list, tuple)):
                raise FormatError(f"{path}, {where}: {list_field!r} must be a list of captions, got {type(value).__name__}")
            if captions is not None:
                yield current, captions, first_where
            listed = list(value)
            if not set(map(type, listed)) <= {str}:  # messages are formatted only on the slow path
                listed = [_check_caption(c, path, f"{where}, {list_field}[{j}]") for j, c in enumerate(value)]
            yield key, listed, where
            current, captions = None, None
            continue
        column = "caption" if "caption" in obj else ("caption_gt" if "caption_gt" in obj else None)
        if lists_only:
            raise RawLayoutError(f"{path}, {where}: one caption per record")
        if column is None:
            raise FormatError(f"{path}, {where}: no caption (expected 'caption', 'caption_gt' or one of {', '.join(REF_LIST_FIELDS)})")
        caption = _check_caption(obj[column], path, where)
        if captions is not None and key == current:
            captions.append(caption)
            continue
        if captions is not None:
            yield current, captions, first_where
        current, captions, first_where = key, [caption], where
    if captions is not None:
        yield current, captions, first_where


def prediction_records(path: Path, records: Iterable[tuple[str, object]]) -> Iterator[tuple[object, str, str]]:
    """``(id, caption, where)`` per image."""
    for where, obj in records:
        key = _record_id(path, obj, where)
        if "caption" not in obj:
            hint = " (a list of captions: is this a references file?)" if _field(obj, REF_LIST_FIELDS) else ""
            raise FormatError(f"{path}, {where}: no 'caption' field{hint}")
        caption = obj["caption"]
        if isinstance(caption, (list, tuple)):
            if len(caption) != 1:
                raise FormatError(f"{path}, {where}: image {key!r} has {len(caption)} captions; one prediction per image is expected")
            caption = caption[0]
        yield key, _check_caption(caption, path, where), where


def _whole_file(path: Path, fmt: str, role: str, split: str | None):
    from ..formats import read_predictions, read_references

    if role == "references":
        refs = read_references(path, fmt, split=split)
        return ((key, list(value), f"id {key!r}") for key, value in refs.items())
    preds = read_predictions(path, fmt)
    return ((key, value, f"id {key!r}") for key, value in preds.items())


def _placed(path: Path, records: Iterable[tuple[object, object, str]]) -> Iterator[tuple[object, object, str]]:
    for key, value, where in records:
        yield key, value, f"{path}, {where}"


def _role_records(path: Path, records: Iterable[tuple[str, object]], role: str, lists_only: bool = False):
    if role == "references":
        return reference_records(path, records, lists_only)
    return prediction_records(path, records)


def _side(paths: list[Path], fmt: str, role: str, split: str | None) -> Iterator[tuple[object, object, str]]:
    for path in paths:
        kind = _lazy_kind(path, fmt)
        records = _whole_file(path, fmt, role, split) if kind is None else _role_records(path, _records(path, kind), role)
        empty = True
        for item in _placed(path, records):
            empty = False
            yield item
        if empty:
            raise FormatError(f"{path}: no {role} found")


def _aligned(refs: Iterator[tuple], preds: Iterator[tuple]) -> Iterator[tuple[object, object, object, str]]:
    """``(id, references, prediction, where)``: the two sides item by item, their ids checked."""
    for key, references, ref_where in refs:
        pred_item = next(preds, None)
        if pred_item is None:
            raise MissingIdError(f"{ref_where}: id {key!r} has references but the predictions ended (they must list the same ids in the same order)")
        pred_key, prediction, pred_where = pred_item
        if pred_key != key and str(pred_key) != str(key):
            raise MissingIdError(
                f"{pred_where}: prediction for id {pred_key!r} where the references ({ref_where}) have id {key!r}; "
                "the stream and dask engines read both sides in the same id order (sort both, or use --engine memory)"
            )
        yield key, references, prediction, ref_where
    extra = next(preds, None)
    if extra is not None:
        raise MissingIdError(f"{extra[2]}: prediction for id {extra[0]!r} after the last reference (the predictions hold more ids)")


# -- aligned items ----------------------------------------------------------------------------------
class ItemSource:
    """Re-iterable aligned items ``(id, references, prediction, where)`` from files or mappings."""

    def __init__(self, refs, preds, *, refs_format: str = "auto", preds_format: str = "auto", split: str | None = None):
        self.in_memory = isinstance(refs, Mapping) or isinstance(preds, Mapping)
        if self.in_memory:
            if not (isinstance(refs, Mapping) and isinstance(preds, Mapping)):
                raise InputError("refs and preds must both be mappings, or both be files (paths or globs)")
            from .._inputs import align_ids

            self._ids = align_ids(refs, preds, strict=True)
            self._refs, self._preds = refs, preds
        else:
            self.refs_paths = expand_paths(refs)
            self.preds_paths = expand_paths(preds)
            self.refs_format, self.preds_format, self.split = refs_format, preds_format, split

    def items(self) -> Iterator[tuple[object, object, object, str]]:
        if self.in_memory:
            for key in self._ids:
                yield key, self._refs[key], self._preds[key], f"id {key!r}"
            return
        refs = _side(self.refs_paths, self.refs_format, "references", self.split)
        preds = _side(self.preds_paths, self.preds_format, "predictions", None)
        yield from _aligned(refs, preds)

    @property
    def reads_raw(self) -> bool:
        """Whether :meth:`raw_chunks` applies: files, JSONL on both sides."""
        if self.in_memory:
            return False
        kinds = {_lazy_kind(p, self.refs_format) for p in self.refs_paths} | {_lazy_kind(p, self.preds_format) for p in self.preds_paths}
        return kinds == {"jsonl"}

    def raw_chunks(self, size: int) -> Iterator[RawChunk]:
        """:class:`RawChunk` s of ``size`` items (the last one shorter), or :class:`RawLayoutError`."""
        if size < 1:
            raise ValueError(f"chunk size must be at least 1, got {size}")
        refs, preds = _raw_side(self.refs_paths, size), _raw_side(self.preds_paths, size)
        start = 0
        for ref_part in refs:
            pred_part = next(preds, None)
            if pred_part is None or pred_part[1] != ref_part[1]:
                raise RawLayoutError("the sides hold different numbers of records")
            yield RawChunk(ref_part[0], pred_part[0], ref_part[1], start)
            start += ref_part[1]
        if next(preds, None) is not None:
            raise RawLayoutError("the sides hold different numbers of records")

    def chunks(self, size: int, ids_seen: IdRegistry | None = None) -> Iterator[Chunk]:
        """Validated chunks of ``size`` items (the last one shorter)."""
        if size < 1:
            raise ValueError(f"chunk size must be at least 1, got {size}")
        buffer: list = []
        start = 0
        for item in self.items():
            buffer.append(item)
            if len(buffer) == size:
                yield _validated(buffer, start, ids_seen)
                start += size
                buffer = []
        if buffer:
            yield _validated(buffer, start, ids_seen)
        elif not start:
            raise InputError("no items to score")


def _raw_side(paths: list[Path], size: int) -> Iterator[tuple[list[RawSegment], int]]:
    """``(segments, n)``: the next ``n = size`` non-blank lines of the files (the last time fewer), in
    segments of whole lines, blank lines included (they keep the line numbers)."""
    segments: list[RawSegment] = []
    count = 0
    for path in paths:
        lines: list[bytes] = []
        first = 1
        in_file = 0
        with _open_binary(path) as fh:
            for number, line in enumerate(fh, start=1):
                if not lines:
                    first = number
                lines.append(line)
                if line.strip():
                    count += 1
                    in_file += 1
                    if count == size:
                        segments.append(_raw_segment(path, first, lines))
                        yield segments, count
                        segments, lines, count = [], [], 0
            if lines:
                segments.append(_raw_segment(path, first, lines))
        if not in_file:
            raise RawLayoutError(f"{path}: no records")
    if count:
        yield segments, count


def _raw_segment(path: Path, first: int, lines: list[bytes]) -> RawSegment:
    data = b"".join(lines)
    if data.count(b"\r") != data.count(b"\r\n"):  # a lone CR ends a line for the text reader, not here
        raise RawLayoutError(f"{path}: carriage returns without line feeds")
    return RawSegment(path, first, data)


def _exactly(records: Iterable[tuple], n: int) -> Iterator[tuple]:
    """``records``, which must be ``n``: other counts (non-ASCII blank lines, say) raise RawLayoutError."""
    count = 0
    for record in records:
        count += 1
        if count > n:
            raise RawLayoutError("more records than non-blank lines")
        yield record
    if count != n:
        raise RawLayoutError("fewer records than non-blank lines")


def parse_raw_chunk(raw: RawChunk) -> Chunk:
    """The :class:`Chunk` that reading these lines item by item gives: the same ids, captions, checks
    and errors (in the same order), or :class:`RawLayoutError`."""

    def side(segments: list[RawSegment], role: str) -> Iterator[tuple]:
        for seg in segments:
            yield from _placed(seg.path, _role_records(seg.path, _jsonl_objects(seg.path, _segment_lines(seg)), role, lists_only=True))

    refs = _exactly(side(raw.references, "references"), raw.size)
    preds = _exactly(side(raw.predictions, "predictions"), raw.size)
    return _validated(list(_aligned(refs, preds)), raw.start, None)


def _validated(items: list, start: int, ids_seen: IdRegistry | None) -> Chunk:
    """Checked as evaluate() checks its input (errors name the id)."""
    from .._inputs import prediction, reference_lists

    ids = [item[0] for item in items]
    if ids_seen is not None:
        ids_seen.add(ids)
    references = reference_lists({item[0]: item[1] for item in items}, ids)
    predictions = [p if type(p) is str else prediction(p, key) for key, _, p, _ in items]
    return Chunk(ids, references, predictions, start)


class IdRegistry:
    """Every id once: a 64-bit fingerprint per id (8 bytes, not the ids), checked at the end; a
    fingerprint seen twice is confirmed (and the ids named) by reading the ids again."""

    def __init__(self, source: ItemSource):
        self.source = source
        self._parts: list[np.ndarray] = []

    @staticmethod
    def _fingerprints(ids: Sequence) -> np.ndarray:
        import hashlib

        def fingerprint(key) -> int:
            return int.from_bytes(hashlib.blake2b(str(key).encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True)

        return np.fromiter(map(fingerprint, ids), dtype=np.int64, count=len(ids))

    def add(self, ids: Sequence) -> None:
        self.add_fingerprints(self._fingerprints(ids))

    def add_fingerprints(self, fingerprints: np.ndarray) -> None:
        """Ids fingerprinted elsewhere (:func:`chunk_summary` on a worker)."""
        self._parts.append(fingerprints)

    def check(self) -> None:
        if self.source.in_memory:  # a mapping cannot hold an id twice
            return
        everything = np.sort(np.concatenate(self._parts)) if self._parts else np.zeros(0, np.int64)
        twice = np.unique(everything[1:][everything[1:] == everything[:-1]])
        if not len(twice):
            return
        places: dict[str, list[str]] = {}
        for key, _, _, where in self.source.items():
            if self._fingerprints([key])[0] in twice:
                places.setdefault(str(key), []).append(where)
        dups = {k: v for k, v in places.items() if len(v) > 1}
        if dups:  # else only fingerprints collided
            shown = "; ".join(f"{k!r} at {' and '.join(v[:3])}" for k, v in list(dups.items())[:5])
            raise DuplicateIdError(f"{len(dups)} id(s) appear more than once ({shown}); one entry per image is expected")


# -- look-ahead tokenization ------------------------------------------------------------------------
def _head(captions: Iterable[str]) -> tuple[list[str], bool]:
    """The first ``captions`` the tokenizer can look at: up to the first non-blank one, plus one more
    (so whether a line break follows it is known); and whether that end was reached (else: all)."""
    out: list[str] = []
    found = False
    for caption in captions:
        out.append(caption)
        if found:
            return out, True
        found = bool(caption.strip())  # str.strip() drops at least what the lexer skips
    return out, False


def _following(pending: deque, upcoming: Iterator[Chunk], side: Callable[[Chunk], Iterable[str]]) -> Iterator[str]:
    """The captions of the chunks after ``pending[0]``, reading chunks ahead only as they are needed."""
    index = 1
    while True:
        if index == len(pending):
            nxt = next(upcoming, None)
            if nxt is None:
                return
            pending.append(nxt)
        yield from side(pending[index])
        index += 1


def _lookahead(pending: deque, upcoming: Iterator[Chunk], side: Callable[[Chunk], Iterable[str]]) -> list[str]:
    return _head(_following(pending, upcoming, side))[0]


def _flat_references(chunk: Chunk) -> Iterator[str]:
    for refs in chunk.references:
        yield from refs


def _predictions(chunk: Chunk) -> list[str]:
    return chunk.predictions


def with_lookahead(chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, list[str], list[str]]]:
    """``(chunk, references after it, predictions after it)``: what :func:`tokenize_chunk` needs."""
    upcoming = iter(chunks)
    pending: deque = deque()
    while True:
        if not pending:
            nxt = next(upcoming, None)
            if nxt is None:
                return
            pending.append(nxt)
        refs_after = _lookahead(pending, upcoming, _flat_references)
        preds_after = _lookahead(pending, upcoming, _predictions)
        yield pending.popleft(), refs_after, preds_after


def chunk_summary(chunk: Chunk) -> tuple[np.ndarray, list[str], list[str]]:
    """What the reader of a chunk parsed elsewhere needs: its ids' fingerprints (:class:`IdRegistry`)
    and the :func:`_head` of its references and of its predictions (the look-ahead of the chunks before)."""
    return IdRegistry._fingerprints(chunk.ids), _head(_flat_references(chunk))[0], _head(chunk.predictions)[0]


def lookahead_from_heads(heads: Iterable[list[str]], last: bool) -> list[str] | None:
    """The look-ahead of a chunk from the heads of the chunks after it, in order; ``None`` while more
    are needed (``last``: no chunk follows those given)."""
    captions: list[str] = []
    for head in heads:  # a head that does not reach the end it looks for holds its whole chunk
        captions.extend(head)
        lookahead, complete = _head(captions)
        if complete:
            return lookahead
    return _head(captions)[0] if last else None


def tokenize_chunk(chunk: Chunk, refs_after: list[str], preds_after: list[str], tokenizer: str) -> Chunk:
    """The chunk with its captions tokenized exactly as in one call over the whole input."""
    if tokenizer == "none":
        return chunk
    from ..tokenize import tokenize

    references = tokenize_reference_lists(chunk.references, tokenizer, refs_after)
    predictions = tokenize(chunk.predictions + preds_after, tokenizer)[: len(chunk.predictions)]
    return Chunk(chunk.ids, references, predictions, chunk.start)
