"""Time one training iteration (forward + backward + Adam update) of the numpy CaptioningRNN.

Sizes are CS231n's captioning assignment: batch 100, captions of 17 tokens (T = 16 steps), D = 512 image
features, W = 256 word vectors, H = 512 hidden units, V = 1004 words. Both cells, float32 and float64.

    python benchmarks/bench_rnn.py [--repeat 10] [--threads 1] [--json out.json]

Prints the median and the minimum wall-clock milliseconds per iteration over ``--repeat`` timed iterations
after two warm-up iterations, and the median CPU time of the process (all its threads) per iteration, which
is the steadier number on a shared machine. ``--threads`` limits numpy's OpenBLAS threads (default: the
library's own setting).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capeval_models.optim import Optimizer  # noqa: E402
from capeval_models.rnn import CaptioningRNN  # noqa: E402
from capeval_models.training import blas_threads  # noqa: E402

N, T, D, W, H, V = 100, 16, 512, 256, 512, 1004


def make_batch(rng):
    words = ["<NULL>", "<START>", "<END>", "<UNK>"] + [f"w{i}" for i in range(V - 4)]
    word_to_idx = {w: i for i, w in enumerate(words)}
    features = rng.standard_normal((N, D)).astype(np.float32)
    captions = np.zeros((N, T + 1), dtype=np.int32)
    lengths = rng.integers(8, T, size=N)  # words per caption; <START> w.. <END> then <NULL> padding
    captions[:, 0] = 1
    for i, k in enumerate(lengths):
        captions[i, 1 : k + 1] = rng.integers(4, V, size=k)
        captions[i, k + 1] = 2
    return word_to_idx, features, captions


def time_iteration(cell, dtype, repeat, rng):
    word_to_idx, features, captions = make_batch(rng)
    model = CaptioningRNN(word_to_idx, D, W, H, cell_type=cell, dtype=dtype, seed=0)
    opt = Optimizer("adam", {"learning_rate": 1e-3})

    def step():
        loss, grads = model.loss(features, captions)
        opt.step(model.params, grads)
        return loss

    for _ in range(2):
        step()
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1000 * float(np.median(wall)), 1000 * float(np.min(wall)), 1000 * float(np.median(cpu))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="OpenBLAS threads (default: unchanged)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    rows = []
    print(f"CaptioningRNN train iteration, N={N} T={T} D={D} W={W} H={H} V={V}, median of {args.repeat}")
    print(f"numpy {np.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"BLAS threads: {args.threads or 'default'}")  # fmt: skip
    with blas_threads(args.threads):
        for cell in ("rnn", "lstm"):
            for dtype in (np.float32, np.float64):
                med, best, cpu = time_iteration(cell, dtype, args.repeat, rng)
                name = np.dtype(dtype).name
                rows.append({"cell": cell, "dtype": name, "median_ms": med, "min_ms": best, "cpu_ms": cpu})
                print(
                    f"  {cell:4s} {name:7s}  {med:8.1f} ms/iter wall (min {best:.1f}), {cpu:8.1f} ms CPU",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps({"sizes": dict(N=N, T=T, D=D, W=W, H=H, V=V), "results": rows}, indent=1)
        )
    return rows


if __name__ == "__main__":
    main()
