"""The stream engine gives evaluate()'s numbers: per item equal, corpus within 1e-12, same signatures.

The reference is always ``capeval.evaluate`` on the same data in memory (itself held to pycocoevalcap's
numbers by the golden and parity tests).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import capeval
from benchmarks import datasets
from capeval.df import DocumentFrequencies
from capeval.engines import _adapter as adapter
from capeval.engines import _spill as spill_module
from capeval.engines import stream_evaluate
from capeval.engines._source import Chunk, tokenize_chunk, with_lookahead
from capeval.errors import DuplicateIdError, FormatError, InvalidCaptionError, MissingIdError

METRICS = ["bleu", "rouge_l", "cider_d", "cider"]
shared = pytest.mark.skipif(not datasets.available(), reason="needs ../shared/data (COCO subset and NICE val)")


def assert_same(memory, scaled):
    """Per item exactly equal (same ids, same order); corpus within 1e-12; same signatures."""
    assert list(scaled.per_item.index) == list(memory.per_item.index)
    assert list(scaled.per_item.columns) == list(memory.per_item.columns)
    np.testing.assert_array_equal(scaled.per_item.to_numpy(), memory.per_item.to_numpy())
    assert scaled.scores.keys() == memory.scores.keys()
    for key, value in memory.scores.items():
        assert abs(scaled.scores[key] - value) <= 1e-12, key
    assert scaled.signature == memory.signature
    assert scaled.signatures == memory.signatures
    assert scaled.n_items == len(memory.per_item)


# -- tricky data: look-ahead across chunk boundaries, blanks, unicode, varying reference counts -------
def tricky_data():
    refs = {
        1: ["He got grade A.", "a student with grade A."],  # each ends in "A.": the next caption decides
        2: ["The teacher smiles.", "   ", "It is a classroom."],  # a blank reference between
        3: ["Café crème on a table", "two cups\nof coffee"],
        4: ["a dog runs", "grade B.", "  "],  # ends in a blank: the look-ahead goes on to item 5
        5: ["The end of the day", "it's over"],
        6: ["A man with grade A."],
        7: ["the last one"],
    }
    preds = {1: "grade A.", 2: "The class", 3: "coffee on a table", 4: "grade A.", 5: "It ends", 6: "A.", 7: "The last"}
    return refs, preds


def test_the_tricky_data_really_depends_on_the_next_caption():
    """Without look-ahead the boundary captions tokenize differently: the case the engine must handle."""
    refs, preds = tricky_data()
    chunk = Chunk([1], [refs[1]], [preds[1]], 0)
    blind = tokenize_chunk(chunk, [], [], "ptb")
    seeing = tokenize_chunk(chunk, refs[2][:1], [preds[2]], "ptb")
    assert blind.references[0][1] == "a student with grade a."
    assert seeing.references[0][1] == "a student with grade a"
    assert (blind.predictions[0], seeing.predictions[0]) == ("grade a.", "grade a")


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 100])
def test_chunk_boundaries_give_evaluate_numbers(chunk_size):
    refs, preds = tricky_data()
    memory = capeval.evaluate(refs, preds, METRICS)
    assert_same(memory, stream_evaluate(refs, preds, METRICS, chunk_size=chunk_size, collect_per_item=True))


def test_lookahead_reads_past_blank_chunks():
    """Chunks of one item whose captions are all blank: the look-ahead spans several chunks."""
    chunks = [Chunk([k], [[text]], [text], k) for k, text in enumerate(["grade A.", "  ", " ", "The end", "x"])]
    out = list(with_lookahead(chunks))
    assert out[0][1] == ["  ", " ", "The end", "x"]  # up to the first non-blank caption, plus one
    assert out[3][1] == ["x"] and out[4][1] == []


@pytest.fixture(scope="module")
def coco():
    refs, preds = datasets.coco_leave_one_out()
    return refs, preds, capeval.evaluate(refs, preds, METRICS)


@shared
@pytest.mark.parametrize("chunk_size", [997, 1024, 100_000])
def test_coco_leave_one_out(coco, chunk_size):
    refs, preds, memory = coco
    assert_same(memory, stream_evaluate(refs, preds, METRICS, chunk_size=chunk_size, collect_per_item=True))


@shared
def test_coco_chunks_of_one_item():
    refs, preds = datasets.coco_leave_one_out(limit=150)
    memory = capeval.evaluate(refs, preds, METRICS)
    assert_same(memory, stream_evaluate(refs, preds, METRICS, chunk_size=1, collect_per_item=True))


@shared
@pytest.mark.parametrize("chunk_size", [13, 2003])
def test_nice_retrieval(chunk_size):
    refs, preds = datasets.nice_retrieval()
    memory = capeval.evaluate(refs, preds, METRICS)
    assert_same(memory, stream_evaluate(refs, preds, METRICS, chunk_size=chunk_size, collect_per_item=True))


@shared
def test_generated_captions():
    from benchmarks.captiongen import BigramModel, generate

    ids, references, predictions = generate(BigramModel.from_shared_data(), 3000, seed=7)
    refs, preds = dict(zip(ids, references)), dict(zip(ids, predictions))
    memory = capeval.evaluate(refs, preds, METRICS)
    assert_same(memory, stream_evaluate(refs, preds, METRICS, chunk_size=499, collect_per_item=True))


@shared
def test_precomputed_document_frequencies(tmp_path):
    refs, preds = datasets.coco_leave_one_out(limit=1200)
    df = DocumentFrequencies.from_references(datasets.nice_retrieval()[0], source="nice")  # another corpus
    memory = capeval.evaluate(refs, preds, ["cider_d", "bleu"], df=df)
    assert "df:nice@" in memory.signature
    assert_same(memory, stream_evaluate(refs, preds, ["cider_d", "bleu"], df=df, chunk_size=101, collect_per_item=True))


@pytest.mark.java
def test_meteor_statistics_add_across_chunks():
    from capeval.meteor import meteor_unavailable_reason

    if meteor_unavailable_reason():
        pytest.skip(f"METEOR unavailable: {meteor_unavailable_reason()}")
    refs, preds = tricky_data()
    memory = capeval.evaluate(refs, preds, ["meteor", "bleu"])
    assert_same(memory, stream_evaluate(refs, preds, ["meteor", "bleu"], chunk_size=3, collect_per_item=True))


# -- the document-frequency parts: exact merge ------------------------------------------------------
def _tokenized_refs():
    from capeval.tokenize import tokenize

    refs, _ = tricky_data()
    flat = tokenize([c for r in refs.values() for c in r])
    out, at = [], 0
    for r in refs.values():
        out.append(flat[at : at + len(r)])
        at += len(r)
    return out


def test_merged_parts_equal_the_whole_corpus_frequencies():
    tokenized = _tokenized_refs()
    plan = adapter.MetricPlan.build(["cider_d"])
    whole = DocumentFrequencies.from_tokenized(tokenized)
    for cut in ([1, 2], [3], [1, 1, 1, 1, 1, 1]):
        bounds = np.cumsum([0, *cut, len(tokenized)])
        parts = [adapter.fit_part(tokenized[a:b], plan) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        merged = adapter.merge_parts(parts)
        as_table = DocumentFrequencies(merged.words, merged.grams, merged.counts, n_images=merged.n_items)
        assert as_table.sha256 == whole.sha256  # same words, rows, counts and ref_len = log(7)


def test_lean_corpus_frequencies_answer_like_document_frequencies():
    """The finished table the engines use gives DocumentFrequencies' numbers for every n-gram of a
    corpus (known, unknown words, orders 1-4), and falls back to DocumentFrequencies when it cannot pack."""
    from capeval._corpus import ScoringCorpus

    tokenized = _tokenized_refs()
    plan = adapter.MetricPlan.build(["cider_d"])
    whole = DocumentFrequencies.from_tokenized(tokenized)
    lean = adapter.finish_state(adapter.merge_parts([adapter.fit_part(tokenized[:3], plan), adapter.fit_part(tokenized[3:], plan)]))
    assert isinstance(lean, adapter.LeanFrequencies) and lean.ref_len == whole.ref_len == np.log(7.0)
    probe = ScoringCorpus(["a student with grade b unseen words here", "the teacher smiles at it"], [["x"], ["y"]])
    grams = probe.ngrams(4)
    matrix = grams.gram_words(probe.tokens, np.arange(grams.n_grams))
    expected = whole.lookup(matrix, probe.tokens.words)
    assert expected.max() >= 2 and (expected == 0).any()  # the probe hits shared, single and absent n-grams
    np.testing.assert_array_equal(lean.lookup(matrix, probe.tokens.words), expected)
    assert adapter.LeanFrequencies.fits(46_000, 4) and not adapter.LeanFrequencies.fits(60_000, 4)


def test_vocabularies_too_large_to_pack_use_document_frequencies(monkeypatch):
    refs, preds = tricky_data()
    monkeypatch.setattr(adapter.LeanFrequencies, "fits", staticmethod(lambda n_words, n: False))
    monkeypatch.setattr(spill_module, "packs_exactly", lambda base, width: False)
    memory = capeval.evaluate(refs, preds, METRICS)
    assert_same(memory, stream_evaluate(refs, preds, METRICS, chunk_size=3, collect_per_item=True))
    tokenized = _tokenized_refs()
    part = adapter.fit_part(tokenized, adapter.MetricPlan.build(["cider_d"]))
    assert isinstance(adapter.finish_state(part), DocumentFrequencies)


@pytest.mark.parametrize("cuts", [[7], [3, 4], [1, 1, 1, 1, 1, 1, 1]])
def test_spilled_frequencies_answer_like_document_frequencies(tmp_path, cuts):
    """The stream engine's on-disk buckets give DocumentFrequencies' numbers for every n-gram of a
    probe (known, unknown words, orders 1-4), however the references are cut into chunks."""
    from capeval._corpus import ScoringCorpus

    tokenized = _tokenized_refs()
    whole = DocumentFrequencies.from_tokenized(tokenized)
    spill = spill_module.FrequencySpill(tmp_path, 4)
    bounds = np.cumsum([0, *cuts])
    for a, b in zip(bounds[:-1], bounds[1:]):
        spill.add(tokenized[a:b])
    state = spill.finish()
    assert isinstance(state, spill_module.SpilledFrequencies)
    assert state.ref_len == whole.ref_len == np.log(7.0) and len(state) == len(whole)
    assert not list(tmp_path.glob("*.rows"))  # reduced to sorted keys and counts
    probe = ScoringCorpus(["a student with grade b unseen words here", "the teacher smiles at it"], [tokenized[0], ["y"]])
    grams = probe.ngrams(4)
    matrix = grams.gram_words(probe.tokens, np.arange(grams.n_grams))
    expected = whole.lookup(matrix, probe.tokens.words)
    assert expected.max() >= 2 and (expected == 0).any()  # the probe hits shared, single and absent n-grams
    np.testing.assert_array_equal(state.lookup(matrix, probe.tokens.words), expected)


def test_spilled_rows_spread_over_buckets():
    """The bucket hash uses every column: n-grams sharing a first word land in different buckets."""
    rows = np.array([[5, w, -1, -1] for w in range(200)], dtype=np.int64)
    buckets = spill_module.row_buckets(rows)
    assert len(set(buckets.tolist())) > 100 and buckets.min() >= 0 and buckets.max() < 2**spill_module.BUCKET_BITS


def test_stream_leaves_no_temporary_files(tmp_path):
    refs, preds = tricky_data()
    spool = tmp_path / "spool"
    spool.mkdir()
    stream_evaluate(refs, preds, METRICS, chunk_size=2, spool_dir=spool)
    assert os.listdir(spool) == []


def test_unique_rows_without_packing_agrees():
    """Vocabularies too large to pack an n-gram into 63 bits take the column-wise path: same rows."""
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 5, size=(400, 3)).astype(np.int32)
    counts = rng.integers(1, 4, size=400).astype(np.int64)
    packed = adapter._unique_rows(rows, counts, n_words=5)
    columnwise = adapter._unique_rows(rows, counts, n_words=2**40)
    np.testing.assert_array_equal(packed[0], columnwise[0])
    np.testing.assert_array_equal(packed[1], columnwise[1])
    assert packed[1].sum() == counts.sum() and len(np.unique(rows, axis=0)) == len(packed[0])


# -- files: JSONL, CSV, Parquet, shards and globs ---------------------------------------------------
def _write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def _shard(tmp_path, refs, preds, shards):
    ids = list(refs)
    bounds = np.linspace(0, len(ids), shards + 1).astype(int)
    for s in range(shards):
        part = ids[bounds[s] : bounds[s + 1]]
        _write_jsonl(tmp_path / f"refs-{s:02d}.jsonl", [{"image_id": i, "captions": refs[i]} for i in part])
        _write_jsonl(tmp_path / f"preds-{s:02d}.jsonl", [{"image_id": i, "caption": preds[i]} for i in part])


def test_jsonl_shards_by_glob(tmp_path):
    refs, preds = tricky_data()
    _shard(tmp_path, refs, preds, 3)
    memory = capeval.evaluate(refs, preds, METRICS)
    result = stream_evaluate(str(tmp_path / "refs-*.jsonl"), str(tmp_path / "preds-*.jsonl"), METRICS, chunk_size=2, collect_per_item=True)
    assert_same(memory, result)


def test_one_caption_per_line_references_and_csv_predictions(tmp_path):
    refs, preds = tricky_data()
    _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": i, "caption": c} for i, r in refs.items() for c in r])
    with open(tmp_path / "preds.csv", "w", encoding="utf-8", newline="") as fh:
        import csv

        writer = csv.writer(fh)
        writer.writerow(["image_id", "caption"])
        writer.writerows(preds.items())
    memory = capeval.evaluate(refs, preds, METRICS)
    result = stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.csv", METRICS, chunk_size=3, collect_per_item=True)
    assert_same(memory, result)  # csv ids are strings: matched to the references' ints as text


def test_parquet_shards(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    refs, preds = tricky_data()
    ids = list(refs)
    for s, part in enumerate((ids[:4], ids[4:])):
        pq.write_table(pa.table({"image_id": part, "captions": [refs[i] for i in part]}), tmp_path / f"refs-{s}.parquet")
        pq.write_table(pa.table({"image_id": part, "caption": [preds[i] for i in part]}), tmp_path / f"preds-{s}.parquet")
    memory = capeval.evaluate(refs, preds, METRICS)
    result = stream_evaluate(
        sorted(tmp_path.glob("refs-*.parquet")), str(tmp_path / "preds-*.parquet"), METRICS, chunk_size=2, collect_per_item=True
    )
    assert_same(memory, result)


def test_whole_file_formats_are_chunked_too(tmp_path):
    """COCO results JSON has no lazy reader: read by capeval.formats, then scored chunk by chunk."""
    refs, preds = tricky_data()
    (tmp_path / "refs.json").write_text(json.dumps({str(k): v for k, v in refs.items()}))
    (tmp_path / "preds.json").write_text(json.dumps([{"image_id": k, "caption": v} for k, v in preds.items()]))
    memory = capeval.evaluate({str(k): v for k, v in refs.items()}, {str(k): v for k, v in preds.items()}, METRICS)
    result = stream_evaluate(tmp_path / "refs.json", tmp_path / "preds.json", METRICS, chunk_size=4, collect_per_item=True)
    assert_same(memory, result)


# -- bad input: typed errors naming the file, line and id -------------------------------------------
def test_ids_out_of_order_name_the_line(tmp_path):
    refs, preds = tricky_data()
    _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": i, "captions": r} for i, r in refs.items()])
    order = [1, 2, 4, 3, 5, 6, 7]
    _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": i, "caption": preds[i]} for i in order])
    with pytest.raises(MissingIdError, match=r"preds\.jsonl, line 3: prediction for id 4 where the references .*line 3.* have id 3"):
        stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", METRICS)


def test_missing_prediction_is_named(tmp_path):
    refs, preds = tricky_data()
    _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": i, "captions": r} for i, r in refs.items()])
    _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": i, "caption": preds[i]} for i in list(preds)[:-1]])
    with pytest.raises(MissingIdError, match=r"line 7: id 7 has references but the predictions ended"):
        stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", METRICS)


def test_duplicate_ids_across_shards(tmp_path):
    _write_jsonl(tmp_path / "refs-0.jsonl", [{"image_id": 1, "captions": ["a cat"]}, {"image_id": 2, "captions": ["a dog"]}])
    _write_jsonl(tmp_path / "refs-1.jsonl", [{"image_id": 1, "captions": ["a cow"]}])
    _write_jsonl(tmp_path / "preds-0.jsonl", [{"image_id": 1, "caption": "a cat"}, {"image_id": 2, "caption": "a dog"}])
    _write_jsonl(tmp_path / "preds-1.jsonl", [{"image_id": 1, "caption": "a cow"}])
    with pytest.raises(DuplicateIdError, match=r"'1' at .*refs-0\.jsonl, line 1 and .*refs-1\.jsonl, line 1"):
        stream_evaluate(str(tmp_path / "refs-*.jsonl"), str(tmp_path / "preds-*.jsonl"), ["bleu", "cider_d"], chunk_size=1)


def test_invalid_caption_names_the_id(tmp_path):
    _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": 1, "captions": ["a cat"]}, {"image_id": 2, "captions": ["", " "]}])
    _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": 1, "caption": "a cat"}, {"image_id": 2, "caption": "a dog"}])
    with pytest.raises(capeval.errors.EmptyReferencesError, match="id 2: all 2 references are empty"):
        stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", ["bleu"])
    _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": 1, "caption": "a cat"}, {"image_id": 2, "caption": 5}])
    with pytest.raises(InvalidCaptionError, match=r"preds\.jsonl, line 2: caption must be a string"):
        stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", ["bleu"])
    _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": 1, "caption": "a cat"}, {"image_id": 2, "caption": "a dog"}])
    _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": 1, "captions": ["a cat"]}, {"image_id": 2, "captions": ["a dog", None]}])
    with pytest.raises(InvalidCaptionError, match=r"refs\.jsonl, line 2, captions\[1\]: caption must be a string, got NoneType"):
        stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", ["bleu"])
    (tmp_path / "refs.jsonl").write_text('{"image_id": 1, "captions": ["a cat"]}\n{"image_id": 2, "captions": ["a"], "image_id": 3}\n')
    with pytest.raises(DuplicateIdError, match=r"refs\.jsonl, line 2: key 'image_id' appears twice in the same JSON object"):
        stream_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", ["bleu"])


def test_glob_without_match(tmp_path):
    with pytest.raises(FormatError, match="no file matches"):
        stream_evaluate(str(tmp_path / "nothing-*.jsonl"), str(tmp_path / "preds.jsonl"))


# -- per-item output: written as produced, committed atomically --------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_per_item_file_matches_the_memory_layout(tmp_path, suffix):
    from capeval.cli import _write_per_item

    refs, preds = tricky_data()
    memory = capeval.evaluate(refs, preds, METRICS)
    _write_per_item(memory, tmp_path / f"memory{suffix}")
    stream_evaluate(refs, preds, METRICS, chunk_size=2, per_item=tmp_path / f"stream{suffix}")
    assert (tmp_path / f"stream{suffix}").read_bytes() == (tmp_path / f"memory{suffix}").read_bytes()


@pytest.mark.parametrize("metrics", [["bleu"], METRICS])  # one pass, and two passes with a spool
def test_interrupted_job_leaves_no_partial_output(tmp_path, monkeypatch, metrics):
    refs, preds = tricky_data()
    target = tmp_path / "scores.csv"
    target.write_text("an older file\n")
    calls = []
    real = adapter.chunk_statistics

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(adapter, "chunk_statistics", interrupted)
    spool = tmp_path / "spool"
    spool.mkdir()
    with pytest.raises(KeyboardInterrupt):
        stream_evaluate(refs, preds, metrics, chunk_size=1, per_item=target, spool_dir=spool)
    assert len(calls) == 3  # rows of two chunks had been written to the temporary file
    assert target.read_text() == "an older file\n"
    assert sorted(os.listdir(tmp_path)) == ["scores.csv", "spool"]  # no temporary rows left behind
    assert os.listdir(spool) == []  # nor the spool and the document-frequency buckets


def test_failure_after_rows_were_written_leaves_nothing(tmp_path):
    """A bad item late in a one-pass job: rows of earlier chunks never reach the target."""
    refs, preds = tricky_data()
    preds[7] = None
    with pytest.raises(InvalidCaptionError, match="id 7"):
        stream_evaluate(refs, preds, ["bleu"], chunk_size=1, per_item=tmp_path / "scores.jsonl")
    assert os.listdir(tmp_path) == []


def test_a_mismatched_df_file_is_refused_unless_allowed_as_in_memory(tmp_path):
    """Issue 18.5 on the engines: a df built with another tokenizer is refused, and allow_df_mismatch
    (CLI --allow-df-mismatch) lets it through with the numbers evaluate() gives it."""
    from capeval.cli import main as cli_main
    from capeval.errors import DocumentFrequencyMismatchError

    refs = {1: ["A dog runs on the grass.", "The dog is running."], 2: ["A cat sleeps on a bed."], 3: ["Two men ride bikes."]}
    preds = {1: "a dog running on grass", 2: "a cat sleeping", 3: "two people riding bikes"}
    df = DocumentFrequencies.from_references(refs, tokenizer="none").save(tmp_path / "none-df.npz")
    with pytest.raises(DocumentFrequencyMismatchError):
        stream_evaluate(refs, preds, ["cider_d"], df=df)
    memory = capeval.evaluate(refs, preds, ["cider_d"], df=df, allow_df_mismatch=True)
    streamed = stream_evaluate(refs, preds, ["cider_d"], df=df, allow_df_mismatch=True, chunk_size=2, collect_per_item=True)
    assert_same(memory, streamed)
    refs_file = _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": k, "captions": v} for k, v in refs.items()])
    preds_file = _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": k, "caption": v} for k, v in preds.items()])
    args = ["score", str(refs_file), str(preds_file), "--engine", "stream", "--metrics", "cider_d", "--df", str(df), "--format", "json"]
    assert cli_main(args) != 0  # refused
    assert cli_main([*args, "--allow-df-mismatch"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--engine", "stream", "--ci"], "--ci needs --engine memory"),
        (["--engine", "stream", "--lenient"], "--lenient needs --engine memory"),
        (["--engine", "stream", "--workers", "2"], "--workers and --scheduler go with --engine dask"),
        (["--engine", "dask", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["--engine", "stream", "--chunk-size", "0"], "--chunk-size must be at least 1, got 0"),
        (["--spool-dir", "."], "--spool-dir goes with --engine stream"),
        (["--engine", "stream", "--spool-dir", "no/such/dir"], "--spool-dir no/such/dir: not an existing directory"),
    ],
)
def test_engine_options_are_checked_before_any_work(tmp_path, capsys, extra, message):
    from capeval.cli import main as cli_main

    refs_file = _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": 1, "captions": ["a dog"]}])
    preds_file = _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": 1, "caption": "a dog"}])
    assert cli_main(["score", str(refs_file), str(preds_file), "--metrics", "bleu", *extra]) == 2
    assert message in capsys.readouterr().err


def test_spool_dir_from_the_command_line(tmp_path, capsys):
    """--spool-dir receives the job's spool and frequency buckets, emptied at the end; same output."""
    from capeval.cli import main as cli_main

    refs, preds = tricky_data()
    refs_file = _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": k, "captions": v} for k, v in refs.items()])
    preds_file = _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": k, "caption": v} for k, v in preds.items()])
    spool = tmp_path / "spool"
    spool.mkdir()
    seen = []
    real = spill_module.FrequencySpill.finish

    def finish(self):
        seen.extend(os.listdir(spool))  # the job's directory is there while it runs
        return real(self)

    base = ["score", str(refs_file), str(preds_file), "--metrics", "bleu", "cider_d", "--format", "json"]
    assert cli_main(base) == 0
    memory = json.loads(capsys.readouterr().out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spill_module.FrequencySpill, "finish", finish)
        assert cli_main([*base, "--engine", "stream", "--chunk-size", "2", "--spool-dir", str(spool)]) == 0
    assert json.loads(capsys.readouterr().out) == memory
    assert len(seen) == 1 and seen[0].startswith("capeval-stream-") and os.listdir(spool) == []


def test_options_of_another_engine_are_refused_with_the_memory_engine(tmp_path, capsys):
    from capeval.cli import main as cli_main

    refs_file = _write_jsonl(tmp_path / "refs.jsonl", [{"image_id": 1, "captions": ["a dog"]}])
    preds_file = _write_jsonl(tmp_path / "preds.jsonl", [{"image_id": 1, "caption": "a dog"}])
    assert cli_main(["score", str(refs_file), str(preds_file), "--workers", "2"]) == 2
    assert "--workers and --scheduler go with --engine dask" in capsys.readouterr().err


def test_a_score_does_not_depend_on_the_other_items_scored_with_it():
    """Scored with one set of document frequencies, an item gets the same per-item numbers whole or
    in any part of the corpus, past the size where the n-gram entries (here ~2.6M) once went through
    CIDEr's norms in blocks that split captions' sums (their rounding then depended on the corpus)."""
    rng = np.random.default_rng(7)
    words = np.array([f"w{k}" for k in range(400)])
    zipf = 1.0 / np.arange(1, 401)

    def caption():
        return " ".join(rng.choice(words, size=int(rng.integers(8, 16)), p=zipf / zipf.sum()))

    refs = {k: [caption() for _ in range(5)] for k in range(12_000)}
    preds = {k: caption() for k in refs}
    df = DocumentFrequencies.from_references(refs, tokenizer="none")
    whole = capeval.evaluate(refs, preds, ["cider_d", "cider"], df=df, tokenizer="none").per_item
    for lo, hi in [(0, 4_999), (4_999, 12_000)]:
        part = capeval.evaluate({k: refs[k] for k in range(lo, hi)}, {k: preds[k] for k in range(lo, hi)}, ["cider_d", "cider"], df=df, tokenizer="none")
        np.testing.assert_array_equal(part.per_item.to_numpy(), whole.loc[list(range(lo, hi))].to_numpy())
