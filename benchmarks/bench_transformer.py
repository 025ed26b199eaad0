"""CPU speed of the PyTorch CaptioningTransformer: training throughput and decoding speed.

Sizes follow CS231n's captioning assignment: batch 100, captions of 18 tokens (17 decoder positions),
V = 1004 words, 512-d global features; region models read a 4 x 4 grid of 128-d region features (what
capeval_models.data extracts). Model sizes: "default" (d_model 128, 2 layers, 4 heads, FFN 512) and
"large" (d_model 256, 3 layers, 4 heads, FFN 1024).

    python benchmarks/bench_transformer.py [--threads 1] [--repeat 10] [--sizes default,large] [--json out.json]

Training: one full step (forward, loss, backward, gradient clipping, AdamW) timed ``--repeat`` times after two
warm-up steps; reports the median as captions per second. Decoding: greedy and beam search (beam 3) over 100
images, <END> suppressed so every caption runs the full 17 tokens (worst case); reports images per second.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capeval_models.torch_training import TrainConfig, make_optimizer  # noqa: E402
from capeval_models.transformer import END, CaptioningTransformer, beam_search, greedy_decode  # noqa: E402

N, T, V, D, GRID, DR = 100, 18, 1004, 512, (4, 4), 128
SIZES = {
    "default": {"d_model": 128, "n_layers": 2, "n_heads": 4},
    "large": {"d_model": 256, "n_layers": 3, "n_heads": 4},
}


def make_batch(rng):
    captions = np.zeros((N, T), dtype=np.int64)
    for i, k in enumerate(rng.integers(8, T - 1, size=N)):  # k words, <START> .. <END>, <NULL> padding
        captions[i, : k + 2] = [1, *rng.integers(4, V, size=k), 2]
    return {
        "captions": torch.as_tensor(captions),
        "global": torch.as_tensor(rng.standard_normal((N, D)), dtype=torch.float32),
        "regions": torch.as_tensor(rng.standard_normal((N, GRID[0] * GRID[1], DR)), dtype=torch.float32),
    }


def build(size, memory):
    torch.manual_seed(0)
    dim = D if memory == "global" else DR
    return CaptioningTransformer(V, dim, memory=memory, grid_shape=GRID, **SIZES[size])


def time_training(model, image, captions, repeat):
    optimizer = make_optimizer(model, TrainConfig())
    model.train()

    def step():
        loss = model.loss(captions, image)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(2):
        step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_decoding(model, image, repeat, beam):
    with torch.no_grad():
        model.head.bias[END] = -1e4  # never stop early: every caption is decoded to the full length
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = greedy_decode(model, image) if beam == 1 else beam_search(model, image, beam_size=beam)
        times.append(time.perf_counter() - t)
    assert out.ids.shape == (N, T - 1)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--decode-repeat", type=int, default=3)
    parser.add_argument("--sizes", default="default,large")
    parser.add_argument("--memories", default="global,regions")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = make_batch(np.random.default_rng(0))
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}")
    print(f"{'model':<18}{'params':>10}{'train capt/s':>14}{'ms/step':>10}{'greedy img/s':>14}{'beam3 img/s':>13}")
    for size in args.sizes.split(","):
        for memory in args.memories.split(","):
            model = build(size, memory)
            image = batch["global" if memory == "global" else "regions"]
            step_s = time_training(model, image, batch["captions"], args.repeat)
            greedy_s = time_decoding(model, image, args.decode_repeat, 1)
            beam_s = time_decoding(model, image, args.decode_repeat, 3)
            row = {"size": size, "memory": memory, "params": model.num_parameters(), "batch": N,
                   "train_captions_per_s": N / step_s, "train_ms_per_step": 1000 * step_s,
                   "greedy_images_per_s": N / greedy_s, "beam3_images_per_s": N / beam_s}
            rows.append(row)
            print(f"{size + '/' + memory:<18}{row['params']:>10,}{row['train_captions_per_s']:>14.0f}"
                  f"{row['train_ms_per_step']:>10.1f}{row['greedy_images_per_s']:>14.0f}{row['beam3_images_per_s']:>13.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__,
                                               "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
