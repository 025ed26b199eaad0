"""Per-item and corpus scores of ``evaluate``, the stream engine and Dask (2 workers) on one generated
set, compared for every item (the memory engine needs ~10 KB per image: 1M images is ~10 GB)::

    python -m benchmarks.captiongen --images 1000000 --out /tmp/scale/n1000000 --shards 10
    python -m benchmarks.scale_equality /tmp/scale/n1000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

METRICS = ["bleu", "rouge_l", "cider_d"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a directory of refs-*.jsonl / preds-*.jsonl shards (benchmarks.captiongen)")
    args = parser.parse_args(argv)

    import distributed
    import numpy as np
    import pandas as pd

    import capeval
    from capeval.engines import dask_evaluate, stream_evaluate
    from capeval.formats import read_predictions, read_references

    refs = sorted(map(str, args.data.glob("refs-*.jsonl")))
    preds = sorted(map(str, args.data.glob("preds-*.jsonl")))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        stream = stream_evaluate(refs, preds, METRICS, per_item=Path(tmp) / "stream.csv")
        print(f"stream: {time.perf_counter() - started:.0f} s", flush=True)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
            with distributed.Client(cluster) as client:
                started = time.perf_counter()
                dask = dask_evaluate(refs, preds, METRICS, client=client, per_item=Path(tmp) / "dask.csv")
        print(f"dask2: {time.perf_counter() - started:.0f} s, read by the {dask.details['read_by']}", flush=True)
        same_file = (Path(tmp) / "stream.csv").read_bytes() == (Path(tmp) / "dask.csv").read_bytes()
        print(f"per-item files of stream and dask2 identical: {same_file}")
        ref_map, pred_map = {}, {}
        for path in refs:
            ref_map.update(read_references(path).captions)
        for path in preds:
            pred_map.update(read_predictions(path).captions)
        started = time.perf_counter()
        memory = capeval.evaluate(ref_map, pred_map, METRICS)
        print(f"memory: {time.perf_counter() - started:.0f} s", flush=True)
        del ref_map, pred_map
        # the CSV holds %.17g, and Python's float() rounds correctly: every value comes back exactly
        per_item = pd.read_csv(Path(tmp) / "stream.csv", dtype=str).set_index("image_id").map(float)
    expected = memory.per_item.set_axis(memory.per_item.index.map(str)).loc[per_item.index]
    differing = {col: int((per_item[col].to_numpy() != expected[col].to_numpy()).sum()) for col in per_item.columns}
    print(f"items: {len(per_item):,}; per-item values differing from evaluate's: {differing}")
    worst = max(max(abs(stream.scores[k] - v), abs(dask.scores[k] - v)) for k, v in memory.scores.items())
    print(f"largest corpus-score difference from evaluate's: {worst:.3g}")
    return 0 if same_file and not any(differing.values()) and worst <= 1e-12 and np.isfinite(worst) else 1


if __name__ == "__main__":
    sys.exit(main())
