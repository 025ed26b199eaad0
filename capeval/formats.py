"""Caption files in and out: COCO, NICE, Karpathy, plain JSON and JSON lines.

    refs = read_references("nice-val-5k.csv")          # References: a Mapping {id: [captions]}
    preds = read_predictions("submission.csv")          # Predictions: a Mapping {id: caption}
    preds = match_ids(refs, preds)                      # 123 and "123" are the same image
    capeval.evaluate(refs, preds)

Formats (``format=`` names; ``"auto"`` detects them from the extension and the content):

==================  ======================================================================  ========
name                content                                                                 used for
==================  ======================================================================  ========
``coco``            COCO annotations JSON: ``{"images": [...], "annotations": [{"image_id",  refs
                    "caption"}]}``
``coco-results``    COCO results JSON: ``[{"image_id", "caption"}]``                         preds
                    (as references: every entry adds a caption to its image)                 (refs)
``nice``            NICE ground-truth CSV: ``public_id,caption_gt[,category]``              refs
``nice-submission`` NICE submission CSV: ``public_id,caption``                              preds
``karpathy``        Karpathy's ``dataset_coco.json``: ``images[].sentences[].raw``,          refs
                    ``split``, ``cocoid`` (else ``imgid``); ``split=`` picks a split
``json``            ``{id: [captions]}`` / ``{id: caption}``                                 both
``jsonl``           one object per line: ``image_id`` (or ``id``, ``public_id``) and          both
                    ``caption`` (or, for references, ``captions``); optional ``category``
``txt``             one caption per line, id = line number (from 1); several reference        both
                    files with :func:`read_text_references` (line i of each is item i)
==================  ======================================================================  ========

Files are UTF-8, with or without a byte-order mark (gzip-compressed files are read too). Anything
that cannot be read as given raises :class:`~capeval.errors.FormatError` (or its relatives
:class:`~capeval.errors.DuplicateIdError`, :class:`~capeval.errors.InvalidCaptionError`) with a
one-line message naming the file and the line, entry or id at fault: malformed rows, duplicate ids,
empty files, truncated JSON and encoding errors are reported, never skipped.

Ids keep the type the file gives them (COCO: ints, CSV and JSON keys: strings). :func:`match_ids`
re-keys predictions onto the references' ids when the two differ only in type (``123`` vs
``"123"``); ids that differ otherwise (``"0123"`` vs ``123``) are left alone and reported as missing
by :func:`capeval.evaluate`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ._inputs import check_caption, prediction
from ._io import atomic_write
from .errors import DuplicateIdError, FormatError, format_ids

FORMATS = ("coco", "coco-results", "nice", "nice-submission", "karpathy", "json", "jsonl", "txt")
_FORMAT_ALIASES = {
    "auto": "auto",
    "coco": "coco",
    "coco-annotations": "coco",
    "coco-results": "coco-results",
    "results": "coco-results",
    "nice": "nice",
    "nice-gt": "nice",
    "nice-submission": "nice-submission",
    "submission": "nice-submission",
    "csv": "csv",
    "karpathy": "karpathy",
    "json": "json",
    "jsonl": "jsonl",
    "txt": "txt",
    "text": "txt",
    "ndjson": "jsonl",
}
ID_FIELDS = ("image_id", "public_id", "id")
REF_LIST_FIELDS = ("captions", "references", "refs")
_CSV_REF_COLUMNS = ("caption_gt", "caption")
_MAX_SHOWN = 5


# -- containers -----------------------------------------------------------------------------------
class _CaptionSet(Mapping):
    """A read-only mapping of captions with where it came from."""

    def __init__(self, captions: dict, *, categories: dict | None = None, format: str = "memory", source: str = "<memory>"):
        self.captions = captions
        self.categories = categories or None
        self.format = format
        self.source = str(source)

    def __getitem__(self, key):
        return self.captions[key]

    def __iter__(self):
        return iter(self.captions)

    def __len__(self) -> int:
        return len(self.captions)

    def __contains__(self, key) -> bool:
        return key in self.captions

    @property
    def ids(self) -> list:
        return list(self.captions)

    def __repr__(self) -> str:
        cats = f", {len(set(self.categories.values()))} categories" if self.categories else ""
        return f"{type(self).__name__}({len(self)} ids{cats}, format={self.format!r}, source={self.source!r})"


class References(_CaptionSet):
    """``{id: [reference captions]}`` read from a file, with optional ``categories`` ``{id: name}``."""

    @property
    def n_captions(self) -> int:
        return sum(len(v) for v in self.captions.values())


class Predictions(_CaptionSet):
    """``{id: caption}`` read from a file."""


# -- reading bytes --------------------------------------------------------------------------------
def _read_text(path: Path, blank_ok: bool = False) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged deflate stream
            raise FormatError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise FormatError(f"{path}: the file is UTF-16/UTF-32 encoded (it starts with a byte-order mark); capeval reads UTF-8: re-save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FormatError(
            f"{path}, line {line}, column {column}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
            "the file is probably Latin-1 or Windows-1252: re-save it as UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise FormatError(f"{path}, line {line}: NUL byte in a text file (UTF-16 without byte-order mark, or binary data?)")
    if not text if blank_ok else not text.strip():  # a blank line in a .txt file is an empty caption
        raise FormatError(f"{path}: the file is empty")
    return text


def _no_duplicate_keys(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):  # the rare case: find the key that repeats
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)  # one decoder: json.loads builds one per call


class _DuplicateKey(Exception):
    def __init__(self, key):
        self.key = key


def _too_deep(path: Path, where: str = "") -> FormatError:
    return FormatError(f"{path}{where}: JSON nested too deeply to read (thousands of levels of [ or {{); not a caption file")


def _parse_json(path: Path, text: str, where: str = ""):
    try:
        return _JSON.decode(text)
    except RecursionError:  # the C decoder recurses once per nesting level
        raise _too_deep(path, where) from None
    except _DuplicateKey as exc:
        raise DuplicateIdError(f"{path}{where}: key {exc.key!r} appears twice in the same JSON object") from None
    except json.JSONDecodeError as exc:
        if where:
            raise FormatError(f"{path}{where}: invalid JSON ({exc.msg}, column {exc.colno})") from None
        hint = ""
        runs_to_end = exc.msg.startswith("Unterminated string") and '"' not in text[exc.pos + 1 :]
        if exc.pos >= len(text.rstrip()) - 1 or runs_to_end:
            hint = "; the file ends too early: is it truncated?"
        elif exc.msg.startswith("Extra data"):
            hint = "; several JSON values: is it JSON lines (format 'jsonl')?"
        raise FormatError(f"{path}, line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}){hint}") from None


def _looks_like_jsonl(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].lstrip().startswith("{"):
        return False
    try:
        json.loads(lines[0])
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _suffix(path: Path) -> str:
    """The extension that names the format (``.csv`` for ``x.csv.gz``), lower case."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return suffixes[-1] if suffixes else ""


def is_plain_text(path) -> bool:
    """True for ``.txt`` (and ``.txt.gz``) files: one caption per line, line i is item i."""
    return _suffix(Path(path)) == ".txt"


def _sniff(path: Path, text: str) -> str:
    """'json', 'jsonl', 'csv' or 'txt' from the extension, else from the content."""
    suffix = _suffix(path)
    if suffix == ".txt":
        return "txt"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    head = text.lstrip()[:1]
    if head in "{[":
        try:
            json.loads(text)
            return "json"
        except RecursionError:
            return "json"  # _parse_json reports it
        except json.JSONDecodeError as exc:
            if exc.msg.startswith("Extra data") and _looks_like_jsonl(text):
                return "jsonl"
            return "json"  # report the JSON error
    return "csv"


# -- ids and captions -----------------------------------------------------------------------------
def _check_id(value, path: Path, where: str):
    if isinstance(value, bool):
        raise FormatError(f"{path}, {where}: id must be an int or a string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, str):
        if not value.strip():
            raise FormatError(f"{path}, {where}: empty id")
        return value.strip()
    raise FormatError(f"{path}, {where}: id must be an int or a string, got {type(value).__name__} {value!r:.40}")


def _check_caption(value, path: Path, where: str) -> str:
    if type(value) is str:  # the common case first: the ABC check below is slow per caption
        return value
    if isinstance(value, Mapping) and "caption" in value:  # {"caption": ...} entries (pycocoevalcap's gts)
        value = value["caption"]
    return check_caption(value, f"{path}, {where}")  # the one caption check (capeval._inputs)


class _IdRegistry:
    """Detects duplicates by canonical form (so 1 and "1" in one file collide), keeps first places."""

    def __init__(self, path: Path):
        self.path = path
        self.first: dict[str, tuple[object, str]] = {}
        self.dups: dict[str, tuple[object, list[str]]] = {}

    def add(self, key, where: str) -> None:
        canon = str(key)
        if canon in self.first:
            first_key, first_where = self.first[canon]
            self.dups.setdefault(canon, (first_key, [first_where]))[1].append(where)
        else:
            self.first[canon] = (key, where)

    def check(self, what: str = "id") -> None:
        if not self.dups:
            return
        shown = "; ".join(f"{k!r} at {', '.join(v[:3])}{' ...' if len(v) > 3 else ''}" for k, v in list(self.dups.values())[:_MAX_SHOWN])
        more = f" ... and {len(self.dups) - _MAX_SHOWN} more" if len(self.dups) > _MAX_SHOWN else ""
        count = f"{len(self.dups)} {what}s appear" if len(self.dups) > 1 else f"{what} {next(iter(self.dups.values()))[0]!r} appears"
        raise DuplicateIdError(f"{self.path}: {count} more than once ({shown}{more}); one entry per image is expected")


def _category(value, path: Path, where: str):
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise FormatError(f"{path}, {where}: category must be a string, got {type(value).__name__}")


def _set_category(categories: dict, key, value, path: Path, where: str) -> None:
    if value is None:
        return
    old = categories.setdefault(key, value)
    if old != value:
        raise FormatError(f"{path}, {where}: image {key!r} has two categories, {old!r} and {value!r}")


# -- records: lists of objects (COCO annotations and results, JSON lines) ------------------------
def _field(obj: Mapping, names: Iterable[str]):
    for name in names:
        if name in obj:
            return name
    return None


def _references_from_records(records: Iterator[tuple[str, object]], path: Path, fmt: str) -> References:
    refs: dict = {}
    categories: dict = {}
    registry = _IdRegistry(path)  # only for records that carry a whole reference list
    first_seen: dict[str, tuple[object, str]] = {}  # id as text -> (id, where): 1 and "1" must not split an image
    for where, obj in records:
        if not isinstance(obj, Mapping):
            raise FormatError(f"{path}, {where}: expected an object with an image id and captions, got {type(obj).__name__}")
        id_field = _field(obj, ID_FIELDS)
        if id_field is None:
            raise FormatError(f"{path}, {where}: no image id (expected one of {', '.join(ID_FIELDS)}; found {', '.join(map(str, obj)) or 'nothing'})")
        key = _check_id(obj[id_field], path, where)
        seen_key, seen_where = first_seen.setdefault(str(key), (key, where))
        if seen_key != key:
            raise DuplicateIdError(
                f"{path}, {where}: id {key!r} is also written {seen_key!r} ({seen_where}); "
                "one image must have one id: write it the same way everywhere"
            )
        list_field = _field(obj, REF_LIST_FIELDS)
        if list_field is not None:
            value = obj[list_field]
            if not isinstance(value, list):
                raise FormatError(f"{path}, {where}: {list_field!r} must be a list of captions, got {type(value).__name__}")
            registry.add(key, where)
            refs.setdefault(key, []).extend(_check_caption(c, path, f"{where}, {list_field}[{j}]") for j, c in enumerate(value))
        elif "caption" in obj:
            refs.setdefault(key, []).append(_check_caption(obj["caption"], path, where))
        else:
            raise FormatError(f"{path}, {where}: no caption (expected 'caption' or one of {', '.join(REF_LIST_FIELDS)})")
        _set_category(categories, key, _category(obj.get("category"), path, where), path, where)
    registry.check("image id")
    if not refs:
        raise FormatError(f"{path}: no references found")
    return References(refs, categories=categories, format=fmt, source=path)


def _predictions_from_records(records: Iterator[tuple[str, object]], path: Path, fmt: str) -> Predictions:
    preds: dict = {}
    registry = _IdRegistry(path)
    for where, obj in records:
        if not isinstance(obj, Mapping):
            raise FormatError(f"{path}, {where}: expected an object {{\"image_id\", \"caption\"}}, got {type(obj).__name__}")
        id_field = _field(obj, ID_FIELDS)
        if id_field is None:
            raise FormatError(f"{path}, {where}: no image id (expected one of {', '.join(ID_FIELDS)}; found {', '.join(map(str, obj)) or 'nothing'})")
        if "caption" not in obj:
            hint = " (a list of captions: is this a references file?)" if _field(obj, REF_LIST_FIELDS) else ""
            raise FormatError(f"{path}, {where}: no 'caption' field{hint}")
        key = _check_id(obj[id_field], path, where)
        caption = obj["caption"]
        if isinstance(caption, list):
            if len(caption) != 1:
                raise FormatError(f"{path}, {where}: image {key!r} has {len(caption)} captions; one prediction per image is expected")
            caption = caption[0]
        registry.add(key, where)
        preds[key] = _check_caption(caption, path, where)
    registry.check("image id")
    if not preds:
        raise FormatError(f"{path}: no predictions found")
    return Predictions(preds, format=fmt, source=path)


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[str, object]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield f"line {number}", _parse_json(path, line, where=f", line {number}")


def _list_records(items: list, name: str = "entry") -> Iterator[tuple[str, object]]:
    for index, item in enumerate(items):
        yield f"{name} [{index}]", item


# -- JSON documents -------------------------------------------------------------------------------
def _json_kind(obj) -> str:
    if isinstance(obj, list):
        return "coco-results"
    if isinstance(obj, Mapping):
        if isinstance(obj.get("annotations"), list):
            return "coco"
        images = obj.get("images")
        if isinstance(images, list) and images and isinstance(images[0], Mapping) and "sentences" in images[0]:
            return "karpathy"
        return "json"
    return "unknown"


def _coco_annotations(obj, path: Path) -> References:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("annotations"), list):
        raise FormatError(f"{path}: not a COCO annotations file (no 'annotations' list)")
    refs = _references_from_records(_list_records(obj["annotations"], "annotations"), path, "coco")
    images = obj.get("images")
    if not isinstance(images, list):
        return refs
    image_ids = []
    for index, image in enumerate(images):
        if not isinstance(image, Mapping) or "id" not in image:
            raise FormatError(f"{path}, images [{index}]: an image entry needs an 'id'")
        image_ids.append(_check_id(image["id"], path, f"images [{index}]"))
    listed = set(image_ids)
    unlisted = [i for i in refs if i not in listed]
    if unlisted:
        raise FormatError(f"{path}: {len(unlisted)} annotations refer to image ids missing from 'images': {format_ids(unlisted, _MAX_SHOWN)}")
    uncaptioned = [i for i in image_ids if i not in refs.captions]
    if uncaptioned:
        raise FormatError(f"{path}: {len(uncaptioned)} images in 'images' have no caption annotation: {format_ids(uncaptioned, _MAX_SHOWN)}")
    ordered = {i: refs.captions[i] for i in dict.fromkeys(image_ids)}  # the images' order, as pycocotools' getImgIds
    return References(ordered, categories=refs.categories, format="coco", source=path)


def _karpathy(obj, path: Path, split: str | None) -> References:
    images = obj.get("images") if isinstance(obj, Mapping) else None
    if not isinstance(images, list):
        raise FormatError(f"{path}: not a Karpathy dataset file (no 'images' list)")
    refs: dict = {}
    registry = _IdRegistry(path)
    splits = {}
    for index, image in enumerate(images):
        where = f"images [{index}]"
        if not isinstance(image, Mapping) or not isinstance(image.get("sentences"), list):
            raise FormatError(f"{path}, {where}: an image entry needs a 'sentences' list")
        image_split = image.get("split")
        splits[image_split] = splits.get(image_split, 0) + 1
        if split is not None and image_split != split:
            continue
        id_field = _field(image, ("cocoid", "imgid", "id"))
        if id_field is None:
            raise FormatError(f"{path}, {where}: no image id ('cocoid' or 'imgid')")
        key = _check_id(image[id_field], path, where)
        registry.add(key, where)
        captions = []
        for j, sentence in enumerate(image["sentences"]):
            if not isinstance(sentence, Mapping) or not isinstance(sentence.get("raw"), str):
                raise FormatError(f"{path}, {where}, sentences [{j}]: expected an object with a 'raw' string")
            captions.append(sentence["raw"])
        refs[key] = captions
    registry.check("image id")
    if not refs:
        known = ", ".join(f"{s} ({n})" for s, n in splits.items())
        raise FormatError(f"{path}: no image in split {split!r}; the file has splits {known}")
    return References(refs, format="karpathy", source=path)


def _plain_references(obj, path: Path) -> References:
    if not isinstance(obj, Mapping):
        raise FormatError(f"{path}: expected a JSON object {{id: [captions]}}, got {type(obj).__name__}")
    refs = {}
    for key, value in obj.items():
        where = f"id {key!r}"
        if isinstance(value, str):
            refs[_check_id(key, path, where)] = [value]
        elif isinstance(value, list):
            refs[_check_id(key, path, where)] = [_check_caption(c, path, f"{where}, reference {j}") for j, c in enumerate(value)]
        else:
            raise FormatError(f"{path}, {where}: expected a list of captions or a caption, got {type(value).__name__}")
    if not refs:
        raise FormatError(f"{path}: no references found (empty JSON object)")
    return References(refs, format="json", source=path)


def _plain_predictions(obj, path: Path) -> Predictions:
    if not isinstance(obj, Mapping):
        raise FormatError(f"{path}: expected a JSON object {{id: caption}}, got {type(obj).__name__}")
    preds = {}
    for key, value in obj.items():
        where = f"id {key!r}"
        if isinstance(value, list):
            if len(value) != 1:
                raise FormatError(f"{path}, {where}: {len(value)} captions; one prediction per image is expected")
            value = value[0]
        preds[_check_id(key, path, where)] = _check_caption(value, path, where)
    if not preds:
        raise FormatError(f"{path}: no predictions found (empty JSON object)")
    return Predictions(preds, format="json", source=path)


# -- CSV ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _no_field_limit():
    """Lift the csv module's 131,072-character field limit while reading (JSON has none either).

    The limit is process-wide state: it is restored afterwards so other users of ``csv`` keep theirs.
    """
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, row)]) with blank lines skipped."""
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in first_line and "," not in first_line) else ","
    with _no_field_limit():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise FormatError(f"{path}, line 1: malformed CSV header ({_csv_problem(exc)})") from None
        header = [h.strip() for h in header]
        rows = []
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if _UNCLOSED_QUOTE in str(exc):
                    opened = _line_of_unclosed_quote(text, start, delimiter)
                    raise FormatError(f"{path}, line {opened}: malformed CSV (a quote opened here is never closed; the file ends inside the quoted field)") from None
                raise FormatError(f"{path}, line {start}: malformed CSV ({_csv_problem(exc)})") from None
            if row and any(field.strip() for field in row):
                if len(row) != len(header):
                    raise FormatError(
                        f"{path}, line {start}: expected {len(header)} fields ({','.join(header)}), found {len(row)}"
                        + (" (an unquoted comma in a caption?)" if len(row) > len(header) else "")
                    )
                rows.append((start, row))
            start = reader.line_num + 1
    return header, rows


_UNCLOSED_QUOTE = "unexpected end of data"  # strict mode's EOF inside a quoted field
_LINE_END = re.compile(r"\r\n|\r|\n")  # what csv.reader's line_num counts


def _csv_problem(exc: csv.Error) -> str:
    if _UNCLOSED_QUOTE in str(exc):
        return "a quote opened in this row is never closed; the file ends inside the quoted field"
    return str(exc)


def _line_of_unclosed_quote(text: str, row_line: int, delimiter: str) -> int:
    """The line where the quote that never closes opens, scanning from the row that starts at `row_line`.

    A row may span lines through earlier, closed quoted fields, so the row's first line is not
    always the quote's.
    """
    row_start = pos = _row_offset(text, row_line)
    opened, in_quotes, field_start = pos, False, True
    while pos < len(text):
        ch = text[pos]
        if in_quotes:
            if ch == '"':
                if text.startswith('"', pos + 1):  # "" is an escaped quote
                    pos += 1
                else:
                    in_quotes = False
        elif ch == '"' and field_start:
            in_quotes, opened = True, pos
        field_start = not in_quotes and ch in (delimiter, "\n", "\r")
        pos += 1
    return row_line + len(_LINE_END.findall(text, row_start, opened)) if in_quotes else row_line


def _row_offset(text: str, line: int) -> int:
    """Offset of the first character of `line` (numbered from 1, as csv.reader counts)."""
    pos = 0
    for number, match in enumerate(_LINE_END.finditer(text), start=2):
        if number > line:
            break
        pos = match.end()
    return pos


def _column(header: list[str], names: Iterable[str]) -> int | None:
    lowered = [h.lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _require(path: Path, header, names, expected: str) -> int:
    index = _column(header, names)
    if index is None:
        raise FormatError(f"{path}, line 1: missing column {' or '.join(repr(n) for n in names)}; expected header {expected}, found {','.join(header) or '(nothing)'}")
    return index


def _csv_references(path: Path, text: str, fmt: str) -> References:
    header, rows = _csv_rows(path, text)
    expected = "public_id,caption_gt[,category]"
    id_col = _require(path, header, ("public_id",) if fmt == "nice" else ID_FIELDS, expected)
    cap_col = _require(path, header, ("caption_gt",) if fmt == "nice" else _CSV_REF_COLUMNS, expected)
    cat_col = _column(header, ("category",))
    refs, categories = {}, {}
    registry = _IdRegistry(path)
    for line, row in rows:
        where = f"line {line}"
        key = _check_id(row[id_col], path, where)
        registry.add(key, where)
        refs[key] = [row[cap_col]]
        if cat_col is not None:
            _set_category(categories, key, _category(row[cat_col], path, where), path, where)
    registry.check("id")
    if not refs:
        raise FormatError(f"{path}: a header but no rows")
    return References(refs, categories=categories, format=fmt, source=path)


def _csv_predictions(path: Path, text: str) -> Predictions:
    header, rows = _csv_rows(path, text)
    expected = "public_id,caption"
    id_col = _require(path, header, ID_FIELDS, expected)
    cap_col = _column(header, ("caption",))
    if cap_col is None:
        hint = " (this looks like NICE ground truth, not a submission)" if _column(header, ("caption_gt",)) is not None else ""
        raise FormatError(f"{path}, line 1: missing column 'caption'; expected header {expected}, found {','.join(header)}{hint}")
    preds = {}
    registry = _IdRegistry(path)
    for line, row in rows:
        where = f"line {line}"
        key = _check_id(row[id_col], path, where)
        registry.add(key, where)
        preds[key] = row[cap_col]
    registry.check("id")
    if not preds:
        raise FormatError(f"{path}: a header but no rows")
    return Predictions(preds, format="nice-submission", source=path)


# -- plain text: one caption per line (nlg-eval, sacrebleu) ---------------------------------------
def _text_lines(text: str) -> dict[int, str]:
    """``{line number: caption}``, numbered from 1; a final newline does not start another item.

    Only ``\n`` (and ``\r\n``) end a line: ``str.splitlines`` would also split on characters such as
    U+2028 or form feeds inside a caption and shift every later line onto the wrong item.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return {number: line for number, line in enumerate(lines, start=1)}


def read_text_references(paths) -> References:
    """Several plain-text reference sets, one file per set: ``{line number: [line of each file]}``.

    Every file must have the same number of lines (line i of each file describes item i); a
    difference is a :class:`~capeval.errors.FormatError` naming each file and its count.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise FormatError("no reference file given")
    sets = [_text_lines(_read_text(path, blank_ok=True)) for path in paths]
    counts = [len(lines) for lines in sets]
    if len(set(counts)) > 1:
        shown = ", ".join(f"{path} has {count}" for path, count in zip(paths, counts))
        raise FormatError(f"plain-text reference files must have one line per item, the same number of lines each: {shown}")
    refs = {key: [lines[key] for lines in sets] for key in sets[0]}
    return References(refs, format="txt", source=", ".join(map(str, paths)))


def check_same_line_count(refs: References, preds: Predictions) -> None:
    """Plain-text predictions and references must align line by line; name both files and counts."""
    if len(refs) != len(preds):
        raise FormatError(
            f"{preds.source} has {len(preds)} lines but the references ({refs.source}) have {len(refs)}: "
            "line i of each file must be item i"
        )


# -- public readers -------------------------------------------------------------------------------
def _normalize_format(format: str) -> str:
    name = str(format).strip().lower()
    if name not in _FORMAT_ALIASES:
        raise ValueError(f"unknown format {format!r}; expected 'auto' or one of {', '.join(FORMATS)}")
    return _FORMAT_ALIASES[name]


def detect_format(path, role: str = "references") -> str:
    """The format ``read_references`` / ``read_predictions`` would use for ``path``."""
    path = Path(path)
    text = _read_text(path)
    return _detect(path, text, role)[0]


def _detect(path: Path, text: str, role: str):
    kind = _sniff(path, text)
    if kind == "csv":
        header = [h.strip().lower() for h in text.split("\n", 1)[0].replace("\t", ",").split(",")]
        if role == "references":
            return ("nice" if "caption_gt" in header else "csv"), None
        return "nice-submission", None
    if kind in ("jsonl", "txt"):
        return kind, None
    obj = _parse_json(path, text)
    return _json_kind(obj), obj


def read_references(path, format: str = "auto", *, split: str | None = None) -> References:
    """Read ``{id: [reference captions]}`` (and categories where the file has them).

    ``format``: ``auto`` or one of :data:`FORMATS`; ``split``: for Karpathy files, the split to keep
    (``"test"``, ``"val"``, ...; all images by default).
    """
    path = Path(path)
    fmt = _normalize_format(format)
    text = _read_text(path, blank_ok=fmt == "txt" or (fmt == "auto" and is_plain_text(path)))
    obj = None
    if fmt == "auto":
        fmt, obj = _detect(path, text, "references")
    if fmt in ("nice", "csv", "nice-submission"):
        return _csv_references(path, text, "nice" if fmt == "nice" else "csv")
    if fmt == "txt":
        return References({key: [line] for key, line in _text_lines(text).items()}, format="txt", source=path)
    if fmt == "jsonl":
        return _references_from_records(_jsonl_records(path, text), path, "jsonl")
    if obj is None:
        obj = _parse_json(path, text)
    if fmt == "coco":
        return _coco_annotations(obj, path)
    if fmt == "karpathy":
        return _karpathy(obj, path, split)
    if fmt == "coco-results":
        if not isinstance(obj, list):
            raise FormatError(f"{path}: expected a JSON list of {{\"image_id\", \"caption\"}} objects, got {type(obj).__name__}")
        return _references_from_records(_list_records(obj), path, "coco-results")
    if fmt == "json":
        return _plain_references(obj, path)
    raise FormatError(f"{path}: unrecognised content (a JSON {type(obj).__name__}); name the format with format=")


def read_predictions(path, format: str = "auto") -> Predictions:
    """Read ``{id: caption}``: one predicted caption per image; duplicates are an error."""
    path = Path(path)
    fmt = _normalize_format(format)
    text = _read_text(path, blank_ok=fmt == "txt" or (fmt == "auto" and is_plain_text(path)))
    obj = None
    if fmt == "auto":
        fmt, obj = _detect(path, text, "predictions")
    if fmt in ("nice-submission", "csv", "nice"):
        return _csv_predictions(path, text)
    if fmt == "txt":
        return Predictions(_text_lines(text), format="txt", source=path)
    if fmt == "jsonl":
        return _predictions_from_records(_jsonl_records(path, text), path, "jsonl")
    if obj is None:
        obj = _parse_json(path, text)
    if fmt == "coco-results":
        if not isinstance(obj, list):
            raise FormatError(f"{path}: expected a JSON list of {{\"image_id\", \"caption\"}} objects, got {type(obj).__name__}")
        return _predictions_from_records(_list_records(obj), path, "coco-results")
    if fmt == "json":
        return _plain_predictions(obj, path)
    if fmt in ("coco", "karpathy"):
        raise FormatError(f"{path}: a {fmt} references file, not predictions (one caption per image: COCO results JSON or a NICE submission CSV)")
    raise FormatError(f"{path}: unrecognised content; name the format with format=")


# -- ids ------------------------------------------------------------------------------------------
def match_ids(refs: Mapping, preds: Mapping):
    """``preds`` re-keyed onto the references' ids where they differ only in type (``1`` vs ``"1"``).

    Returns ``preds`` itself when nothing needs changing. Other mismatches are left for
    :func:`capeval.evaluate` to report.
    """
    if all(k in refs for k in preds):
        return preds
    by_text: dict[str, object] = {}
    for key in refs:
        other = by_text.setdefault(str(key), key)
        if other != key:
            raise DuplicateIdError(f"references hold both {other!r} and {key!r}: ids must be unique as text")
    out: dict = {}
    for key, value in preds.items():
        target = key if key in refs else by_text.get(str(key), key)
        if target in out:
            raise DuplicateIdError(f"predictions hold both {target!r} and {key!r}, the same id as text")
        out[target] = value
    if isinstance(preds, _CaptionSet):
        return Predictions(out, categories=preds.categories, format=preds.format, source=preds.source)
    return out


# -- writers --------------------------------------------------------------------------------------
class _CsvWriter:
    """``csv.writer`` with ``\n`` line ends that also quotes fields holding a ``\r``.

    With ``lineterminator="\n"`` the csv module (before Python 3.13) leaves a bare ``\r`` unquoted,
    which every CSV reader, capeval's included, takes for a line break: the row would come back cut
    in two. Such rows are written with every field quoted instead.
    """

    def __init__(self, fh):
        self._minimal = csv.writer(fh, lineterminator="\n")
        self._quoted = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row) -> None:
        (self._quoted if any("\r" in str(field) for field in row) else self._minimal).writerow(row)


def write_coco_results(path, preds: Mapping) -> Path:
    """``[{"image_id", "caption"}]`` (ids as given), written atomically."""
    path = Path(path)
    rows = [{"image_id": key, "caption": prediction(value, key)} for key, value in preds.items()]
    with atomic_write(path) as fh:
        json.dump(rows, fh, ensure_ascii=False)
    return path


def write_nice_submission(path, preds: Mapping) -> Path:
    """NICE submission CSV ``public_id,caption``, written atomically."""
    path = Path(path)
    with atomic_write(path, newline="") as fh:
        writer = _CsvWriter(fh)
        writer.writerow(["public_id", "caption"])
        for key, value in preds.items():
            writer.writerow([key, prediction(value, key)])
    return path


def write_nice_references(path, refs: Mapping, categories: Mapping | None = None) -> Path:
    """NICE ground-truth CSV ``public_id,caption_gt[,category]`` (one reference per image)."""
    path = Path(path)
    categories = categories if categories is not None else getattr(refs, "categories", None)
    with atomic_write(path, newline="") as fh:
        writer = _CsvWriter(fh)
        writer.writerow(["public_id", "caption_gt"] + (["category"] if categories else []))
        for key, value in refs.items():
            row = [key, prediction(value, key)]
            if categories:
                row.append(categories.get(key, ""))
            writer.writerow(row)
    return path


def write_coco_annotations(path, refs: Mapping) -> Path:
    """COCO annotations JSON (``images``, ``annotations``), written atomically."""
    path = Path(path)
    images, annotations = [], []
    for key, value in refs.items():
        images.append({"id": key})
        for caption in [value] if isinstance(value, str) else value:
            annotations.append({"image_id": key, "id": len(annotations) + 1, "caption": caption})
    with atomic_write(path) as fh:
        json.dump({"images": images, "annotations": annotations}, fh, ensure_ascii=False)
    return path


def write_json(path, captions: Mapping) -> Path:
    """Plain JSON ``{id: [captions]}`` / ``{id: caption}`` (ids become strings), written atomically."""
    path = Path(path)
    with atomic_write(path) as fh:
        json.dump({str(k): v for k, v in captions.items()}, fh, ensure_ascii=False)
    return path


__all__ = [
    "FORMATS",
    "Predictions",
    "References",
    "check_same_line_count",
    "detect_format",
    "is_plain_text",
    "match_ids",
    "read_predictions",
    "read_references",
    "read_text_references",
    "write_coco_annotations",
    "write_coco_results",
    "write_json",
    "write_nice_references",
    "write_nice_submission",
]
