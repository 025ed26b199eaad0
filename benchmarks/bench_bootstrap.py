"""Bootstrap intervals and paired tests over 5,000 images: capeval.stats vs a plain per-resample loop.

    python benchmarks/bench_bootstrap.py [--resamples 1000] [--trials 10000] [--repeat 3] [--markdown out.md]

Input: NICE val with the first retrieval hint as the submission (5,000 images, one reference), scored
once with BLEU-1..4, ROUGE-L and CIDEr-D (``capeval.evaluate``); a second system copies the reference
on every third image. METEOR is timed on synthetic per-segment statistics of the same size (its
resampling cost is the formula on summed statistics, not the JVM), so no Java is needed.

Timed, best of ``--repeat``:

* ``bootstrap_ci``: every metric, ``--resamples`` resamples (BLEU from resampled sufficient statistics);
* the same intervals from a plain Python loop (one ``rng.integers`` draw and one sum per resample),
  which is what the vectorized code replaces, and a check that both give the same numbers for the
  same draws;
* ``paired_bootstrap`` (``--resamples``) and ``approximate_randomization`` (``--trials``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import datasets  # noqa: E402
from capeval import evaluate  # noqa: E402
from capeval.bleu import bleu_from_statistics  # noqa: E402
from capeval.stats import _blocks, _evaluate_blocks, approximate_randomization, bootstrap_ci, paired_bootstrap  # noqa: E402

METRICS = ["bleu", "rouge_l", "cider_d"]


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def loop_bootstrap(result, n_resamples, seed):
    """The straightforward version: one resample at a time."""
    rng = np.random.default_rng(seed)
    bleu = result.statistics["bleu"]
    per = result.per_item[["ROUGE_L", "CIDEr-D"]].to_numpy()
    n = len(per)
    out = np.empty((n_resamples, 6))
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        out[b, :4] = bleu_from_statistics(bleu[idx].sum(axis=0), 4)
        out[b, 4:] = per[idx].mean(axis=0)
    return np.quantile(out, [0.025, 0.975], axis=0)


def synthetic_meteor(n, seed=0):
    from capeval.meteor import meteor_scores_from_stats, meteor_summable_stats

    rng = np.random.default_rng(seed)
    raw = np.zeros((n, 23))
    raw[:, 0] = rng.integers(5, 15, n)
    raw[:, 1] = rng.integers(5, 15, n)
    raw[:, 4] = np.minimum(raw[:, 0], rng.integers(0, 10, n))
    raw[:, 5] = raw[:, 4]
    raw[:, 20] = np.minimum(raw[:, 4], rng.integers(1, 4, n))
    raw[:, 21] = raw[:, 4]
    raw[:, 22] = raw[:, 4]
    stats = meteor_summable_stats(raw)
    import pandas as pd

    return SimpleNamespace(
        scores={"METEOR": float(meteor_scores_from_stats(stats.sum(axis=0)))},
        per_item=pd.DataFrame({"METEOR": meteor_scores_from_stats(stats)}),
        statistics={"meteor": stats},
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)

    refs, preds = datasets.nice_retrieval()
    start = time.perf_counter()
    result = evaluate(refs, preds, metrics=METRICS)
    t_eval = time.perf_counter() - start
    other_preds = {i: (refs[i][0] if k % 3 == 0 else preds[i]) for k, i in enumerate(refs)}
    other = evaluate(refs, other_preds, metrics=METRICS)
    n = len(result.per_item)

    # same draws, same numbers: the weight-matrix path against the loop
    rng = np.random.default_rng(1)
    draws = rng.integers(0, n, size=(20, n))
    weights = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)
    blocks, _ = _blocks(result)
    fast = _evaluate_blocks(blocks, weights)
    bleu = result.statistics["bleu"]
    slow = np.array([bleu_from_statistics(bleu[d].sum(axis=0), 4) for d in draws])
    agree = float(np.abs(fast[:, :4] - slow).max())
    assert agree < 1e-12, agree

    rows = []
    t_ci, ci = best_of(lambda: bootstrap_ci(result, n_resamples=args.resamples), args.repeat)
    rows.append((f"bootstrap_ci, 6 metrics, {args.resamples} resamples", t_ci))
    t_loop, _ = best_of(lambda: loop_bootstrap(result, args.resamples, 0), 1)
    rows.append((f"plain loop, same 6 metrics, {args.resamples} resamples", t_loop))
    t_pb, pb = best_of(lambda: paired_bootstrap(other, result, n_resamples=args.resamples), args.repeat)
    rows.append((f"paired_bootstrap, 6 metrics, {args.resamples} resamples", t_pb))
    t_ar, ar = best_of(lambda: approximate_randomization(other, result, n_trials=args.trials), args.repeat)
    rows.append((f"approximate_randomization, 6 metrics, {args.trials} trials", t_ar))
    try:
        fake = synthetic_meteor(n)
        t_met, _ = best_of(lambda: bootstrap_ci(fake, n_resamples=args.resamples), args.repeat)
        rows.append((f"bootstrap_ci, METEOR (synthetic stats), {args.resamples} resamples", t_met))
    except ImportError:
        pass

    lines = [
        f"NICE val, first retrieval hint: {n:,} images; evaluate() once: {t_eval:.2f} s; "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}, best of {args.repeat}",
        "",
        "| operation | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {t:.3f} |" for name, t in rows]
    lines += [
        "",
        f"speed-up of bootstrap_ci over the loop: {t_loop / t_ci:.1f}x; weight-matrix BLEU vs loop BLEU on the same draws: max |diff| {agree:.1e}",
        f"CIDEr-D {result.scores['CIDEr-D']:.4f} 95% CI [{ci['CIDEr-D'].low:.4f}, {ci['CIDEr-D'].high:.4f}]; "
        f"BLEU-4 {result.scores['Bleu_4']:.4f} [{ci['Bleu_4'].low:.4f}, {ci['Bleu_4'].high:.4f}]",
        f"paired bootstrap CIDEr-D delta {pb['CIDEr-D']['delta']:+.4f} p={pb['CIDEr-D']['p_value']:.4f}; "
        f"approximate randomization p={ar['CIDEr-D']['p_value']:.4f}",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
