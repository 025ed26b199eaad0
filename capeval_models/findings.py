"""The run's summary (models x splits, CIDEr-D x100 with intervals, ranked by nice) and its findings, each
with the statistic that backs it: paired bootstraps for the model ordering, interval overlap against the
baseline, the nice - val gap, the DropHead seed study, and the caption-quality counts."""

from __future__ import annotations

import math

BASELINE = "most-frequent-caption"


def summarize(report, seeds: dict | None, quality: dict | None, n_resamples: int) -> dict:
    """Models x splits (CIDEr-D x100 with CIs), ranked by nice; the nice - val gap; orderings tested."""
    from capeval.stats import compare

    rank_split = "nice" if "nice" in report.splits else report.splits[0]
    rows = {}
    for split, info in report.details.items():
        for s in info["systems"]:
            row = rows.setdefault(s["system"], {"system": s["system"]})
            row[split] = {"CIDEr-D": s["scores"].get("CIDEr-D"), "ci": s["ci"].get("CIDEr-D"), "rank": s["rank"]}
    order = sorted(rows, key=lambda k: -(rows[k].get(rank_split, {}).get("CIDEr-D") or -math.inf))
    for name in order:
        r = rows[name]
        if "nice" in r and "val" in r:
            r["gap_nice_minus_val"] = r["nice"]["CIDEr-D"] - r["val"]["CIDEr-D"]
    findings = {}
    # ordering: transformer > lstm > rnn, tested with a paired bootstrap on CIDEr-D
    chain = [m for m in ("transformer", "lstm", "rnn") if m in rows]
    for split in [s for s in ("val", "nice") if s in report.splits]:
        tests = []
        for a, b in zip(chain, chain[1:]):
            ra, rb = report.results.get((split, a)), report.results.get((split, b))
            if ra is None or rb is None:
                continue
            c = compare(ra, rb, n_resamples=n_resamples, metrics=["CIDEr-D"])["CIDEr-D"]
            tests.append({"a": a, "b": b, "delta": 100 * c["delta"], "ci": [100 * c["ci_low"], 100 * c["ci_high"]],
                          "p_value": c["p_value"]})
        findings.setdefault("ordering", {})[split] = {
            "tests": tests,
            "observed": sorted(chain, key=lambda m: -rows[m][split]["CIDEr-D"]),
            "holds": all(t["delta"] > 0 for t in tests),
            "holds_significantly": all(t["delta"] > 0 and t["p_value"] < 0.05 for t in tests),
        }
    base = rows.get(BASELINE, {})
    findings["beats_baseline"] = {
        split: {m: rows[m][split]["CIDEr-D"] > base[split]["CIDEr-D"] and rows[m][split]["ci"][0] > base[split]["ci"][1]
                for m in rows if m != BASELINE and split in rows[m] and rows[m][split]["ci"]}
        for split in report.splits if split in base and base[split]["ci"]}
    if "nice" in report.splits and "val" in report.splits:
        findings["nice_harder_than_val"] = {m: rows[m]["gap_nice_minus_val"] < 0 for m in order if m != BASELINE
                                            and "gap_nice_minus_val" in rows[m]}
    tf_val = rows.get("transformer", {}).get("val", {}).get("CIDEr-D")
    if tf_val is not None:
        findings["transformer_val_cider_x1"] = tf_val / 100
    return {"rank_by": f"CIDEr-D on {rank_split}", "scale": 100, "splits": report.splits,
            "systems": [rows[k] for k in order], "findings": findings, "drophead_seeds": seeds,
            "caption_quality": quality, "notes": list(report.notes)}


def _fmt(cell) -> str:
    if not cell or cell.get("CIDEr-D") is None:
        return "-"
    text = f"{cell['CIDEr-D']:.1f}"
    if cell.get("ci"):
        text += f" [{cell['ci'][0]:.1f}, {cell['ci'][1]:.1f}]"
    return text


def summary_table(summary: dict) -> str:
    """The Markdown models x splits table (CIDEr-D x100, 95% CI), ranked by nice."""
    splits = summary["splits"]
    gap = "nice" in splits and "val" in splits
    head = ["#", "System"] + [f"{s} CIDEr-D" for s in splits] + (["nice - val"] if gap else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:", ":---"] + ["---:"] * (len(head) - 2)) + "|"]
    for k, row in enumerate(summary["systems"], start=1):
        cells = [str(k), row["system"]] + [_fmt(row.get(s)) for s in splits]
        if gap:
            g = row.get("gap_nice_minus_val")
            cells.append("-" if g is None else f"{g:+.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_text(summary: dict) -> list[str]:
    f = summary["findings"]
    out = []
    tf = f.get("transformer_val_cider_x1")
    if tf is not None:
        out.append(f"Transformer (greedy) val CIDEr-D = {tf:.3f} on the x1 scale "
                   f"({'meets' if tf >= 1.0 else 'misses'} the target of 1.0).")
    for split, beats in f.get("beats_baseline", {}).items():
        losers = [m for m, ok in beats.items() if not ok]
        out.append(f"{split}: every model's CIDEr-D interval lies above the most-frequent-caption baseline's."
                   if not losers else f"{split}: not clearly above the baseline: {', '.join(losers)}.")
    if "nice_harder_than_val" in f:
        easier = [m for m, ok in f["nice_harder_than_val"].items() if not ok]
        out.append("nice is harder than val for every model (negative nice - val gap)." if not easier
                   else f"nice is NOT harder than val for: {', '.join(easier)}.")
    for split, o in f.get("ordering", {}).items():
        tests = "; ".join(f"{t['a']} - {t['b']} = {t['delta']:+.1f} [{t['ci'][0]:+.1f}, {t['ci'][1]:+.1f}], "
                          f"p = {t['p_value']:.3f}" for t in o["tests"])
        verdict = ("holds, significantly" if o["holds_significantly"] else "holds, not all significant" if o["holds"]
                   else "does not hold")
        out.append(f"{split}: the seed report's ordering Transformer > LSTM > RNN {verdict} "
                   f"(observed {' > '.join(o['observed'])}; paired bootstrap on CIDEr-D x100: {tests}).")
    seeds = summary.get("drophead_seeds") or {}
    for split, c in (seeds.get("comparison") or {}).items():
        sd = c["sd_difference"]
        out.append(
            f"{split}: DropHead over {len(c['seeds'])} seeds (greedy): transformer-drophead - transformer = "
            f"{c['mean_difference']:+.1f} CIDEr-D x100 on average"
            + (f" (sd {sd:.1f})" if sd is not None and math.isfinite(sd) else "")
            + f", DropHead better for {c['drophead_wins']} of {len(c['seeds'])} seeds, exact sign-flip test "
            f"p = {c['p_value_sign_flip']:.3f} (smallest possible {c['smallest_possible_p']:.3f}): {c['verdict']}.")
    quality = summary.get("caption_quality") or {}
    for split, by_system in (quality.get("systems") or {}).items():
        ref = quality.get("references", {}).get(split, {})
        parts = [f"{s} {100 * q['repeated_2gram']:.0f}% / {100 * q['repeated_3gram']:.0f}%" for s, q in by_system.items()]
        out.append(f"{split}: captions with a repeated word bigram / trigram: " + ", ".join(parts)
                   + (f" (references: {100 * ref['repeated_2gram']:.0f}% / {100 * ref['repeated_3gram']:.0f}%)."
                      if ref else "."))
        wrong = [f"{s} {100 * q['wrong_shape']:.0f}%" for s, q in by_system.items() if q.get("wrong_shape") is not None]
        if wrong:
            out.append(f"{split}: captions naming a shape that no reference of the image names: "
                       + ", ".join(wrong) + ".")
    return out


