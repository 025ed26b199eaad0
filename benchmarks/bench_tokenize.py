"""Tokenization side by side: the CoreNLP 3.4.1 jar (as pycocoevalcap runs it) vs capeval's pure-Python ``ptb``.

Input: the COCO val2014 subset (4,800 images) in leave-one-out form, replicated with fresh ids to 40,504
images (``benchmarks.datasets.coco_40504``): about 162k reference captions and 40.5k predictions.
Both sides tokenize references and predictions as pycocoevalcap does: two documents, each the captions
joined with newlines in dict order, punctuation removed afterwards.

* jar: one ``java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer -preserveLines
  -lowerCase FILE`` per document (JVM start included), plus pycocoevalcap's Python post-processing.
* capeval: ``capeval.tokenize.tokenize(..., "ptb")`` per document with a cold cache, in this process
  (module already imported) and, separately, in a fresh interpreter including ``import capeval.tokenize``.

Usage:  python benchmarks/bench_tokenize.py [--repeat 3] [--check]
"""

from __future__ import annotations

import argparse
import os
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


def documents():
    refs, preds = datasets.coco_40504()
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


def fresh_interpreter_seconds(docs, repeat):
    """Wall seconds for a new Python process to start, import capeval.tokenize and tokenize both
    documents (reading the pickled input is measured inside and excluded)."""
    import pickle

    with tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp:
        data = os.path.join(tmp, "docs.pkl")
        with open(data, "wb") as fh:
            pickle.dump(docs, fh)
        code = _FRESH.format(root=str(ROOT), data=data)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            times.append(time.perf_counter() - t - float(out))
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="also check that both sides give identical tokens")
    args = ap.parse_args(argv)
    if not datasets.available():
        print("shared data not found; nothing to benchmark")
        return 1
    java = shutil.which("java")
    from capeval.tokenize import find_corenlp_jar

    jar = find_corenlp_jar()
    ref_flat, pred_flat = documents()
    n_tokens = sum(len(c.split()) for c in ref_flat + pred_flat)
    print(f"input: {len(ref_flat):,} reference captions + {len(pred_flat):,} predictions "
          f"({len(set(ref_flat + pred_flat)):,} distinct), ~{n_tokens:,} whitespace tokens")
    capeval_tokenize(["warm up the import"])  # import outside the timed region; see the fresh-process numbers

    py_times, jar_times = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        py = [capeval_tokenize(ref_flat), capeval_tokenize(pred_flat)]
        py_times.append(time.perf_counter() - t)
        if java:
            t = time.perf_counter()
            jr = [jar_tokenize(ref_flat, jar, java), jar_tokenize(pred_flat, jar, java)]
            jar_times.append(time.perf_counter() - t)
    fresh = fresh_interpreter_seconds([ref_flat, pred_flat], args.repeat)
    py_t, fresh_t = statistics.median(py_times), statistics.median(fresh)
    print(f"capeval ptb (in process, cold cache): {py_t:.3f} s   (runs: {', '.join(f'{x:.3f}' for x in py_times)})")
    print(f"capeval ptb (fresh interpreter incl. import): {fresh_t:.3f} s   (runs: {', '.join(f'{x:.3f}' for x in fresh)})")
    if java:
        jar_t = statistics.median(jar_times)
        print(f"CoreNLP jar (2 JVM runs, pycocoevalcap post-processing): {jar_t:.3f} s   "
              f"(runs: {', '.join(f'{x:.3f}' for x in jar_times)})")
        print(f"speed-up: {jar_t / py_t:.1f}x in process, {jar_t / fresh_t:.1f}x with a fresh interpreter")
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
