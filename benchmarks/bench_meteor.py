"""METEOR: pycocoevalcap 1.2's Meteor vs capeval's, same jar, same tokenized inputs, one run each.

    python benchmarks/bench_meteor.py [--set coco40k|coco|nice] [--workers N] [--jvm-mode auto|threads|processes]
                                      [--order pycocoevalcap,capeval]

The default set is the COCO leave-one-out set (4,800 images) replicated with fresh ids to 40,504
images (COCO val2014's size). Captions are PTB-tokenized once beforehand (capeval's ``ptb``, the
tokens pycocoevalcap's tokenizer gives) and both sides get the same text; tokenization is not timed.

Timed for each side: everything a user waits for, from constructing the scorer (JVM start-up, which
loads the 60 MB paraphrase table) to the corpus score and per-image scores, and closing it.
pycocoevalcap: ``Meteor()`` + ``compute_score`` (one SCORE round-trip per image, then one EVAL).
capeval: ``capeval.meteor.meteor`` (by default one JVM whose scoring threads share Meteor's tables;
``--jvm-mode processes``: one ``java -jar`` per worker; pipelined SCORE lines, one EVAL of the summed
statistics). Peak memory: the JVMs' peak resident set (VmHWM), summed over capeval's workers; JVM
CPU: their user + system time (what other work on the machine competes with; on a busy machine the
wall-time ratio shrinks towards the CPU-time ratio). The scores must agree (per image and corpus, to
1e-9) before any time is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import datasets  # noqa: E402

SETS = {
    "coco40k": ("COCO leave-one-out replicated to 40,504 images", datasets.coco_40504),
    "coco": ("COCO leave-one-out, 4,800 images", datasets.coco_leave_one_out),
    "nice": ("NICE val, first retrieval hint, 5,000 images", datasets.nice_retrieval),
}


def peak_rss(pid: int) -> int:
    """Peak resident set of a live process, in bytes (Linux), else 0."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux), else 0."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def tokenized(loader):
    """{id: [refs]}, {id: caption} tokenized like pycocoevalcap (each distinct caption once)."""
    from capeval.tokenize import tokenize

    refs, preds = loader()
    unique = list(dict.fromkeys([c for rs in refs.values() for c in rs] + list(preds.values())))
    tok = dict(zip(unique, tokenize(unique, "ptb")))
    return {i: [tok[c] for c in rs] for i, rs in refs.items()}, {i: tok[c] for i, c in preds.items()}


def run_pycocoevalcap(refs, preds):
    import pycocoevalcap
    from pycocoevalcap.meteor.meteor import Meteor

    gts = {i: refs[i] for i in refs}
    res = {i: [preds[i]] for i in refs}
    t = time.perf_counter()
    m = Meteor()
    score, scores = m.compute_score(gts, res)
    rss = peak_rss(m.meteor_p.pid)
    cpu = cpu_seconds(m.meteor_p.pid)
    del m  # its __del__ kills the JVM
    seconds = time.perf_counter() - t
    return {
        "name": f"pycocoevalcap {getattr(pycocoevalcap, '__version__', '1.2')}",
        "seconds": seconds,
        "score": float(score),
        "per_item": np.asarray(scores, dtype=np.float64),
        "rss": rss,
        "cpu": cpu,
        "jvms": 1,
    }


def run_capeval(refs, preds, workers, jvm_mode="auto", jvm_args=()):
    from capeval.meteor import Meteor, meteor

    t = time.perf_counter()
    with Meteor(workers=workers, progress=False, jvm_args=jvm_args, jvm_mode=jvm_mode) as pool:
        result = meteor(refs, preds, scorer=pool)
        procs = [j.proc for j in pool._slots.jvms if j is not None]
        rss = sum(peak_rss(p.pid) for p in procs)
        cpu = sum(cpu_seconds(p.pid) for p in procs)
    seconds = time.perf_counter() - t
    return {
        "name": f"capeval ({result.details['jvm_mode']}: {result.details['jvms']} JVM"
        f"{'s' if result.details['jvms'] > 1 else ''}, {result.details['workers']} scorers"
        f"{', ' + ' '.join(jvm_args) if jvm_args else ''})",
        "seconds": seconds,
        "score": result.score,
        "per_item": result.per_item,
        "rss": rss,
        "cpu": cpu,
        "jvms": result.details["jvms"],
        "details": result.details,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="coco40k")
    ap.add_argument(
        "--workers", type=int, default=None, help="capeval's parallel scorers (default: one per core, at most 4)"
    )
    ap.add_argument("--jvm-mode", choices=("auto", "threads", "processes"), default="auto")
    ap.add_argument("--order", default="pycocoevalcap,capeval", help="which side runs first")
    ap.add_argument(
        "--jvm-args", default="", help="extra JVM options for capeval's JVMs, e.g. -XX:+UseParallelGC"
    )
    args = ap.parse_args(argv)
    if not datasets.available():
        sys.exit(f"shared data not found under {datasets.SHARED}")
    label, loader = SETS[args.set]
    refs, preds = tokenized(loader)
    print(f"{label}: {len(refs)} images, {sum(len(r) for r in refs.values())} references")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    runs = {}
    for side in [s.strip() for s in args.order.split(",")]:
        runs[side] = (
            run_pycocoevalcap(refs, preds)
            if side == "pycocoevalcap"
            else run_capeval(refs, preds, args.workers, args.jvm_mode, tuple(args.jvm_args.split()))
        )
        r = runs[side]
        print(
            f"  {r['name']:<40} {r['seconds']:7.2f} s   METEOR {r['score']:.6f}   "
            f"JVM CPU {r['cpu']:6.1f} s   peak JVM RSS {r['rss'] / 2**30:.2f} GB   load {os.getloadavg()[0]:.2f}"
        )
    pc, ce = runs["pycocoevalcap"], runs["capeval"]
    diff = float(np.max(np.abs(pc["per_item"] - ce["per_item"])))
    if abs(pc["score"] - ce["score"]) > 1e-9 or diff > 1e-9:
        sys.exit(f"scores differ: corpus {pc['score']!r} vs {ce['score']!r}, per image max |diff| {diff:g}")
    print(f"  same scores: corpus identical={pc['score'] == ce['score']}, per-image max |diff| {diff:g}")
    print(f"  speed-up: {pc['seconds'] / ce['seconds']:.2f}x   load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
