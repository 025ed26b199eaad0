"""Meteor 1.5's English resources, read in place from the installed pycocoevalcap, and their cache.

From ``meteor-1.5.jar`` (a zip): ``function/english.words``, ``nonbreaking/english.prefixes``,
``synonym/english.synsets`` and ``synonym/english.exceptions``; beside it ``data/paraphrase-en.gz``.
``synonym/english.relations`` is read by the jar but never consulted when scoring, so it is skipped.

The paraphrase table (5.27 M entries, 272 MB of text) is parsed once into a compact cache under
``$CAPEVAL_CACHE`` (default ``~/.cache/capeval``): a vocabulary and CSR int32 arrays, keyed by the
SHA-256 of the jar and of the table, written to a temporary file and renamed into place (readers never
see a partial file; concurrent builders each write their own file and the last rename wins with the
same bytes), rebuilt when either source changes.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capeval._io import ENV_CACHE, atomic_write_bytes, cache_root, file_sha256  # noqa: F401  (ENV_CACHE: re-exported)
from capeval.errors import MeteorUnavailableError

from ._java import java_tokens
from .normalize import parse_nonbreaking_prefixes

JAR_NAME = "meteor-1.5.jar"
PARAPHRASE = Path("data") / "paraphrase-en.gz"
ENV_JAR = "CAPEVAL_METEOR_JAR"
CACHE_FORMAT = 4
JAR_MEMBERS = {
    "function_words": "function/english.words",
    "prefixes": "nonbreaking/english.prefixes",
    "synsets": "synonym/english.synsets",
    "exceptions": "synonym/english.exceptions",
}
INSTALL_HINT = (
    "pip install pycocoevalcap (its meteor-1.5.jar and data/paraphrase-en.gz are Meteor's English "
    f"tables; no Java needed), or set {ENV_JAR} to a meteor-1.5.jar with data/paraphrase-en.gz beside it"
)


HASH_MULTIPLIER = np.uint64(0x100000001B3)


def sequence_hashes(offsets: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """A 64-bit rolling hash of each CSR token sequence (token ids + 1, wrapping arithmetic); stored in
    the cache, and computed the same way for the corpus's n-grams."""
    lengths = np.diff(offsets)
    max_length = int(lengths.max()) if len(lengths) else 0
    shifted = tokens.astype(np.uint64) + np.uint64(1)
    hashes = np.zeros(len(lengths), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(max_length):
            rows = np.flatnonzero(lengths > k)
            hashes[rows] = hashes[rows] * HASH_MULTIPLIER + shifted[offsets[rows] + k]
    return hashes


def find_jar(jar=None) -> Path:
    """The meteor-1.5.jar to read: ``jar``, else ``$CAPEVAL_METEOR_JAR``, else pycocoevalcap's."""
    if jar is None:
        jar = os.environ.get(ENV_JAR) or None
    if jar is None:
        spec = importlib.util.find_spec("pycocoevalcap")
        if spec is None or not spec.submodule_search_locations:
            raise MeteorUnavailableError(f"pycocoevalcap is not installed: {INSTALL_HINT}")
        jar = Path(next(iter(spec.submodule_search_locations))) / "meteor" / JAR_NAME
    jar = Path(jar)
    if jar.is_dir():
        jar = jar / JAR_NAME
    if not jar.is_file():
        raise MeteorUnavailableError(f"no Meteor jar at {jar}: {INSTALL_HINT}")
    table = jar.parent / PARAPHRASE
    if not table.is_file():
        raise MeteorUnavailableError(f"no paraphrase table at {table}: {INSTALL_HINT}")
    try:
        with zipfile.ZipFile(jar) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise MeteorUnavailableError(f"{jar} is not a readable jar ({exc}): {INSTALL_HINT}") from None
    missing = sorted(m for m in JAR_MEMBERS.values() if m not in names)
    if missing:
        raise MeteorUnavailableError(f"{jar} lacks {', '.join(missing)}: {INSTALL_HINT}")
    return jar


def unavailable_reason(jar=None) -> str | None:
    """None when Meteor's English tables can be read and nltk (its stemmer) is installed, else why
    not. No Java is needed."""
    if importlib.util.find_spec("nltk") is None:
        return "nltk is not installed (Meteor's stemmer comes from it): pip install nltk"
    try:
        find_jar(jar)
    except MeteorUnavailableError as exc:
        return str(exc)
    return None


# -- source fingerprints --------------------------------------------------------------------------
def _fingerprint(path: Path, memo_dir: Path) -> str:
    """SHA-256 of a file, remembered against its size, mtime and inode (hashing the 62 MB table on
    every load would cost more than loading the cache)."""
    st = path.stat()
    stamp = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    memo = memo_dir / "hashes.json"
    try:
        known = json.loads(memo.read_text("utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(stamp), str):
        return known[stamp]
    value = file_sha256(path)
    known = {k: v for k, v in (known.items() if isinstance(known, dict) else ()) if not k.startswith(f"{path.resolve()}|")}
    known[stamp] = value
    try:
        atomic_write_bytes(memo, json.dumps(known, indent=0).encode("utf-8"))
    except OSError:
        pass
    return value


# -- parsing --------------------------------------------------------------------------------------
def _java_lines(data: bytes) -> list[str]:
    """``BufferedReader.readLine`` over UTF-8 (malformed bytes replaced): \\n, \\r\\n and \\r end lines."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _parse_synsets(data: bytes) -> dict[str, list[int]]:
    """Word lines alternating with lines of synset ids; a later entry for a word replaces an earlier one."""
    lines = _java_lines(data)
    synsets: dict[str, list[int]] = {}
    for k in range(0, len(lines) - 1, 2):
        synsets[lines[k]] = [int(t) for t in java_tokens(lines[k + 1])]
    return synsets


def _parse_exceptions(data: bytes) -> dict[str, list[str]]:
    """Base-form lines alternating with lines of irregular forms: irregular form -> its base forms."""
    lines = _java_lines(data)
    bases: dict[str, list[str]] = {}
    for k in range(0, len(lines) - 1, 2):
        for form in java_tokens(lines[k + 1]):
            bases.setdefault(form, []).append(lines[k])
    return bases


def _build_paraphrase_arrays(path: Path, progress=None) -> dict[str, np.ndarray]:
    """The table's 3-line records (probability, phrase, paraphrase) as distinct token sequences (CSR
    over a vocabulary) and, per entry in file order, the ids of its phrase and paraphrase."""
    vocab: dict[str, int] = {}
    sequences: dict[str, int] = {}
    seq_tokens: list[int] = []
    seq_offsets: list[int] = [0]
    entry_phrase: list[int] = []
    entry_para: list[int] = []

    def sequence_id(line: str) -> int:
        sid = sequences.get(line)
        if sid is None:
            sid = sequences[line] = len(sequences)
            for token in java_tokens(line):
                tid = vocab.get(token)
                if tid is None:
                    tid = vocab[token] = len(vocab)
                seq_tokens.append(tid)
            seq_offsets.append(len(seq_tokens))
        return sid

    bar = _progress_bar(progress, total=path.stat().st_size, desc="METEOR paraphrase cache", unit="B")
    with open(path, "rb") as raw:
        with gzip.GzipFile(fileobj=raw) as gz:
            reader = io.TextIOWrapper(gz, encoding="utf-8", errors="replace", newline=None)
            position = 0
            while True:
                if bar is not None and raw.tell() - position > (4 << 20):
                    bar.update(raw.tell() - position)
                    position = raw.tell()
                probability = reader.readline()
                if not probability:
                    break
                phrase = reader.readline()
                para = reader.readline()
                if not para and not phrase:
                    raise MeteorUnavailableError(f"{path} ends inside a record: reinstall pycocoevalcap")
                entry_phrase.append(sequence_id(phrase.rstrip("\n")))
                entry_para.append(sequence_id(para.rstrip("\n")))
    if bar is not None:
        bar.update(path.stat().st_size - position)
        bar.close()
    return {
        "vocab": _joined(vocab),
        "seq_offsets": np.asarray(seq_offsets, dtype=np.int64),
        "seq_tokens": np.asarray(seq_tokens, dtype=np.int32),
        "entry_phrase": np.asarray(entry_phrase, dtype=np.int32),
        "entry_para": np.asarray(entry_para, dtype=np.int32),
    }


def _joined(words) -> np.ndarray:
    return np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8)


def _split(array: np.ndarray) -> list[str]:
    text = np.asarray(array).tobytes().decode("utf-8")
    return text.split("\n") if text else []


def _build_cache_arrays(jar: Path, progress=None) -> dict[str, np.ndarray]:
    """Everything slow to derive: the paraphrase table's arrays, the synonym table as CSR, and the
    jar stemmer's stem of every WordNet and paraphrase word (computed with nltk once, here)."""
    from .stem import JarStemmer

    arrays = _build_paraphrase_arrays(jar.parent / PARAPHRASE, progress=progress)
    hashes = sequence_hashes(arrays["seq_offsets"], arrays["seq_tokens"])
    arrays["seq_hash_order"] = np.argsort(hashes, kind="stable").astype(np.int32)
    arrays["seq_hash_sorted"] = hashes[arrays["seq_hash_order"]]
    with zipfile.ZipFile(jar) as z:
        synsets = _parse_synsets(z.read(JAR_MEMBERS["synsets"]))
        exceptions = _parse_exceptions(z.read(JAR_MEMBERS["exceptions"]))
    arrays["syn_words"] = _joined(synsets)
    arrays["syn_offsets"] = np.cumsum([0, *(len(v) for v in synsets.values())], dtype=np.int64)
    arrays["syn_ids"] = np.asarray([i for v in synsets.values() for i in v], dtype=np.int32)
    words = sorted(set(synsets) | set(exceptions) | {b for v in exceptions.values() for b in v} | set(_split(arrays["vocab"])))
    stemmer = JarStemmer()
    arrays["stem_words"] = _joined(words)
    arrays["stems"] = _joined(stemmer.compute(w) for w in words)
    return arrays


def _progress_bar(progress, total: int, desc: str, unit: str = "it"):
    if progress is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return None
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=None if progress is None else not progress)


# -- the loaded resources -------------------------------------------------------------------------
@dataclass
class MeteorTables:
    """Everything the aligner reads, in memory."""

    jar: Path
    function_words: frozenset
    prefixes: dict
    synsets: SynsetTable  # word -> synset ids
    exceptions: dict  # irregular form -> list of base forms
    para_vocab: list  # token strings
    para_seq_offsets: np.ndarray
    para_seq_tokens: np.ndarray
    para_entry_phrase: np.ndarray
    para_entry_para: np.ndarray
    para_seq_hash_sorted: np.ndarray  # the sequences' 64-bit hashes, ascending
    para_seq_hash_order: np.ndarray  # the sequence id of each sorted hash
    stems: dict  # word -> the jar stemmer's stem, for the words known in advance
    cache_file: Path | None = None

    def remember_stems(self, new_stems: dict) -> None:
        """Keep stems computed for other words (an atomic side file of the cache), so that a later run
        on the same captions needs no nltk import."""
        if not new_stems or self.cache_file is None:
            return
        memo = _stem_memo_path(self.cache_file)
        known = _read_stem_memo(memo)
        known.update(new_stems)
        self.stems.update(new_stems)
        try:
            atomic_write_bytes(memo, json.dumps(known, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        except OSError:
            pass


class SynsetTable:
    """``english.synsets`` from the cache: word -> tuple of synset ids, decoded on first access."""

    def __init__(self, words: list[str], offsets: np.ndarray, ids: np.ndarray):
        self._row = {w: k for k, w in enumerate(words)}
        self._offsets = offsets
        self._ids = ids
        self._decoded: dict[str, tuple] = {}

    def __contains__(self, word) -> bool:
        return word in self._row

    def get(self, word, default=None):
        ids = self._decoded.get(word)
        if ids is None:
            k = self._row.get(word)
            if k is None:
                return default
            ids = self._decoded[word] = tuple(self._ids[self._offsets[k] : self._offsets[k + 1]].tolist())
        return ids


def _stem_memo_path(cache_file: Path) -> Path:
    return cache_file.with_name(cache_file.stem + "-stems.json")


def _read_stem_memo(path: Path) -> dict:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _nltk_version() -> str:
    try:
        from importlib.metadata import version

        return version("nltk")
    except Exception:  # noqa: BLE001 - absent or unreadable metadata: stems keyed as unknown
        return "unknown"


def cache_path(jar: Path) -> Path:
    """The cache directory for this jar and table (and nltk, whose stems it holds)."""
    root = cache_root() / "meteor_python"
    parts = (CACHE_FORMAT, _fingerprint(jar, root), _fingerprint(jar.parent / PARAPHRASE, root), _nltk_version())
    key = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]
    return root / f"paraphrase-en-{key}"


MANIFEST = "manifest.json"


def _read_cache(target: Path) -> dict[str, np.ndarray]:
    """The arrays of a complete cache directory, memory-mapped (pages are read as they are used)."""
    names = json.loads((target / MANIFEST).read_text("utf-8"))["arrays"]
    return {name: np.load(target / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in names}


def _write_cache(target: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write every array into a fresh temporary directory, the manifest last, then rename it into
    place: a reader sees a complete cache or none. If another builder got there first, its (identical)
    cache stays; a damaged one is moved aside and replaced."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (tmp / MANIFEST).write_text(json.dumps({"format": CACHE_FORMAT, "arrays": sorted(arrays)}), "utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if target.exists():
                try:
                    _read_cache(target)
                    return  # a concurrent builder's complete cache
                except (OSError, ValueError, KeyError):
                    aside = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".damaged", dir=target.parent))
                    os.replace(target, aside / "cache")
                    shutil.rmtree(aside, ignore_errors=True)
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _load_or_build(jar: Path, progress=None) -> tuple[dict[str, np.ndarray], Path]:
    target = cache_path(jar)
    try:
        return _read_cache(target), target
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable (a foreign or damaged cache): rebuild it
    arrays = _build_cache_arrays(jar, progress=progress)
    try:
        _write_cache(target, arrays)
    except OSError:
        return arrays, target  # a read-only cache directory only costs the rebuild next time
    return _read_cache(target), target


_LOADED: dict[tuple[str, str], MeteorTables] = {}


def load_tables(jar=None, progress=None) -> MeteorTables:
    """Meteor's English tables (built into the cache on first use, then loaded from it; memoized)."""
    jar = find_jar(jar)
    key = (str(jar.resolve()), str(cache_root()))
    if key in _LOADED:
        return _LOADED[key]
    with zipfile.ZipFile(jar) as z:
        raw = {name: z.read(JAR_MEMBERS[name]) for name in ("function_words", "prefixes", "exceptions")}
    arrays, target = _load_or_build(jar, progress=progress)
    stems = dict(zip(_split(arrays["stem_words"]), _split(arrays["stems"])))
    stems.update(_read_stem_memo(_stem_memo_path(target)))
    tables = MeteorTables(
        jar=jar,
        function_words=frozenset(_java_lines(raw["function_words"])),
        prefixes=parse_nonbreaking_prefixes("\n".join(_java_lines(raw["prefixes"]))),
        # The jar reads the synsets with the platform charset; the file is ASCII, so UTF-8 is the same.
        synsets=SynsetTable(_split(arrays["syn_words"]), arrays["syn_offsets"], arrays["syn_ids"]),
        exceptions=_parse_exceptions(raw["exceptions"]),
        para_vocab=_split(arrays["vocab"]),
        para_seq_offsets=arrays["seq_offsets"],
        para_seq_tokens=arrays["seq_tokens"],
        para_entry_phrase=arrays["entry_phrase"],
        para_entry_para=arrays["entry_para"],
        para_seq_hash_sorted=arrays["seq_hash_sorted"],
        para_seq_hash_order=arrays["seq_hash_order"],
        stems=stems,
        cache_file=target,
    )
    _LOADED[key] = tables
    return tables
