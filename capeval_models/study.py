"""The DropHead seed study: both Transformers trained with several seeds, greedy captions, CIDEr-D x100.

Per seed, capeval.stats gives each model's bootstrap interval and the paired bootstrap of the difference on
the same images (within-seed noise). Across seeds, the question is whether DropHead helps beyond the seed
to seed spread: an exact sign-flip test on the per-seed differences (all 2^k sign assignments), which needs
no distributional assumption and no scipy. With k seeds its smallest possible p-value is 2 / 2^k (0.25 for
three seeds), and the report says so rather than promising significance the design cannot give.
"""

from __future__ import annotations

import itertools

import numpy as np

PAIR = ("transformer", "transformer-drophead")


def sign_flip_p_value(differences) -> float:
    """Two-sided exact p-value of mean(differences) == 0 against all 2^k sign flips (k <= 16)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0 or d.size > 16:
        raise ValueError(f"the exact sign-flip test takes 1 to 16 differences, got {d.size}")
    observed = abs(d.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    means = np.abs((signs * d).mean(axis=1))
    return float(np.mean(means >= observed - 1e-12))


def seed_study(results: dict, n_resamples: int) -> dict:
    """results: {split: {model: {seed: EvaluationResult}}} (greedy captions of PAIR). Returns per-seed scores
    with intervals, the paired bootstrap per seed and the across-seed comparison, all CIDEr-D x100."""
    from capeval.stats import bootstrap_ci, compare

    per_seed, comparison = {}, {}
    for split, by_model in results.items():
        for model, by_seed in by_model.items():
            for seed, result in by_seed.items():
                ci = bootstrap_ci(result, n_resamples=n_resamples, metrics=["CIDEr-D"])["CIDEr-D"]
                per_seed.setdefault(split, {}).setdefault(model, {})[str(seed)] = {
                    "CIDEr-D": 100 * result.scores["CIDEr-D"], "low": 100 * ci.low, "high": 100 * ci.high,
                    "signature": result.signatures["cider_d"]}
        base, drop = by_model.get(PAIR[0], {}), by_model.get(PAIR[1], {})
        seeds = sorted(set(base) & set(drop), key=int)
        if not seeds:
            continue
        paired = {}
        for s in seeds:
            c = compare(drop[s], base[s], n_resamples=n_resamples, metrics=["CIDEr-D"])["CIDEr-D"]
            paired[str(s)] = {"delta": 100 * c["delta"], "ci": [100 * c["ci_low"], 100 * c["ci_high"]],
                              "p_value": c["p_value"]}
        diffs = np.array([paired[str(s)]["delta"] for s in seeds])
        p = sign_flip_p_value(diffs)
        mean = float(diffs.mean())
        scores = {m: [per_seed[split][m][str(s)]["CIDEr-D"] for s in seeds] for m in PAIR}
        comparison[split] = {
            "seeds": [int(s) for s in seeds], "mean_difference": mean,
            "sd_difference": float(diffs.std(ddof=1)) if diffs.size > 1 else float("nan"),
            "drophead_wins": int((diffs > 0).sum()), "paired_bootstrap_per_seed": paired,
            "p_value_sign_flip": p, "smallest_possible_p": 2.0 / 2 ** diffs.size,
            "mean": {m: float(np.mean(v)) for m, v in scores.items()},
            "sd": {m: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for m, v in scores.items()},
            "verdict": ("DropHead helps" if mean > 0 else "DropHead hurts") if p < 0.05 else
                       "no significant difference" + (" (too few seeds for the test to reach p < 0.05)"
                                                      if 2.0 / 2 ** diffs.size >= 0.05 else ""),
        }
    return {"per_seed": per_seed, "comparison": comparison, "decoding": "greedy", "scale": 100,
            "test": "exact sign-flip test over seeds of the paired CIDEr-D differences"}


