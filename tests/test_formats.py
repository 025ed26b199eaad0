"""capeval.formats: every supported format read and written, every bad file reported with its place."""

import gzip
import json
import re

import pytest

import capeval
from benchmarks import datasets
from capeval.errors import DuplicateIdError, FormatError, InvalidCaptionError, MissingIdError
from capeval.formats import (
    Predictions,
    References,
    detect_format,
    match_ids,
    read_predictions,
    read_references,
    write_coco_annotations,
    write_coco_results,
    write_json,
    write_nice_references,
    write_nice_submission,
)

shared = pytest.mark.skipif(not datasets.available(), reason="../shared/data (COCO subset, NICE val) is not present")


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# -- the shared real files ------------------------------------------------------------------------
@shared
def test_nice_ground_truth_with_categories():
    refs = read_references(datasets.NICE_CSV)
    assert isinstance(refs, References) and refs.format == "nice"
    assert len(refs) == 5000 and refs.n_captions == 5000
    assert refs["216582038"] == ["View of snowy mountain range"]
    assert refs.categories["216582038"] == "outdoors"
    assert len(set(refs.categories.values())) == 9
    expected, _ = datasets.nice_retrieval()
    assert dict(refs) == expected  # same ids (numeric strings), same order, same captions


@shared
def test_coco_annotations_and_results():
    refs = read_references(datasets.COCO_SUBSET)
    assert refs.format == "coco" and len(refs) == 4800 and refs.n_captions == 24019
    assert all(isinstance(i, int) for i in refs)
    preds = read_predictions(datasets.SHARED / "coco" / "captions_val2014_fakecap_results.json")
    assert preds.format == "coco-results" and len(preds) == 1000


@shared
def test_duplicate_results_are_reported_not_dropped():
    path = datasets.SHARED / "coco" / "captions_val2014_subset4800_student_results_dups.json"
    with pytest.raises(DuplicateIdError) as err:
        read_predictions(path)
    message = str(err.value)
    assert path.name in message and "appear more than once" in message and "entry [" in message
    assert "\n" not in message


# -- every format ---------------------------------------------------------------------------------
def test_nice_csv_with_and_without_bom_and_quotes(tmp_path):
    text = 'public_id,caption_gt,category\n1,"A dog, running",animals\n02,"He said ""hi""\nthen left",misc\n'
    plain = read_references(write(tmp_path / "gt.csv", text))
    bom = read_references(write(tmp_path / "gt_bom.csv", b"\xef\xbb\xbf" + text.encode()))
    assert dict(plain) == dict(bom) == {"1": ["A dog, running"], "02": ['He said "hi"\nthen left']}
    assert plain.categories == bom.categories == {"1": "animals", "02": "misc"}


def test_nice_submission_round_trip(tmp_path):
    preds = {"7": "a cat, on a mat", "8": 'quotes "inside"', "9": "café ☕", "10": ""}
    path = write_nice_submission(tmp_path / "sub.csv", preds)
    back = read_predictions(path)
    assert isinstance(back, Predictions) and back.format == "nice-submission"
    assert dict(back) == preds
    assert path.read_text(encoding="utf-8").splitlines()[0] == "public_id,caption"


def test_coco_writers_round_trip(tmp_path):
    refs = {5: ["a b", "c d"], 3: ["e f"]}
    assert dict(read_references(write_coco_annotations(tmp_path / "ann.json", refs))) == refs
    preds = {5: "x y", 3: "z"}
    back = read_predictions(write_coco_results(tmp_path / "res.json", preds))
    assert dict(back) == preds and back.format == "coco-results"
    assert list(read_references(write_coco_annotations(tmp_path / "a2.json", {3: ["q"], 5: ["r"]}))) == [3, 5]


def test_nice_references_writer_keeps_categories(tmp_path):
    refs = References({"1": ["a dog"], "2": ["a cat"]}, categories={"1": "animals", "2": "pets"})
    back = read_references(write_nice_references(tmp_path / "gt.csv", refs))
    assert dict(back) == dict(refs) and back.categories == refs.categories


def test_coco_annotations_order_and_consistency(tmp_path):
    doc = {"images": [{"id": 9}, {"id": 4}], "annotations": [{"image_id": 4, "caption": "b"}, {"image_id": 9, "caption": "a"}, {"image_id": 4, "caption": "c"}]}
    refs = read_references(write(tmp_path / "ann.json", json.dumps(doc)))
    assert list(refs.items()) == [(9, ["a"]), (4, ["b", "c"])]  # pycocotools' getImgIds order
    doc["images"].append({"id": 11})
    with pytest.raises(FormatError, match=r"ann2\.json: 1 images in 'images' have no caption annotation: \[11\]"):
        read_references(write(tmp_path / "ann2.json", json.dumps(doc)))
    doc["images"] = [{"id": 9}]
    with pytest.raises(FormatError, match="missing from 'images'"):
        read_references(write(tmp_path / "ann3.json", json.dumps(doc)))
    doc = {"annotations": [{"image_id": 1, "caption": "a"}, {"image_id": 1}]}
    with pytest.raises(FormatError, match=r"annotations \[1\]: no caption"):
        read_references(write(tmp_path / "ann4.json", json.dumps(doc)))


def test_karpathy_splits(tmp_path):
    doc = {
        "dataset": "coco",
        "images": [
            {"cocoid": 11, "split": "test", "sentences": [{"raw": "A dog."}, {"raw": "A puppy."}]},
            {"cocoid": 12, "split": "train", "sentences": [{"raw": "A cat."}]},
            {"imgid": 3, "split": "val", "sentences": [{"raw": "A bird."}]},
        ],
    }
    path = write(tmp_path / "dataset_coco.json", json.dumps(doc))
    assert detect_format(path) == "karpathy"
    assert dict(read_references(path)) == {11: ["A dog.", "A puppy."], 12: ["A cat."], 3: ["A bird."]}
    assert dict(read_references(path, split="test")) == {11: ["A dog.", "A puppy."]}
    with pytest.raises(FormatError, match=r"no image in split 'restval'; the file has splits test \(1\), train \(1\), val \(1\)"):
        read_references(path, split="restval")
    with pytest.raises(FormatError, match="references file, not predictions"):
        read_predictions(path)


def test_plain_json_both_shapes(tmp_path):
    refs = read_references(write(tmp_path / "refs.json", json.dumps({"1": ["a", "b"], "2": "c"})))
    assert dict(refs) == {"1": ["a", "b"], "2": ["c"]} and refs.format == "json"
    preds = read_predictions(write(tmp_path / "preds.json", json.dumps({"1": "x", "2": ["y"]})))
    assert dict(preds) == {"1": "x", "2": "y"}
    with pytest.raises(FormatError, match=r"id '2': 2 captions; one prediction per image"):
        read_predictions(write(tmp_path / "bad.json", json.dumps({"1": "x", "2": ["y", "z"]})))
    with pytest.raises(DuplicateIdError, match="key '1' appears twice"):
        read_predictions(write(tmp_path / "dupkey.json", '{"1": "x", "1": "y"}'))
    with pytest.raises(InvalidCaptionError, match=r"id '1'.*caption must be a string, got NoneType"):
        read_predictions(write(tmp_path / "none.json", '{"1": null}'))


def test_json_lines(tmp_path):
    text = '{"image_id": 1, "caption": "a"}\n\n{"image_id": 1, "caption": "b", "category": "x"}\n{"id": "k", "captions": ["c", "d"]}\n'
    refs = read_references(write(tmp_path / "refs.jsonl", text))
    assert dict(refs) == {1: ["a", "b"], "k": ["c", "d"]} and refs.categories == {1: "x"}
    preds = read_predictions(write(tmp_path / "preds.jsonl", '{"image_id": 1, "caption": "a"}\n{"image_id": 2, "caption": "b"}\n'))
    assert dict(preds) == {1: "a", 2: "b"}
    assert detect_format(write(tmp_path / "noext", '{"image_id": 1, "caption": "a"}\n{"image_id": 2, "caption": "b"}\n'), "predictions") == "jsonl"
    with pytest.raises(FormatError, match=r"bad\.jsonl, line 2: invalid JSON"):
        read_predictions(write(tmp_path / "bad.jsonl", '{"image_id": 1, "caption": "a"}\n{"image_id": 2, "caption": \n'))
    with pytest.raises(DuplicateIdError, match=r"image id 1 appears more than once \(1 at line 1, line 2\)"):
        read_predictions(write(tmp_path / "dup.jsonl", '{"image_id": 1, "caption": "a"}\n{"image_id": 1, "caption": "b"}\n'))


def test_gzip_is_read(tmp_path):
    path = tmp_path / "preds.json.gz"
    path.write_bytes(gzip.compress(json.dumps([{"image_id": 1, "caption": "a"}]).encode()))
    assert dict(read_predictions(path)) == {1: "a"}


def test_format_can_be_named(tmp_path):
    path = write(tmp_path / "gt.txt", "public_id,caption_gt\n1,a\n")
    assert dict(read_references(path, "nice")) == {"1": ["a"]}
    with pytest.raises(FormatError, match="missing column 'caption_gt'"):
        read_references(write(tmp_path / "sub.csv", "public_id,caption\n1,a\n"), format="nice")
    with pytest.raises(ValueError, match="unknown format"):
        read_references(path, format="xml")


# -- ids ------------------------------------------------------------------------------------------
def test_int_and_string_ids_are_matched(tmp_path):
    refs = read_references(write(tmp_path / "refs.json", json.dumps({"1": ["a dog runs"], "2": ["a cat sleeps"]})))
    preds = read_predictions(write_coco_results(tmp_path / "res.json", {1: "a dog", 2: "a cat"}))
    assert all(isinstance(i, int) for i in preds)
    matched = match_ids(refs, preds)
    assert dict(matched) == {"1": "a dog", "2": "a cat"} and isinstance(matched, Predictions)
    result = capeval.evaluate(refs, matched, metrics="bleu", tokenizer="none")
    assert list(result.per_item.index) == ["1", "2"]
    with pytest.raises(MissingIdError):
        capeval.evaluate(refs, preds, metrics="bleu", tokenizer="none")


def test_leading_zeros_are_not_matched_silently():
    refs = {"0123": ["a"]}
    preds = match_ids(refs, {123: "a"})
    assert dict(preds) == {123: "a"}
    with pytest.raises(MissingIdError, match="0123"):
        capeval.evaluate(refs, preds, metrics="bleu", tokenizer="none")


def test_same_id_as_int_and_string_in_one_file_is_a_duplicate(tmp_path):
    with pytest.raises(DuplicateIdError, match="appears more than once"):
        read_predictions(write(tmp_path / "r.json", json.dumps([{"image_id": 1, "caption": "a"}, {"image_id": "1", "caption": "b"}])))


# -- bad files ------------------------------------------------------------------------------------
BAD = {
    "empty": ("empty.csv", b"", FormatError, r"empty\.csv: the file is empty"),
    "blank": ("blank.json", b"  \n\n", FormatError, "the file is empty"),
    "truncated": ("t.json", b'[{"image_id": 1, "caption": "a dog"}, {"image_id": 2, "capt', FormatError, r"t\.json, line 1, column \d+: invalid JSON .*truncated"),
    "truncated_lines": ("t2.json", b'[\n {"image_id": 1,\n  "caption": "a"},\n', FormatError, r"t2\.json, line 4, column 1: .*truncated"),
    "latin1": ("l.csv", "public_id,caption\n1,a dog\n2,café\n".encode("latin-1"), FormatError, r"l\.csv, line 3, column 6: not valid UTF-8 \(byte 0xe9\)"),
    "utf16": ("u.csv", "public_id,caption\n1,a\n".encode("utf-16"), FormatError, "UTF-16"),
    "nul": ("n.csv", b"public_id,caption\n1,a\x00\n", FormatError, r"n\.csv, line 2: NUL byte"),
    "missing_column": ("m.csv", b"public_id,category\n1,x\n", FormatError, r"m\.csv, line 1: missing column 'caption'; expected header public_id,caption, found public_id,category"),
    "gt_as_submission": ("g.csv", b"public_id,caption_gt\n1,x\n", FormatError, "looks like NICE ground truth"),
    "extra_field": ("e.csv", b"public_id,caption\n1,a\n2,a,b\n", FormatError, r"e\.csv, line 3: expected 2 fields .* found 3"),
    "short_row": ("s.csv", b"public_id,caption\n1\n", FormatError, r"s\.csv, line 2: expected 2 fields"),
    "duplicate_csv": ("d.csv", b"public_id,caption\n5,a\n6,b\n5,c\n", DuplicateIdError, r"d\.csv: id '5' appears more than once \('5' at line 2, line 4\)"),
    "empty_id": ("i.csv", b"public_id,caption\n,a\n", FormatError, r"i\.csv, line 2: empty id"),
    "header_only": ("h.csv", b"public_id,caption\n", FormatError, "a header but no rows"),
    "bad_quote": ("q.csv", b'public_id,caption\n1,"unterminated\n', FormatError, r"q\.csv, line 2: malformed CSV"),
    "not_a_caption": ("o.json", b'{"images": 3}', InvalidCaptionError, r"o\.json, id 'images': caption must be a string, got int 3"),
    "float_id": ("f.json", b'[{"image_id": 1.5, "caption": "a"}]', FormatError, r"entry \[0\]: id must be an int or a string, got float 1.5"),
    "no_id": ("x.json", b'[{"caption": "a"}]', FormatError, r"entry \[0\]: no image id"),
    "missing_file": (None, None, FormatError, "no such file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_prediction_files(tmp_path, case):
    name, data, error, pattern = BAD[case]
    path = tmp_path / (name or "does-not-exist.csv")
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(error, match=pattern) as err:
        read_predictions(path)
    assert "\n" not in str(err.value)


def test_bad_reference_files(tmp_path):
    with pytest.raises(FormatError, match=r"r\.csv, line 1: missing column 'caption_gt' or 'caption'"):
        read_references(write(tmp_path / "r.csv", "public_id,category\n1,x\n"))
    with pytest.raises(DuplicateIdError, match="appears more than once"):
        read_references(write(tmp_path / "d.csv", "public_id,caption_gt\n1,a\n1,b\n"))
    with pytest.raises(FormatError, match="two categories"):
        read_references(write(tmp_path / "c.jsonl", '{"image_id": 1, "caption": "a", "category": "x"}\n{"image_id": 1, "caption": "b", "category": "y"}\n'))
    with pytest.raises(FormatError, match="the file is empty"):
        read_references(write(tmp_path / "e.json", ""))
    assert dict(read_references(write_json(tmp_path / "ok.json", {1: ["a"]}))) == {"1": ["a"]}


# -- issue 18: defects found by the attack on the readers -----------------------------------------
def damaged_gzip(data: bytes) -> bytes:
    """gzip data whose deflate stream is broken (zlib.error, not a CRC or length error)."""
    import zlib

    packed = bytearray(gzip.compress(data))
    packed[20] ^= 0x55  # inside the first block's Huffman table
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(packed))
    return bytes(packed)


def test_corrupt_gzip_stream_is_a_format_error(tmp_path):
    rows = "public_id,caption\n" + "".join(f"{i},a dog on a couch number {i}\n" for i in range(2000))
    path = write(tmp_path / "corrupt.csv.gz", damaged_gzip(rows.encode()))
    with pytest.raises(FormatError, match=r"corrupt\.csv\.gz: corrupt or truncated gzip data"):
        read_predictions(path)


def test_csv_captions_longer_than_the_csv_modules_field_limit(tmp_path):
    import csv

    caption = "a " * 70_000  # 140,000 characters: over csv's default 131,072
    path = tmp_path / "long.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["public_id", "caption"], ["1", caption], ["2", "a cat"]])
    assert dict(read_predictions(path)) == {"1": caption, "2": "a cat"}
    assert read_references(path)["1"] == [caption]
    assert csv.field_size_limit() == 131_072  # the process-wide limit is put back


def test_unterminated_quote_is_reported_where_it_opens(tmp_path):
    rows = ["public_id,caption", "1,a dog", '2,"a cat on a mat'] + [f"{i},caption {i}" for i in range(3, 60_000)]
    path = write(tmp_path / "unterminated.csv", "\n".join(rows) + "\n")  # 600 KB after the quote
    with pytest.raises(FormatError, match=r"unterminated\.csv, line 3: .*quote opened here is never closed"):
        read_predictions(path)


def test_unterminated_quote_after_a_multi_line_field(tmp_path):
    """The row starts at line 3, its first caption spans lines 3-4, the quote left open is on line 4."""
    rows = ["public_id,caption,category", "1,a dog,x", '2,"a cat', 'on a mat","unclosed category'] + [f"{i},c,x" for i in range(3, 1000)]
    path = write(tmp_path / "multi.csv", "\r\n".join(rows) + "\r\n")
    with pytest.raises(FormatError, match=r"multi\.csv, line 4: malformed CSV \(a quote opened here is never closed"):
        read_references(path)


def test_json_nested_too_deep_is_a_format_error(tmp_path):
    deep = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(FormatError, match=r"deep\.json: JSON nested too deeply"):
        read_predictions(deep)
    with pytest.raises(FormatError, match=r"deep\.json: JSON nested too deeply"):
        read_references(deep)
    lines = write(tmp_path / "deep.jsonl", '{"image_id": 1, "caption": "a"}\n' + "[" * 100_000 + "\n")
    with pytest.raises(FormatError, match=r"deep\.jsonl, line 2: JSON nested too deeply"):
        read_predictions(lines)


@pytest.mark.parametrize(
    "name, text",
    [
        ("refs.jsonl", '{"image_id": 1, "caption": "a dog"}\n{"image_id": "1", "caption": "a cat"}\n{"image_id": 2, "caption": "a bird"}\n'),
        ("refs.json", json.dumps([{"image_id": 1, "caption": "a dog"}, {"image_id": 2, "caption": "a bird"}, {"image_id": "1", "caption": "a cat"}])),
    ],
)
def test_reference_records_with_one_id_written_two_ways(tmp_path, name, text):
    """1 and "1" would split one image into two ids (and --lenient would drop one): an error naming the file."""
    path = write(tmp_path / name, text)
    with pytest.raises(DuplicateIdError, match=re.escape(name) + r", (line |entry \[)\d.*id '1' is also written 1 \((line 1|entry \[0\])\)"):
        read_references(path)


# -- plain text: one caption per line -------------------------------------------------------------
def test_plain_text_references_and_predictions(tmp_path):
    from capeval.formats import check_same_line_count, read_text_references

    ref1 = write(tmp_path / "ref1.txt", "a dog runs\na cat sleeps\n")
    ref2 = write(tmp_path / "ref2.txt", "the dog is running\r\nthe cat is asleep")  # CRLF, no final newline
    hyp = write(tmp_path / "hyp.txt", "a dog\u2028running\na cat\n")  # U+2028 is inside a caption, not a line end
    refs = read_text_references([ref1, ref2])
    assert dict(refs) == {1: ["a dog runs", "the dog is running"], 2: ["a cat sleeps", "the cat is asleep"]}
    preds = read_predictions(hyp)
    assert dict(preds) == {1: "a dog\u2028running", 2: "a cat"} and preds.format == "txt"
    assert dict(read_references(ref1)) == {1: ["a dog runs"], 2: ["a cat sleeps"]}
    check_same_line_count(refs, preds)
    short = write(tmp_path / "short.txt", "one line\n")
    with pytest.raises(FormatError, match=r"ref1\.txt has 2, .*short\.txt has 1"):
        read_text_references([ref1, short])
    with pytest.raises(FormatError, match=r"short\.txt has 1 lines but the references \(.*ref1\.txt.*\) have 2"):
        check_same_line_count(refs, read_predictions(short))


def test_csv_writers_round_trip_a_carriage_return(tmp_path):
    """Found by tests/test_properties.py: csv.writer with "\n" line ends left a bare \r unquoted."""
    preds = {"1": "a dog\r on grass", "2": "a cat", "3": 'say "cheese"\r\n'}
    assert dict(read_predictions(write_nice_submission(tmp_path / "sub.csv", preds))) == preds
    refs = {"1": ["a\rb"], "2": ["c"]}
    assert dict(read_references(write_nice_references(tmp_path / "gt.csv", refs))) == refs
    assert (tmp_path / "sub.csv").read_bytes().split(b"\n")[2] == b"2,a cat"  # other rows as before


def test_plain_text_blank_lines_are_empty_captions(tmp_path):
    from capeval.formats import read_text_references

    blank = write(tmp_path / "blank.txt", "\n\n")
    assert dict(read_predictions(blank)) == {1: "", 2: ""}
    assert dict(read_text_references([blank, write(tmp_path / "r.txt", "a\nb\n")])) == {1: ["", "a"], 2: ["", "b"]}
    with pytest.raises(FormatError, match=r"zero\.txt: the file is empty"):
        read_predictions(write(tmp_path / "zero.txt", ""))
