"""METEOR without Java: capeval.meteor_python vs pycocoevalcap 1.2's jar, same tokenized inputs, one run.

    python benchmarks/bench_meteor_python.py [--set nice|coco|coco40k] [--workers N] [--cold] [--no-reuse]
                                             [--order pycocoevalcap,python]

Captions are PTB-tokenized once beforehand (capeval's ``ptb``, the tokens pycocoevalcap's tokenizer
gives) and both sides get the same text; tokenization is not timed.

pycocoevalcap: ``Meteor()`` (JVM start-up, which loads the paraphrase table) + ``compute_score`` (one
SCORE round-trip per image, one EVAL), in this process; peak memory is the JVM's peak resident set.
python: a fresh interpreter that imports ``capeval.meteor_python``, loads the tables from the (warm)
cache, computes the statistics (``workers`` processes) and the per-image and corpus scores with
``capeval.meteor.meteor_scores_from_stats``; its time is the child's wall time from spawn to exit,
its peak memory the largest resident set of the child and of its workers (``ru_maxrss``).
``--cold`` first times building the cache from scratch (a temporary ``$CAPEVAL_CACHE``), separately.
The coco40k set repeats each COCO segment 8.4 times; capeval scores a repeated (hypothesis,
references) segment once, the jar every time: ``--no-reuse`` makes capeval score every copy too.
The scores must agree with pycocoevalcap's (per image and corpus, 1e-12) before a time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import datasets  # noqa: E402
from benchmarks.bench_meteor import peak_rss  # noqa: E402

SETS = {
    "nice": ("NICE val, first retrieval hint, 5,000 images", datasets.nice_retrieval),
    "coco": ("COCO leave-one-out, 4,800 images", datasets.coco_leave_one_out),
    "coco40k": ("COCO leave-one-out replicated to 40,504 images", datasets.coco_40504),
}

CHILD = r"""
import pickle, resource, sys, time, json
t0 = time.perf_counter()
import numpy as np
from capeval.meteor import meteor_scores_from_stats, meteor_score_from_stats
import capeval.meteor_python
from capeval.meteor_python import segment_statistics
refs, hyps, workers, reuse = pickle.load(open(sys.argv[1], "rb"))
capeval.meteor_python.REUSE_IDENTICAL_SEGMENTS = reuse
stats = segment_statistics(refs, hyps, workers=workers, progress=False)
scores = meteor_scores_from_stats(stats)
corpus = meteor_score_from_stats(stats)
t1 = time.perf_counter()
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
json.dump({"seconds_inside": t1 - t0, "scores": np.asarray(scores).tolist(), "corpus": corpus, "peak_kb": peak}, open(sys.argv[2], "w"))
"""


def tokenized(refs: dict, preds: dict):
    from capeval.tokenize import tokenize

    ids = list(preds)
    flat = tokenize([c for i in ids for c in refs[i]], "ptb")
    out_refs, k = [], 0
    for i in ids:
        out_refs.append(flat[k : k + len(refs[i])])
        k += len(refs[i])
    return ids, out_refs, tokenize([preds[i] for i in ids], "ptb")


def run_pycocoevalcap(ids, refs, hyps):
    from pycocoevalcap.meteor.meteor import Meteor

    t0 = time.perf_counter()
    scorer = Meteor()
    corpus, scores = scorer.compute_score(dict(zip(ids, refs)), {i: [h] for i, h in zip(ids, hyps)})
    seconds = time.perf_counter() - t0
    peak = peak_rss(scorer.meteor_p.pid)
    del scorer
    return seconds, np.asarray(scores, dtype=float), float(corpus), peak


def run_python(refs, hyps, workers, env=None, reuse=True):
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "in.pkl", Path(tmp) / "out.json"
        with open(data, "wb") as fh:
            pickle.dump((refs, hyps, workers, reuse), fh)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", CHILD, str(data), str(out)], check=True, cwd=ROOT, env=env)
        seconds = time.perf_counter() - t0
        result = json.loads(out.read_text())
    return seconds, np.asarray(result["scores"]), result["corpus"], result["peak_kb"] * 1024, result["seconds_inside"]


def cold_build() -> tuple[float, int]:
    """Build the cache from scratch in a fresh interpreter: seconds and peak resident set."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CAPEVAL_CACHE": cache, "PYTHONPATH": str(ROOT)}
        code = (
            "import resource, time; t = time.perf_counter()\n"
            "from capeval.meteor_python import load_tables; load_tables(progress=False)\n"
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
    inside, peak_kb = done.stdout.split()
    print(f"cold cache build: {wall:.1f} s wall ({float(inside):.1f} s inside), peak {int(peak_kb) / 1024:.0f} MB")
    return wall, int(peak_kb) * 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="nice")
    parser.add_argument("--workers", type=int, default=0, help="processes for the python side (0: one per core)")
    parser.add_argument("--order", default="pycocoevalcap,python")
    parser.add_argument("--cold", action="store_true", help="also time building the cache from scratch")
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="score repeated (hypothesis, references) segments again (coco40k repeats each 8.4 times)",
    )
    args = parser.parse_args(argv)
    if not datasets.available():
        sys.exit(f"shared data not found under {datasets.SHARED}")
    label, build = SETS[args.set]
    ids, refs, hyps = tokenized(*build())
    print(f"{label}: {len(ids)} images, {sum(map(len, refs))} references; {os.cpu_count()} CPUs")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.cold:
        cold_build()
    run_python([refs[0]], [hyps[0]], 1, env)  # make sure the cache is warm (built outside the timing)
    results = {}
    for side in args.order.split(","):
        if side == "pycocoevalcap":
            results[side] = run_pycocoevalcap(ids, refs, hyps)
        else:
            results[side] = run_python(refs, hyps, args.workers, env, reuse=not args.no_reuse)
    jar_s, jar_scores, jar_corpus, jar_peak = results["pycocoevalcap"]
    py_s, py_scores, py_corpus, py_peak, py_inside = results["python"]
    worst = float(np.max(np.abs(jar_scores - py_scores))) if len(ids) else 0.0
    assert worst <= 1e-12 and abs(jar_corpus - py_corpus) <= 1e-12, (worst, jar_corpus, py_corpus)
    print(f"scores agree: per image max |diff| {worst:.1e}, corpus {py_corpus:.12f} ({jar_corpus:.12f})")
    print(f"pycocoevalcap (jar):   {jar_s:7.2f} s, JVM peak {jar_peak / 2**20:6.0f} MB")
    distinct = len(set(zip(hyps, map(tuple, refs))))
    print(
        f"capeval python (w={args.workers or os.cpu_count()}, {distinct} distinct segments, "
        f"{'re-scored' if args.no_reuse else 'scored once'}): {py_s:7.2f} s ({py_inside:.2f} s inside), "
        f"peak {py_peak / 2**20:6.0f} MB"
    )
    print(f"ratio: {jar_s / py_s:.2f}x faster")
    print(f"(this process's peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
