"""Raw reading (JSONL lines parsed where they are scored) gives exactly the chunks, look-aheads and
errors of reading item by item; inputs it does not fit are refused with RawLayoutError (the Dask
engine then reads them item by item).

The reference is always ``ItemSource.chunks`` / ``with_lookahead`` on the same files: the item-by-item
reader the stream engine uses, itself held to ``capeval.evaluate``'s numbers by test_stream.
"""

from __future__ import annotations

import gzip
import json

import pytest
from test_stream import tricky_data

from capeval.engines._source import (
    Chunk,
    ItemSource,
    RawLayoutError,
    chunk_summary,
    lookahead_from_heads,
    parse_raw_chunk,
    with_lookahead,
)
from capeval.errors import FormatError, InvalidCaptionError, MissingIdError


def ref_line(key, captions) -> str:
    return json.dumps({"image_id": key, "captions": captions}, ensure_ascii=False)


def pred_line(key, caption) -> str:
    return json.dumps({"image_id": key, "caption": caption}, ensure_ascii=False)


def write_shards(tmp_path, refs: dict, preds: dict, shards: int = 2, *, blank_every: int = 3, newline: str = "\n", bom: bool = False, gz: bool = False):
    """The items in ``shards`` files per side, with blank lines between some records (they keep the
    line numbers honest), CRLF or LF line ends, a BOM, gzip."""
    keys = list(refs)
    paths = {"refs": [], "preds": []}
    for side, line in (("refs", lambda k: ref_line(k, refs[k])), ("preds", lambda k: pred_line(k, preds[k]))):
        for s in range(shards):
            part = keys[s * len(keys) // shards : (s + 1) * len(keys) // shards]
            text = "".join(line(k) + newline + (newline if i % blank_every == 1 else "") for i, k in enumerate(part))
            data = ("\ufeff" if bom else "").encode() + text.encode("utf-8")
            path = tmp_path / (f"{side}-{s}.jsonl" + (".gz" if gz else ""))
            path.write_bytes(gzip.compress(data) if gz else data)
            paths[side].append(path)
    return paths["refs"], paths["preds"]


def many_items():
    refs, preds = tricky_data()
    out_refs, out_preds = {}, {}
    for copy in range(4):  # 28 items, the tricky boundaries at many offsets
        for k, v in refs.items():
            out_refs[f"{copy}-{k}"] = v
            out_preds[f"{copy}-{k}"] = preds[k]
    out_refs["4-blank"] = ["  ", "", "the dog."]
    out_preds["4-blank"] = " "  # a blank prediction: a look-ahead passes over it
    out_refs["4-last"] = ["grade A."]
    out_preds["4-last"] = "A."
    return out_refs, out_preds


@pytest.mark.parametrize("layout", [{}, {"newline": "\r\n"}, {"bom": True}, {"gz": True}, {"shards": 5, "blank_every": 2}])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_raw_chunks_parse_to_the_item_by_item_chunks(tmp_path, layout, size):
    refs, preds = many_items()
    source = ItemSource(*write_shards(tmp_path, refs, preds, **layout))
    assert source.reads_raw
    expected = list(source.chunks(size))
    got = [parse_raw_chunk(raw) for raw in source.raw_chunks(size)]
    assert got == expected
    assert len(got) == -(-len(refs) // size)


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_lookahead_from_heads_is_the_item_by_item_lookahead(tmp_path, size):
    refs, preds = many_items()
    source = ItemSource(*write_shards(tmp_path, refs, preds))
    expected = [(refs_after, preds_after) for _, refs_after, preds_after in with_lookahead(source.chunks(size))]
    summaries = [chunk_summary(parse_raw_chunk(raw)) for raw in source.raw_chunks(size)]
    ref_heads, pred_heads = [s[1] for s in summaries], [s[2] for s in summaries]
    for k, (refs_after, preds_after) in enumerate(expected):
        assert lookahead_from_heads(ref_heads[k + 1 :], last=True) == refs_after
        assert lookahead_from_heads(pred_heads[k + 1 :], last=True) == preds_after
        for seen in range(k + 1, len(summaries)):  # with only some heads known: right, or not yet known
            partial = lookahead_from_heads(ref_heads[k + 1 : seen], last=False)
            assert partial in (None, refs_after)


def test_lookahead_from_heads_across_blank_chunks():
    """Chunks of one item whose captions are all blank: their heads are incomplete, the next ones count."""
    chunks = [Chunk([k], [[text]], [text], k) for k, text in enumerate(["grade A.", "  ", " ", "The end", "x"])]
    heads = [chunk_summary(c)[1] for c in chunks]
    assert heads[1] == ["  "] and heads[3] == ["The end"]
    assert lookahead_from_heads(heads[1:3], last=False) is None
    assert lookahead_from_heads(heads[1:], last=False) == ["  ", " ", "The end", "x"]
    assert lookahead_from_heads(heads[4:], last=True) == ["x"]
    assert lookahead_from_heads([], last=True) == []


def test_fingerprints_in_the_summary_are_the_registry_ones(tmp_path):
    refs, preds = many_items()
    source = ItemSource(*write_shards(tmp_path, refs, preds))
    chunk = next(source.chunks(5))
    from capeval.engines._source import IdRegistry

    assert (chunk_summary(chunk)[0] == IdRegistry._fingerprints(chunk.ids)).all()
    assert len(set(chunk_summary(chunk)[0].tolist())) == 5


# -- what raw reading refuses: read item by item instead --------------------------------------------
def _raw_all(source: ItemSource, size: int) -> list:
    return [parse_raw_chunk(raw) for raw in source.raw_chunks(size)]


def test_grouped_one_caption_records_are_refused(tmp_path):
    """A one-caption record's group may go on in the next partition: only item by item sees it whole."""
    (tmp_path / "r.jsonl").write_text('{"image_id": 1, "caption": "a"}\n{"image_id": 1, "caption": "b"}\n{"image_id": 2, "caption": "c"}\n')
    (tmp_path / "p.jsonl").write_text(pred_line(1, "a") + "\n" + pred_line(2, "c") + "\n")
    source = ItemSource(tmp_path / "r.jsonl", tmp_path / "p.jsonl")
    assert [c.references for c in source.chunks(1)] == [[["a", "b"]], [["c"]]]
    with pytest.raises(RawLayoutError):
        _raw_all(source, 1)


@pytest.mark.parametrize(
    "refs_text",
    [
        ref_line(1, ["a"]) + "\r" + ref_line(2, ["b"]) + "\n",  # a lone CR ends a line for the text reader
        ref_line(1, ["a"]) + "\r \n" + ref_line(2, ["b"]) + "\n",  # ... here a blank one: same count, lines shifted
        ref_line(1, ["a"]) + "\n\u3000\n" + ref_line(2, ["b"]) + "\n",  # blank to str.strip, not to bytes.strip
        ref_line(1, ["a"]) + "\n",  # fewer references than predictions
        ref_line(1, ["a"]) + "\n" + ref_line(2, ["b"]) + "\n" + ref_line(3, ["c"]) + "\n",  # more
    ],
)
def test_layouts_raw_lines_cannot_count_are_refused(tmp_path, refs_text):
    (tmp_path / "r.jsonl").write_text(refs_text, newline="")
    (tmp_path / "p.jsonl").write_text(pred_line(1, "a") + "\n" + pred_line(2, "b") + "\n")
    with pytest.raises(RawLayoutError):
        _raw_all(ItemSource(tmp_path / "r.jsonl", tmp_path / "p.jsonl"), 1)


def test_only_jsonl_files_read_raw(tmp_path):
    refs, preds = many_items()
    assert not ItemSource(refs, preds).reads_raw
    paths = write_shards(tmp_path, refs, preds)
    (tmp_path / "p.csv").write_text("image_id,caption\n" + "".join(f"{k},{v!r}\n" for k, v in preds.items()))
    assert not ItemSource(paths[0], tmp_path / "p.csv").reads_raw


# -- errors raised on the worker are the item-by-item reader's, first one first ----------------------
def _first_error(call):
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is compared below
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "damage",
    [
        lambda lines: lines.__setitem__(("refs", 9), '{"image_id": "1-3", "captions": ["x"'),  # malformed JSON
        lambda lines: lines.__setitem__(("preds", 12), pred_line("nope", "x")),  # ids out of step
        lambda lines: lines.__setitem__(("preds", 4), '{"image_id": "0-5", "caption": 7}'),  # not a caption
        lambda lines: lines.__setitem__(("refs", 20), '{"image_id": "2-7", "captions": "one string"}'),
        # two errors: the preds one comes first in the input, though the refs side is parsed first
        lambda lines: (lines.__setitem__(("refs", 8), "{"), lines.__setitem__(("preds", 7), "[1]")),
    ],
)
@pytest.mark.parametrize("size", [1, 4, 100])
def test_errors_are_the_item_by_item_ones(tmp_path, damage, size):
    refs, preds = many_items()
    lines = {("refs", i): ref_line(k, v) for i, (k, v) in enumerate(refs.items())}
    lines |= {("preds", i): pred_line(k, v) for i, (k, v) in enumerate(preds.items())}
    damage(lines)
    for side in ("refs", "preds"):
        (tmp_path / f"{side}.jsonl").write_text("".join(lines[(side, i)] + "\n" for i in range(len(refs))))
    source = ItemSource(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl")
    expected = _first_error(lambda: list(source.chunks(size)))
    assert expected[0] in (FormatError, MissingIdError, InvalidCaptionError)
    assert _first_error(lambda: _raw_all(source, size)) == expected


def test_invalid_utf8_is_named(tmp_path):
    refs, preds = many_items()
    source = ItemSource(*write_shards(tmp_path, refs, preds, shards=1))
    path = source.refs_paths[0]
    path.write_bytes(path.read_bytes().replace(b"Caf\xc3\xa9", b"Caf\xe9", 1))
    expected = _first_error(lambda: list(source.chunks(3)))
    assert expected[0] is FormatError and "not valid UTF-8" in expected[1] and str(path) in expected[1]
    assert _first_error(lambda: _raw_all(source, 3)) == expected
