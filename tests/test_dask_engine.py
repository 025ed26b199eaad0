"""The Dask engine gives evaluate()'s numbers, on a local cluster of worker processes (loopback only),
through a scheduler address, and when a worker is killed in the middle of a job."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from test_raw_reading import many_items, write_shards
from test_stream import METRICS, assert_same, tricky_data

import capeval
from benchmarks import datasets
from capeval.cli import main as cli_main
from capeval.engines import dask_evaluate, stream_evaluate
from capeval.errors import DuplicateIdError, FormatError

distributed = pytest.importorskip("distributed", reason="the dask engine needs the 'dask' extra (dask, distributed)")
shared = pytest.mark.skipif(not datasets.available(), reason="needs ../shared/data (COCO subset and NICE val)")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("partition_size", [1, 3, 100])
def test_partition_boundaries(client, partition_size):
    refs, preds = tricky_data()
    memory = capeval.evaluate(refs, preds, METRICS)
    assert_same(memory, dask_evaluate(refs, preds, METRICS, partition_size=partition_size, client=client, collect_per_item=True))


@pytest.mark.parametrize("partition_size", [1, 4, 100])
def test_jsonl_files_are_parsed_on_the_workers(client, tmp_path, partition_size):
    """Lines cut by the driver, parsed, tokenized (look-ahead from the next partitions' heads) and
    formatted as per-item rows on the workers: evaluate()'s numbers, and the per-item files of the
    stream engine byte for byte (its rows are formatted by the driver)."""
    refs, preds = many_items()
    paths = write_shards(tmp_path, refs, preds, shards=3)
    memory = capeval.evaluate(refs, preds, METRICS)
    for suffix in (".csv", ".jsonl", ".json"):
        result = dask_evaluate(*paths, METRICS, partition_size=partition_size, client=client, collect_per_item=True, per_item=tmp_path / f"dask{suffix}")
        assert result.details["read_by"] == "workers"
        assert_same(memory, result)
        stream_evaluate(*paths, METRICS, chunk_size=7, per_item=tmp_path / f"stream{suffix}")
        assert (tmp_path / f"dask{suffix}").read_bytes() == (tmp_path / f"stream{suffix}").read_bytes()


def test_inputs_lines_cannot_cut_are_read_by_the_driver(client, tmp_path):
    """One-caption reference records (a group may cross partitions): the job starts again item by item."""
    refs, preds = tricky_data()
    with open(tmp_path / "refs.jsonl", "w") as fh:
        fh.writelines(json.dumps({"image_id": k, "caption": c}) + "\n" for k, v in refs.items() for c in v)
    with open(tmp_path / "preds.jsonl", "w") as fh:
        fh.writelines(json.dumps({"image_id": k, "caption": v}) + "\n" for k, v in preds.items())
    result = dask_evaluate(tmp_path / "refs.jsonl", tmp_path / "preds.jsonl", METRICS, partition_size=2, client=client, collect_per_item=True)
    assert result.details["read_by"] == "driver"
    assert_same(capeval.evaluate(refs, preds, METRICS), result)


def test_errors_found_on_the_workers_are_the_stream_engines(client, tmp_path):
    refs, preds = many_items()
    paths = write_shards(tmp_path, refs, preds, shards=2)
    lines = paths[1][1].read_text().splitlines(keepends=True)
    paths[1][1].write_text("".join(lines[:5]) + '{"image_id": "x", "caption": \n' + "".join(lines[6:]))
    with pytest.raises(FormatError) as streamed:
        stream_evaluate(*paths, METRICS, chunk_size=3)
    with pytest.raises(FormatError) as dasked:
        dask_evaluate(*paths, METRICS, partition_size=3, client=client)
    assert str(dasked.value) == str(streamed.value) and f"{paths[1][1]}, line 6" in str(dasked.value)
    paths = write_shards(tmp_path, refs, preds, shards=2)
    for side in paths:  # an id again, in another partition
        side[1].write_text(side[1].read_text() + side[0].read_text().splitlines(keepends=True)[0])
    with pytest.raises(DuplicateIdError) as streamed:
        stream_evaluate(*paths, METRICS, chunk_size=3)
    with pytest.raises(DuplicateIdError) as dasked:
        dask_evaluate(*paths, METRICS, partition_size=3, client=client)
    assert str(dasked.value) == str(streamed.value) and "'0-1'" in str(dasked.value)

    refs, preds = datasets.coco_leave_one_out()
    memory = capeval.evaluate(refs, preds, METRICS)
    result = dask_evaluate(refs, preds, METRICS, partition_size=997, client=client, fan_in=2, collect_per_item=True)
    assert result.details["partitions"] == 5
    assert_same(memory, result)


@shared
def test_nice_through_a_scheduler_address(cluster, tmp_path):
    """Any scheduler address serves (dask-jobqueue, Kubernetes, a cloud cluster): the engine connects itself."""
    refs, preds = datasets.nice_retrieval()
    memory = capeval.evaluate(refs, preds, METRICS)
    result = dask_evaluate(refs, preds, METRICS, partition_size=1999, scheduler=cluster.scheduler_address, collect_per_item=True)
    assert_same(memory, result)


def test_cli_engine_dask(cluster, tmp_path, capsys):
    refs, preds = tricky_data()
    with open(tmp_path / "refs.jsonl", "w") as fh:
        fh.writelines(json.dumps({"image_id": k, "captions": v}) + "\n" for k, v in refs.items())
    with open(tmp_path / "preds.jsonl", "w") as fh:
        fh.writelines(json.dumps({"image_id": k, "caption": v}) + "\n" for k, v in preds.items())
    common = ["score", str(tmp_path / "refs.jsonl"), str(tmp_path / "preds.jsonl"), "--metrics", *METRICS, "--format", "json"]
    assert cli_main([*common, "--per-item", str(tmp_path / "memory.csv")]) == 0
    memory = json.loads(capsys.readouterr().out)
    args = ["--engine", "dask", "--scheduler", cluster.scheduler_address, "--chunk-size", "2", "--per-item", str(tmp_path / "dask.csv")]
    assert cli_main([*common, *args]) == 0
    scaled = json.loads(capsys.readouterr().out)
    assert scaled.keys() == memory.keys()
    assert scaled["n_images"] == memory["n_images"] == 7
    assert scaled["signature"] == memory["signature"] and scaled["signatures"] == memory["signatures"]
    assert all(abs(scaled["scores"][k] - v) <= 1e-12 for k, v in memory["scores"].items())
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "memory.csv").read_bytes()


@shared
@pytest.mark.parametrize("inputs", ["mappings", "jsonl files"])
def test_killed_worker_changes_nothing(client, tmp_path, inputs):
    """SIGKILL a worker holding tokenized partitions mid-job: the scheduler recomputes what it held
    (from the items, or from the lines the workers parse) and the job ends with the numbers of an
    undisturbed run."""
    refs, preds = datasets.coco_leave_one_out()
    memory = capeval.evaluate(refs, preds, METRICS)
    if inputs == "jsonl files":
        refs, preds = write_shards(tmp_path, refs, preds, shards=3)
    pids = client.run(os.getpid)
    box: dict = {}

    def job():
        try:
            box["result"] = dask_evaluate(refs, preds, METRICS, partition_size=300, client=client, collect_per_item=True)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            box["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    victim, deadline = None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        for address, keys in client.has_what().items():
            if any(str(k).startswith("capeval-tokenize") for k in keys):
                victim = address
                break
        time.sleep(0.02)
    assert victim is not None, "no partition reached a worker"
    os.kill(pids[victim], signal.SIGKILL)
    killed_mid_job = thread.is_alive()
    thread.join(timeout=300)
    assert killed_mid_job
    assert "error" not in box, box.get("error")
    assert_same(memory, box["result"])
    assert box["result"].details["read_by"] == ("workers" if inputs == "jsonl files" else "driver")
    client.wait_for_workers(2, timeout=60)
    assert pids[victim] not in client.run(os.getpid).values()  # the nanny started a fresh worker
