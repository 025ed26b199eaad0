"""Tokenization side by side: the CoreNLP 3.4.1 jar (as pycocoevalcap runs it) vs capeval's pure-Python ``ptb``.

Input: the COCO val2014 subset (4,800 images) in leave-one-out form, replicated with fresh ids to 40,504
images (``benchmarks.datasets.coco_40504``): about 162k reference captions and 40.5k predictions.
Both sides tokenize references and predictions as pycocoevalcap does: two documents, each the captions
joined with newlines in dict order, punctuation removed afterwards.

* jar: one ``java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer -preserveLines
  -lowerCase FILE`` per document (JVM start included), plus pycocoevalcap's Python post-processing.
* capeval: ``capeval.tokenize.tokenize(..., "ptb")`` per document with a cold cache, in this process
  (module already imported) and, separately, in a fresh interpreter including ``import capeval.tokenize``.

Usage:  python benchmarks/bench_tokenize.py [--repeat 3] [--check] [--set coco_40504|coco_loo]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import datasets  # noqa: E402

PUNCTUATIONS = ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]


def documents(which="coco_40504"):
    refs, preds = datasets.coco_40504() if which == "coco_40504" else datasets.coco_leave_one_out()
    ref_flat = [c for k, v in refs.items() for c in v]
    pred_flat = [preds[k] for k in refs]
    return ref_flat, pred_flat


def jar_tokenize(captions, jar, java):
    """pycocoevalcap's PTBTokenizer.tokenize, minus the dict plumbing (and in a temp dir of our own)."""
    sentences = "\n".join(c.replace("\n", " ") for c in captions)
    with tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "wb") as fh:
            fh.write(sentences.encode())
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp).stdout
    lines = out.decode().split("\n")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in lines[: len(captions)]]


def capeval_tokenize(captions):
    import importlib

    T = importlib.import_module("capeval.tokenize")  # (the package re-exports the function under that name)
    T._PTB_INSTANCE = None  # cold cache
    return T.tokenize(captions, "ptb")


_FRESH = """
import sys, time, pickle
sys.path.insert(0, {root!r})
import importlib
T = importlib.import_module("capeval.tokenize")
t = time.perf_counter()
docs = pickle.load(open({data!r}, "rb"))
load = time.perf_counter() - t
for d in docs:
    T.tokenize(d, "ptb")
print(load)
"""


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fresh_interpreter_seconds(docs, repeat):
    """(wall, cpu) seconds for a new Python process to start, import capeval.tokenize and tokenize both
    documents (reading the pickled input is measured inside and excluded from the wall time)."""
    import pickle

    with tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp:
        data = os.path.join(tmp, "docs.pkl")
        with open(data, "wb") as fh:
            pickle.dump(docs, fh)
        code = _FRESH.format(root=str(ROOT), data=data)
        times, cpus = [], []
        for _ in range(repeat):
            t, c = time.perf_counter(), _children_cpu()
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            times.append(time.perf_counter() - t - float(out))
            cpus.append(_children_cpu() - c)
    return times, cpus


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="also check that both sides give identical tokens")
    ap.add_argument("--set", choices=["coco_40504", "coco_loo"], default="coco_40504",
                    help="coco_40504 (default): 40,504 images; coco_loo: the 4,800 images once (few repeats)")
    args = ap.parse_args(argv)
    if not datasets.available():
        print("shared data not found; nothing to benchmark")
        return 1
    java = shutil.which("java")
    from capeval.tokenize import find_corenlp_jar

    jar = find_corenlp_jar()
    ref_flat, pred_flat = documents(args.set)
    n_tokens = sum(len(c.split()) for c in ref_flat + pred_flat)
    print(f"input: {len(ref_flat):,} reference captions + {len(pred_flat):,} predictions "
          f"({len(set(ref_flat + pred_flat)):,} distinct), ~{n_tokens:,} whitespace tokens")
    capeval_tokenize(["warm up the import"])  # import outside the timed region; see the fresh-process numbers

    py_times, py_cpu, jar_times, jar_cpu = [], [], [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        py = [capeval_tokenize(ref_flat), capeval_tokenize(pred_flat)]
        py_times.append(time.perf_counter() - t)
        py_cpu.append(time.process_time() - c)
        if java:
            t, c, cc = time.perf_counter(), time.process_time(), _children_cpu()
            jr = [jar_tokenize(ref_flat, jar, java), jar_tokenize(pred_flat, jar, java)]
            jar_times.append(time.perf_counter() - t)
            jar_cpu.append(time.process_time() - c + _children_cpu() - cc)
    fresh, fresh_cpu = fresh_interpreter_seconds([ref_flat, pred_flat], args.repeat)
    med = statistics.median

    def runs(xs):
        return ", ".join(f"{x:.3f}" for x in xs)

    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (median wall seconds; CPU seconds)")
    print(f"capeval ptb, in process, cold cache:        {med(py_times):.3f} s  cpu {med(py_cpu):.3f} s  (runs: {runs(py_times)})")
    print(f"capeval ptb, fresh interpreter incl import: {med(fresh):.3f} s  cpu {med(fresh_cpu):.3f} s  (runs: {runs(fresh)})")
    if java:
        print(f"CoreNLP jar, 2 JVM runs + post-processing:  {med(jar_times):.3f} s  cpu {med(jar_cpu):.3f} s  (runs: {runs(jar_times)})")
        print(f"speed-up (wall): {med(jar_times) / med(py_times):.1f}x in process, {med(jar_times) / med(fresh):.1f}x fresh interpreter")
        print(f"speed-up (cpu):  {med(jar_cpu) / med(py_cpu):.1f}x in process, {med(jar_cpu) / med(fresh_cpu):.1f}x fresh interpreter")
        if args.check:
            same = py[0] == jr[0] and py[1] == jr[1]
            print("identical tokens:", same)
            if not same:
                return 1
    else:
        print("java not found: jar side skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
