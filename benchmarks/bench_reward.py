"""Self-critical reward latency: 50 images x 5 sampled captions, CIDEr-D with precomputed frequencies.

    python benchmarks/bench_reward.py [--images 50] [--samples 5] [--repeat 200]

Side by side on the same 250 (sample, references) pairs: capeval's ``CiderDReward`` (references
encoded once), capeval's general ``evaluate()`` path, and pycocoevalcap 1.2's ``Cider`` (which can
only use the frequencies of the batch itself, so its number differs; it is timed as the baseline).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import datasets  # noqa: E402
from capeval import CiderDReward, DocumentFrequencies, evaluate  # noqa: E402
from capeval.tokenize import tokenize  # noqa: E402


def best_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times), 1000 * float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    refs, preds = datasets.coco_leave_one_out()
    ids = list(refs)
    flat = tokenize([c for i in ids for c in refs[i]] + [preds[i] for i in ids], "ptb")
    it = iter(flat)
    tok_refs = {i: [next(it) for _ in refs[i]] for i in ids}
    tok_preds = {i: next(it) for i in ids}
    train_ids, batch_ids = ids[args.images :], ids[: args.images]
    df = DocumentFrequencies.from_tokenized([tok_refs[i] for i in train_ids])  # the "training split"
    t = time.perf_counter()
    reward = CiderDReward({i: tok_refs[i] for i in batch_ids}, df=df)
    setup_ms = 1000 * (time.perf_counter() - t)
    donors = ids[args.images : args.images + args.samples]  # other images' captions as "samples"
    samples = [tok_preds[d] for _ in batch_ids for d in donors]
    keys = [i for i in batch_ids for _ in donors]

    got = reward.score(samples, keys)
    rows = []
    rows.append(("capeval CiderDReward.score", *best_ms(lambda: reward.score(samples, keys), args.repeat)))

    def general():
        out = []
        for d in donors:
            out.append(evaluate({i: tok_refs[i] for i in batch_ids}, {i: tok_preds[d] for i in batch_ids}, metrics="cider_d", tokenizer="none", df=df).per_item["CIDEr-D"].to_numpy())
        return np.stack(out, axis=1).ravel()

    assert np.allclose(general(), got, atol=1e-12)
    rows.append(("capeval evaluate() per sample column", *best_ms(general, max(args.repeat // 10, 3))))

    from pycocoevalcap.cider.cider import Cider

    gts = {k: tok_refs[i] for k, i in enumerate(keys)}
    res = {k: [s] for k, s in enumerate(samples)}

    def coco():
        with contextlib.redirect_stdout(io.StringIO()):
            return Cider().compute_score(gts, res)

    rows.append(("pycocoevalcap Cider (batch frequencies)", *best_ms(coco, max(args.repeat // 10, 3))))
    print(f"{args.images} images x {args.samples} samples = {len(samples)} captions; reward set-up {setup_ms:.1f} ms")
    print("| path | best (ms) | median (ms) |\n|---|---:|---:|")
    for name, best, med in rows:
        print(f"| {name} | {best:.2f} | {med:.2f} |")


if __name__ == "__main__":
    main()
