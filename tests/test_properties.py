"""Property-based tests (Hypothesis): random captions, ids and files, written, mutated and scored.

Invariants, each checked on generated inputs rather than hand-picked ones:

* the CLI never prints a traceback and exits only with the documented codes (docs/cli.md);
* scores read from a file (every format, plain or gzip) equal the same dicts scored through the API;
* a corrupted file (invalid UTF-8, a NUL byte, a truncated JSON document or gzip stream, a damaged
  deflate stream, a duplicated or missing prediction) never yields a score: exit 3, nothing on stdout.

Profiles: ``ci`` (the default: a fixed seed, about a minute on two cores) and ``long``
(``HYPOTHESIS_PROFILE=long``: ten times the examples, for tox or a night run).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import capeval  # noqa: E402
from capeval.cli import main  # noqa: E402
from capeval.errors import CapevalError  # noqa: E402

_COMMON = dict(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], database=None, print_blob=True)
settings.register_profile("ci", max_examples=100, deadline=5000, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=1000, deadline=None, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DOCUMENTED_EXIT_CODES = {0, 2, 3, 4, 5, 130}
METRICS = ["bleu", "rouge_l", "cider_d"]  # METEOR's JVM is too slow for hundreds of examples


# -- strategies -----------------------------------------------------------------------------------
WORDS = ["a", "dog", "cat", "on", "the", "grass", "red", "bus", "Man", "riding", "café", "東京", "naïve", "ok", "it's", "n't", "-"]
PUNCTUATION = [",", ".", "!", "?", '"', "'", ";", ":", "(", ")", "&", "$", "/", "\\", "\t", "\u2028", "\r"]


@st.composite
def captions(draw, newlines: bool = True):
    """Caption-like text with the characters that trouble files: quotes, commas, tabs, CR, LF, unicode."""
    pieces = draw(st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(PUNCTUATION), st.text(min_size=1, max_size=3)), max_size=12))
    text = " ".join(pieces)
    text = text.replace("\x00", "").replace("\ufeff", "")  # NUL and a BOM are file-level matters, tested apart
    if not newlines:
        text = text.replace("\n", " ").replace("\r", " ")
    return text


ids = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8),
)


@st.composite
def datasets(draw, max_refs: int = 3, newlines: bool = True):
    """({id: [references]}, {id: prediction}) with ids unique as text (1 and "1" are one image)."""
    keys = draw(st.lists(ids, min_size=1, max_size=6, unique_by=str))
    refs = {k: draw(st.lists(captions(newlines), min_size=1, max_size=max_refs)) for k in keys}
    preds = {k: draw(captions(newlines)) for k in keys}
    return refs, preds


# -- writers, independent of capeval's ------------------------------------------------------------
def write_references(path: Path, refs: dict, fmt: str) -> None:
    if fmt == "json":
        text = json.dumps({str(k): v for k, v in refs.items()})
    elif fmt == "coco":
        anns = [{"image_id": k, "id": n, "caption": c} for n, (k, c) in enumerate((k, c) for k, v in refs.items() for c in v)]
        text = json.dumps({"images": [{"id": k} for k in refs], "annotations": anns})
    elif fmt == "jsonl":
        text = "".join(json.dumps({"image_id": k, "captions": v}) + "\n" for k, v in refs.items())
    elif fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")  # so a bare \r in a caption is quoted
        writer.writerow(["public_id", "caption_gt"])
        writer.writerows([k, v[0]] for k, v in refs.items())
        text = buf.getvalue()
    else:
        raise AssertionError(fmt)
    path.write_bytes(text.encode("utf-8"))


def write_predictions(path: Path, preds: dict, fmt: str) -> None:
    if fmt == "json":
        text = json.dumps({str(k): v for k, v in preds.items()})
    elif fmt == "coco-results":
        text = json.dumps([{"image_id": k, "caption": v} for k, v in preds.items()])
    elif fmt == "jsonl":
        text = "".join(json.dumps({"image_id": k, "caption": v}) + "\n" for k, v in preds.items())
    elif fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")  # so a bare \r in a caption is quoted
        writer.writerow(["public_id", "caption"])
        writer.writerows([k, v] for k, v in preds.items())
        text = buf.getvalue()
    else:
        raise AssertionError(fmt)
    path.write_bytes(text.encode("utf-8"))


SUFFIX = {"json": ".json", "coco": ".json", "coco-results": ".json", "jsonl": ".jsonl", "csv": ".csv"}


def gzip_file(path: Path) -> Path:
    packed = path.with_name(path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    path.unlink()
    return packed


# -- running the CLI in-process -------------------------------------------------------------------
def run(*args) -> tuple[int, str, str]:
    """cli.main with its stdout and stderr captured; any escaping exception fails the property."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def assert_well_behaved(code: int, out: str, err: str) -> None:
    assert code in DOCUMENTED_EXIT_CODES, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code != 0:
        assert out == "", out
        lines = err.splitlines()
        assert lines and lines[-1].startswith(("capeval: error:", "capeval score: error:", "capeval compare: error:", "capeval leaderboard: error:")), err


def api_scores(refs: dict, preds: dict):
    """evaluate() on the dicts as the file holds them (CSV and JSON keys are text); None if it refuses them."""
    try:
        return capeval.evaluate(refs, preds, METRICS).scores
    except CapevalError:
        return None


def file_keys(refs: dict, preds: dict, ref_fmt: str, pred_fmt: str):
    """The ids as the files give them back: JSON object keys and CSV cells are strings."""
    text_refs = ref_fmt in ("json", "csv")
    refs = {(str(k) if text_refs else k): v for k, v in refs.items()}
    preds = {(str(k) if text_refs else k): v for k, v in preds.items()}  # matched to the references' ids
    return refs, preds


# -- properties -----------------------------------------------------------------------------------
REF_FORMATS = ["json", "coco", "jsonl", "csv"]
PRED_FORMATS = ["json", "coco-results", "jsonl", "csv"]


@given(data=datasets(), ref_fmt=st.sampled_from(REF_FORMATS), pred_fmt=st.sampled_from(PRED_FORMATS), packed=st.booleans())
def test_scores_from_files_equal_scores_from_dicts(tmp_path_factory, data, ref_fmt, pred_fmt, packed):
    refs, preds = data
    if ref_fmt == "csv":
        refs = {k: v[:1] for k, v in refs.items()}  # NICE ground truth: one reference per image
    tmp = tmp_path_factory.mktemp("roundtrip")
    ref_path, pred_path = tmp / f"refs{SUFFIX[ref_fmt]}", tmp / f"preds{SUFFIX[pred_fmt]}"
    write_references(ref_path, refs, ref_fmt)
    write_predictions(pred_path, preds, pred_fmt)
    if packed:
        ref_path, pred_path = gzip_file(ref_path), gzip_file(pred_path)
    code, out, err = run("score", ref_path, pred_path, "--metrics", *METRICS, "--format", "json")
    assert_well_behaved(code, out, err)
    expected = api_scores(*file_keys(refs, preds, ref_fmt, pred_fmt))
    if expected is None:  # e.g. every reference of an image is empty: refused alike
        assert code == 3, err
        return
    assert code == 0, err
    assert json.loads(out)["scores"] == expected  # the same floats, bit for bit


@given(data=datasets(max_refs=1, newlines=False), n_sets=st.integers(1, 3))
def test_plain_text_files_equal_the_api(tmp_path_factory, data, n_sets):
    refs, preds = data
    tmp = tmp_path_factory.mktemp("txt")
    keys = list(refs)
    ref_paths = []
    for s in range(n_sets):
        path = tmp / f"ref{s}.txt"
        path.write_text("".join(refs[k][0] + ("" if s == 0 else " x") + "\n" for k in keys), encoding="utf-8", newline="")
        ref_paths.append(path)
    hyp = tmp / "hyp.txt"
    hyp.write_text("".join(preds[k] + "\n" for k in keys), encoding="utf-8", newline="")
    code, out, err = run("score", *ref_paths, hyp, "--metrics", *METRICS, "--format", "json")
    assert_well_behaved(code, out, err)
    by_line = {i: [refs[k][0] + ("" if s == 0 else " x") for s in range(n_sets)] for i, k in enumerate(keys, start=1)}
    expected = api_scores(by_line, {i: preds[k] for i, k in enumerate(keys, start=1)})
    if expected is None:
        assert code == 3, err
    else:
        assert code == 0 and json.loads(out)["scores"] == expected, err


@st.composite
def corruptions(draw):
    """(format, packed, mutate) where mutate(bytes) -> bytes makes any such file unreadable."""
    fmt = draw(st.sampled_from(PRED_FORMATS))
    packed = draw(st.booleans())
    kind = draw(st.sampled_from(["invalid-utf8", "nul", "truncate", "duplicate", "drop"] + (["flip-deflate"] if packed else [])))
    where = draw(st.floats(0, 1, exclude_max=True))
    return fmt, packed, kind, where


def corrupt(raw: bytes, fmt: str, kind: str, where: float) -> bytes | None:
    """`raw` (uncompressed) damaged so no reader may accept it; None where `kind` cannot apply."""
    lines = raw.split(b"\n")
    if fmt == "csv" and b'"' in raw and kind in ("duplicate", "drop"):
        return None  # quoted captions may span lines: whole rows are not whole lines
    if kind == "invalid-utf8":  # 0xff starts no UTF-8 sequence
        pos = int(where * (len(raw) + 1))
        return raw[:pos] + b"\xff" + raw[pos:]
    if kind == "nul":
        pos = int(where * (len(raw) + 1))
        return raw[:pos] + b"\x00" + raw[pos:]
    if kind == "truncate":
        if fmt in ("json", "coco-results"):  # any proper prefix of a JSON document is invalid or empty
            return raw[: int(where * len(raw.rstrip()))]
        if fmt == "jsonl":  # cut inside a line's object, before its closing brace
            body = [line for line in lines if line]
            index = int(where * len(body))
            line = body[index]
            return b"\n".join(body[:index] + [line[: 1 + int(where * (len(line) - 2))]])
        return None  # CSV has no end marker: a cut between rows is a shorter valid file
    if kind == "duplicate":  # a prediction given twice: a duplicate id
        body = [line for line in lines if line]
        if fmt in ("jsonl", "csv"):
            start = 1 if fmt == "csv" else 0
            if len(body) <= start:
                return None
            index = start + int(where * (len(body) - start))
            return b"\n".join(body[: index + 1] + [body[index]] + body[index + 1 :]) + b"\n"
        return None
    if kind == "drop":  # a prediction missing: strict scoring refuses it
        body = [line for line in lines if line]
        if fmt in ("jsonl", "csv"):
            start = 1 if fmt == "csv" else 0
            if len(body) - start < 2:
                return None
            index = start + int(where * (len(body) - start))
            return b"\n".join(body[:index] + body[index + 1 :]) + b"\n"
        return None
    return raw  # flip-deflate is applied to the compressed bytes


@given(data=datasets(max_refs=2), corruption=corruptions())
def test_a_corrupted_file_never_yields_a_score(tmp_path_factory, data, corruption):
    refs, preds = data
    fmt, packed, kind, where = corruption
    tmp = tmp_path_factory.mktemp("corrupt")
    ref_path = tmp / "refs.json"
    write_references(ref_path, refs, "json")
    pred_path = tmp / f"preds{SUFFIX[fmt]}"
    write_predictions(pred_path, preds, fmt)
    assume(api_scores(*file_keys(refs, preds, "json", fmt)) is not None)  # the intact file scores
    damaged = corrupt(pred_path.read_bytes(), fmt, kind, where)
    assume(damaged is not None)
    if packed:
        damaged = gzip.compress(damaged, mtime=0)
        if kind == "flip-deflate":  # any changed byte after the 10-byte header breaks inflate or the CRC
            data_bytes = bytearray(damaged)
            pos = 10 + int(where * (len(data_bytes) - 10))
            data_bytes[pos] ^= 0x5A
            damaged = bytes(data_bytes)
        pred_path = pred_path.with_name(pred_path.name + ".gz")
    pred_path.write_bytes(damaged)
    code, out, err = run("score", ref_path, pred_path, "--metrics", *METRICS, "--format", "json")
    assert_well_behaved(code, out, err)
    assert code == 3, (kind, err)
    assert pred_path.name in err or "refs.json" in err  # the message names the file at fault


@given(
    content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))),
    suffix=st.sampled_from([".json", ".jsonl", ".csv", ".txt", ".json.gz", ".npz", ""]),
    side=st.sampled_from(["refs", "preds"]),
)
def test_arbitrary_bytes_never_crash_the_cli(tmp_path_factory, content, suffix, side):
    tmp = tmp_path_factory.mktemp("bytes")
    good = tmp / "good.csv"
    good.write_text("public_id,caption\n1,a dog\n2,a cat\n", encoding="utf-8")
    junk = tmp / f"junk{suffix}"
    junk.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    files = [junk, good] if side == "refs" else [good, junk]
    assert_well_behaved(*run("score", *files, "--metrics", *METRICS))
    if suffix == ".npz":
        assert_well_behaved(*run("df", "info", junk))


_DF_FILE: dict = {}


def good_df_file(tmp_path_factory) -> tuple[bytes, str]:
    """A small document-frequency file (bytes, sha256), built once."""
    if not _DF_FILE:
        from capeval.df import DocumentFrequencies

        refs = {i: [f"a {w} on the {v}", f"the {v} near a {w}"] for i, (w, v) in enumerate([("dog", "grass"), ("cat", "mat"), ("bus", "road")])}
        df = DocumentFrequencies.from_references(refs)
        path = df.save(tmp_path_factory.mktemp("df") / "good.npz")
        _DF_FILE.update(data=path.read_bytes(), sha256=df.sha256)
    return _DF_FILE["data"], _DF_FILE["sha256"]


@given(kind=st.sampled_from(["truncate", "flip", "insert"]), where=st.floats(0, 1, exclude_max=True), bits=st.integers(1, 255))
def test_a_damaged_df_file_is_refused_or_intact(tmp_path_factory, kind, where, bits):
    """Any damage to a document-frequency file is refused (exit 3), or missed only where it changes
    nothing the file holds (a timestamp in a zip header): the same content hash comes back."""
    data, sha256 = good_df_file(tmp_path_factory)
    pos = int(where * len(data))
    if kind == "truncate":
        damaged = data[:pos]
    elif kind == "flip":
        damaged = data[:pos] + bytes([data[pos] ^ bits]) + data[pos + 1 :]
    else:
        damaged = data[:pos] + bytes([bits]) + data[pos:]
    path = tmp_path_factory.mktemp("damaged-df") / "df.npz"
    path.write_bytes(damaged)
    code, out, err = run("df", "info", path, "--format", "json")
    assert_well_behaved(code, out, err)
    assert code in (0, 3), err
    if code == 0:
        assert json.loads(out)["sha256"] == sha256


JSON_KEYS = st.sampled_from(["image_id", "id", "caption", "captions", "images", "annotations", "1", "x", "sentences", "raw", "split", "category"])


def json_containers(children):
    """Lists and objects of `children`, with the keys capeval's readers look for."""
    return st.lists(children, max_size=4) | st.dictionaries(JSON_KEYS, children, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    json_containers,
    max_leaves=20,
)


@given(doc=json_values, lines=st.booleans(), side=st.sampled_from(["refs", "preds"]), fmt=st.sampled_from(["auto", "coco", "coco-results", "json", "jsonl", "karpathy"]))
def test_arbitrary_json_never_crashes_the_cli(tmp_path_factory, doc, lines, side, fmt):
    """Well-formed JSON of any shape: read or refused with a typed error, never an internal error."""
    tmp = tmp_path_factory.mktemp("json")
    good = tmp / "good.json"
    good.write_text(json.dumps({"1": ["a dog"], "2": ["a cat"]}), encoding="utf-8")
    path = tmp / ("doc.jsonl" if lines else "doc.json")
    items = doc if (lines and isinstance(doc, list)) else [doc]
    path.write_text("\n".join(json.dumps(x) for x in items) if lines else json.dumps(doc), encoding="utf-8")
    files = [path, good] if side == "refs" else [good, path]
    option = "--refs-format" if side == "refs" else "--preds-format"
    assert_well_behaved(*run("score", *files, "--metrics", *METRICS, option, fmt))


OPTION_VALUES = st.one_of(
    st.integers(-5, 5).map(str), st.sampled_from(["nan", "inf", "-inf", "0", "1e309", "0.5", "1", "x", "", "1e-300"]), st.floats().map(repr)
)


@given(option=st.sampled_from(["--n-resamples", "--alpha", "--n", "--sigma", "--scale", "--seed"]), value=OPTION_VALUES)
def test_option_values_are_accepted_or_usage_errors(tmp_path_factory, option, value):
    tmp = tmp_path_factory.mktemp("options")
    refs = tmp / "refs.json"
    refs.write_text(json.dumps({"1": ["a dog on grass"], "2": ["a cat"], "3": ["a red bus"]}), encoding="utf-8")
    preds = tmp / "preds.json"
    preds.write_text(json.dumps({"1": "a dog", "2": "a cat on a mat", "3": "a bus"}), encoding="utf-8")
    code, out, err = run("score", refs, preds, "--metrics", *METRICS, "--ci", "--n-resamples", "20", f"{option}={value}", "--format", "json")
    assert_well_behaved(code, out, err)
    assert code in (0, 2), err
    if code == 0:  # valid JSON: no NaN or Infinity anywhere
        json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON output"))
