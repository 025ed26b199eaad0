"""Leaderboard reports in the NICE style: ranked systems, x100 scores, bootstrap CIs, categories.

    from capeval.formats import read_references, read_predictions
    refs = read_references("nice-val-5k.csv")                    # carries the category column
    report = build_report(refs, {"blip": read_predictions("blip.csv"), "retrieval": ...})
    report.leaderboard                                            # pandas DataFrame, one row per system
    report.write("out/")     # leaderboard.md, .html (charts embedded), .csv, .json (+ _categories.csv)

Several splits at once (the form the training job uses), categories from the references or given:

    build_report(splits={"val": (refs_val, {"a": preds_a, "b": preds_b}),
                         "test": (refs_test, {"a": ..., "b": ...}, categories_test)})

Or incrementally, when the results already exist:

    board = Leaderboard(title="NICE val")
    board.add_split("val", refs)                 # categories from refs.categories, or categories=
    board.add("val", "model-a", preds)           # evaluates; or board.add_result("val", "model-a", result)
    report = board.report()

Systems are ranked by CIDEr-D (the NICE leaderboard ranks by CIDEr, which is pycocoevalcap's CIDEr,
i.e. CIDEr-D); every metric is shown x100, as NICE does. Intervals are percentile bootstrap
intervals over images (:func:`capeval.stats.bootstrap_ci`: BLEU and METEOR recomputed from resampled
sufficient statistics, the others resampled means); per-category rows use the category's images
only, with the document frequencies of the whole split. Files are written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._io import atomic_directory, atomic_write_text, is_replaceable_directory
from ._version import __version__
from .errors import CapevalError, InputError
from .metrics import SIGMA, display_name, report_order
from .stats import DEFAULT_SEED, bootstrap_ci, corpus_scores

NO_CATEGORY = "(none)"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def system_colors(systems) -> dict[str, str]:
    """One fixed colour per system, by the order the systems were first given (never by rank), so a system
    keeps its colour in every chart and every split."""
    colors: dict[str, str] = {}
    for name in systems:
        colors.setdefault(str(name), PALETTE[len(colors) % len(PALETTE)])
    return colors


def _display(key: str) -> str:
    return display_name(key)


def _ordered(keys, rank_by: str) -> list[str]:
    ordered = report_order(keys)  # the registry's report order
    if rank_by in ordered:
        ordered.remove(rank_by)
        ordered.insert(0, rank_by)
    return ordered


def _finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# -- scoring --------------------------------------------------------------------------------------
@dataclass
class _Split:
    name: str
    refs: Mapping
    categories: dict | None
    systems: dict = field(default_factory=dict)  # system -> EvaluationResult


class Leaderboard:
    """Collects systems' results per split, then builds a :class:`Report`.

    Options are ``capeval.evaluate``'s (``metrics``, ``tokenizer``, ``df``, ``n``, ``sigma``,
    ``strict``, ``meteor_options``) and the report's: ``ci`` (bootstrap intervals, on by default),
    ``n_resamples``, ``seed``, ``alpha``, ``scale`` (100: NICE's scale), ``rank_by`` (``"CIDEr-D"``),
    ``title``.
    """

    def __init__(
        self,
        *,
        title: str = "Leaderboard",
        metrics=None,
        tokenizer: str = "ptb",
        df=None,
        n: int = 4,
        sigma: float = SIGMA,
        strict: bool = True,
        meteor_options: Mapping | None = None,
        ci: bool = True,
        n_resamples: int = 1000,
        seed: int | None = DEFAULT_SEED,
        alpha: float = 0.05,
        scale: float = 100.0,
        rank_by: str = "CIDEr-D",
        category_ci: bool = True,
        allow_df_mismatch: bool = False,
    ):
        from .df import DocumentFrequencies

        self.title = title
        self.evaluate_options = {
            "metrics": metrics,
            "tokenizer": tokenizer,
            "df": DocumentFrequencies.coerce(df, tokenizer=tokenizer, n=n, allow_mismatch=allow_df_mismatch),
            "n": n,
            "sigma": sigma,
            "strict": strict,
            "meteor_options": meteor_options,
            "allow_df_mismatch": allow_df_mismatch,
        }
        self.ci = ci
        self.n_resamples = n_resamples
        self.seed = seed
        self.alpha = alpha
        self.scale = scale
        self.rank_by = rank_by
        self.category_ci = category_ci
        self.splits: dict[str, _Split] = {}

    def add_split(self, name: str, refs: Mapping, categories: Mapping | None = None) -> None:
        """Register a split's references (``categories``: ``{id: name}``, default ``refs.categories``)."""
        if name in self.splits:
            raise InputError(f"split {name!r} was added twice")
        if categories is None:
            categories = getattr(refs, "categories", None)
        self.splits[name] = _Split(name, refs, dict(categories) if categories else None)

    def add(self, split: str, system: str, preds: Mapping):
        """Evaluate ``preds`` against the split's references; returns the EvaluationResult."""
        from .evaluate import evaluate
        from .formats import match_ids

        entry = self._split(split)
        if system in entry.systems:
            raise InputError(f"system {system!r} was added twice to split {split!r}")
        try:
            result = evaluate(entry.refs, match_ids(entry.refs, preds), **self.evaluate_options)
        except CapevalError as exc:
            raise type(exc)(f"system {system!r} on split {split!r}: {exc}") from None
        entry.systems[system] = result
        return result

    def add_result(self, split: str, system: str, result) -> None:
        """Add an existing :class:`capeval.EvaluationResult` (scored against this split's references)."""
        entry = self._split(split)
        if system in entry.systems:
            raise InputError(f"system {system!r} was added twice to split {split!r}")
        entry.systems[system] = result

    def _split(self, name: str) -> _Split:
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r}; add it with add_split() first (have {list(self.splits)})")
        return self.splits[name]

    # -- the report ---------------------------------------------------------------------------------
    def report(self) -> Report:
        if not any(s.systems for s in self.splits.values()):
            raise InputError("the leaderboard has no systems")
        board_rows, category_rows, details, notes = [], [], {}, []
        skipped: dict[tuple[str, str], list[str]] = {}
        all_keys: list[str] = []
        for split in self.splits.values():
            for result in split.systems.values():
                all_keys.extend(result.scores)
        metrics = _ordered(all_keys, self.rank_by)
        if self.rank_by not in metrics:
            raise InputError(f"cannot rank by {self.rank_by!r}: no system has it (metrics: {metrics})")
        for split in self.splits.values():
            if not split.systems:
                continue
            rows, cats, info = self._score_split(split, metrics)
            board_rows.extend(rows)
            category_rows.extend(cats)
            details[split.name] = info
            for system, result in split.systems.items():
                for key, reason in result.skipped.items():
                    skipped.setdefault((key, reason), []).append(f"{split.name}/{system}")
        for (key, reason), where in skipped.items():
            notes.append(f"{key} not computed for {', '.join(where)}: {reason}")
        notes.append("SPICE (shown by the NICE leaderboard) is not computed: it needs Stanford CoreNLP models downloaded at run time.")
        return Report(
            title=self.title,
            metrics=metrics,
            rank_by=self.rank_by,
            scale=self.scale,
            leaderboard=_frame(board_rows, metrics, ("split", "rank", "system", "n_images")),
            categories=_frame(category_rows, metrics, ("split", "system", "category", "n_images")),
            results={(s.name, name): r for s in self.splits.values() for name, r in s.systems.items()},
            details=details,
            ci=({"method": "percentile bootstrap over images", "n_resamples": self.n_resamples, "seed": self.seed, "alpha": self.alpha} if self.ci else None),
            notes=list(dict.fromkeys(notes)),
        )

    def _intervals(self, result, items=None):
        if not self.ci:
            return {}
        return bootstrap_ci(result, n_resamples=self.n_resamples, seed=self.seed, alpha=self.alpha, items=items).intervals

    def _score_split(self, split: _Split, metrics: list[str]):
        scale = self.scale
        entries = []
        for system, result in split.systems.items():
            intervals = self._intervals(result)
            entries.append((system, result, intervals))
        value = {system: result.scores.get(self.rank_by, -math.inf) for system, result, _ in entries}
        order = sorted(entries, key=lambda e: -value[e[0]])
        rows, cats, systems_info = [], [], []
        previous, rank = None, 0
        for position, (system, result, intervals) in enumerate(order, start=1):
            if value[system] != previous:
                rank, previous = position, value[system]
            row = {"split": split.name, "rank": rank, "system": system, "n_images": len(result.per_item)}
            for key in metrics:
                row[key] = result.scores[key] * scale if key in result.scores else np.nan
                row[f"{key}_low"] = intervals[key].low * scale if key in intervals else np.nan
                row[f"{key}_high"] = intervals[key].high * scale if key in intervals else np.nan
            row["signature"] = result.signature
            rows.append(row)
            info = {
                "rank": rank,
                "system": system,
                "n_images": len(result.per_item),
                "scores": {k: _finite(row[k]) for k in metrics if k in result.scores},
                "ci": {k: [_finite(row[f"{k}_low"]), _finite(row[f"{k}_high"])] for k in metrics if k in intervals},
                "raw_scores": {k: float(v) for k, v in result.scores.items()},
                "signature": result.signature,
                "signatures": dict(result.signatures),
                "skipped": dict(result.skipped),
            }
            if split.categories:
                info["categories"] = {}
                for category, ids in _category_groups(result.per_item.index, split.categories):
                    scores = corpus_scores(result, items=ids, metrics=[k for k in metrics if k in result.scores and _resampleable(result, k)])
                    cat_intervals = self._intervals(result, items=ids) if self.category_ci else {}
                    cat_row = {"split": split.name, "system": system, "category": category, "n_images": len(ids)}
                    for key in metrics:
                        cat_row[key] = scores[key] * scale if key in scores else np.nan
                        cat_row[f"{key}_low"] = cat_intervals[key].low * scale if key in cat_intervals else np.nan
                        cat_row[f"{key}_high"] = cat_intervals[key].high * scale if key in cat_intervals else np.nan
                    cats.append(cat_row)
                    info["categories"][category] = {
                        "n_images": len(ids),
                        "scores": {k: _finite(cat_row[k]) for k in metrics if k in scores},
                        "ci": {k: [_finite(cat_row[f"{k}_low"]), _finite(cat_row[f"{k}_high"])] for k in metrics if k in cat_intervals},
                    }
            systems_info.append(info)
        first = order[0][1]
        split_info = {
            "n_images": len(first.per_item),
            "categories": sorted({c for c, _ in _category_groups(first.per_item.index, split.categories)}) if split.categories else [],
            "signature": first.signature,
            "systems": systems_info,
        }
        return rows, cats, split_info


def _resampleable(result, key: str) -> bool:
    """Whether the result holds what the key's registered metric aggregates from."""
    from .stats import _blocks

    return not _blocks(result, [key])[1]


def _category_groups(index, categories: Mapping):
    groups: dict[str, list] = {}
    for item in index:
        groups.setdefault(categories.get(item, NO_CATEGORY) or NO_CATEGORY, []).append(item)
    return sorted(groups.items(), key=lambda kv: (kv[0] == NO_CATEGORY, kv[0]))


def _frame(rows, metrics, leading):
    import pandas as pd

    columns = list(leading)
    for key in metrics:
        columns += [key, f"{key}_low", f"{key}_high"]
    if rows and "signature" in rows[0]:
        columns.append("signature")
    return pd.DataFrame(rows, columns=columns)


def build_report(
    refs: Mapping | None = None,
    submissions: Mapping[str, Mapping] | None = None,
    *,
    splits: Mapping[str, Sequence] | None = None,
    categories: Mapping | None = None,
    split_name: str = "val",
    **options,
) -> Report:
    """Score every submission and build the report.

    Either ``refs`` and ``submissions`` (``{system: preds}``) for one split (named ``split_name``),
    or ``splits={name: (refs, {system: preds}[, categories])}``. ``categories`` (``{id: name}``)
    defaults to ``refs.categories`` (the NICE CSV's category column). Other keyword arguments are
    :class:`Leaderboard`'s.
    """
    board = Leaderboard(**options)
    if splits is None:
        if refs is None or submissions is None:
            raise TypeError("build_report needs refs and submissions, or splits=")
        splits = {split_name: (refs, submissions, categories)}
    elif refs is not None or submissions is not None:
        raise TypeError("pass either refs and submissions, or splits=, not both")
    for name, spec in splits.items():
        if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
            raise TypeError(f"splits[{name!r}] must be (refs, {{system: preds}}) or (refs, {{system: preds}}, categories)")
        board.add_split(name, spec[0], spec[2] if len(spec) == 3 else None)
        for system, preds in spec[1].items():
            board.add(name, system, preds)
    return board.report()


# -- the report object ----------------------------------------------------------------------------
@dataclass
class Report:
    """Leaderboard tables (pandas DataFrames, scores x ``scale``) and their renderings."""

    title: str
    metrics: list[str]
    rank_by: str
    scale: float
    leaderboard: object  # DataFrame: split, rank, system, n_images, <metric>, <metric>_low, <metric>_high, signature
    categories: object  # DataFrame: split, system, category, n_images, <metric>, <metric>_low, <metric>_high
    results: dict = field(repr=False, default_factory=dict)  # (split, system) -> EvaluationResult
    details: dict = field(repr=False, default_factory=dict)
    ci: dict | None = None
    notes: list[str] = field(default_factory=list)
    _charts: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def splits(self) -> list[str]:
        return list(self.details)

    def system_colors(self) -> dict[str, str]:
        """{system: colour} in the order the systems were added (the same colour in every chart)."""
        order = [system for _, system in self.results] or list(self.leaderboard["system"])
        return system_colors(order)

    def table(self, split: str | None = None):
        """The leaderboard of one split, indexed by rank (the first split by default)."""
        split = split or self.splits[0]
        frame = self.leaderboard[self.leaderboard["split"] == split].drop(columns=["split"])
        return frame.set_index("rank")

    def category_table(self, split: str | None = None, metric: str | None = None):
        """Categories x systems for one metric (``rank_by`` by default), with image counts."""
        import pandas as pd

        split = split or self.splits[0]
        metric = metric or self.rank_by
        frame = self.categories[self.categories["split"] == split]
        if frame.empty:
            return pd.DataFrame()
        wide = frame.pivot(index="category", columns="system", values=metric)
        systems = [s["system"] for s in self.details[split]["systems"]]
        wide = wide[[s for s in systems if s in wide.columns]]
        counts = frame.drop_duplicates("category").set_index("category")["n_images"]
        wide.insert(0, "n_images", counts)
        order = [c for c in self.details[split]["categories"] if c in wide.index]
        return wide.loc[order]

    @property
    def signature(self) -> str:
        sigs = {info["signature"] for info in self.details.values()}
        base = sigs.pop() if len(sigs) == 1 else "; ".join(f"{k}: {v['signature']}" for k, v in self.details.items())
        if self.ci:
            base += f"|ci:percentile|resamples:{self.ci['n_resamples']}|seed:{self.ci['seed']}|alpha:{self.ci['alpha']:g}"
        return base

    # -- renderings -------------------------------------------------------------------------------
    def _cell(self, row, key: str) -> str:
        value = _finite(row.get(key))
        if value is None:
            return "-"
        text = f"{value:.2f}"
        low, high = _finite(row.get(f"{key}_low")), _finite(row.get(f"{key}_high"))
        if low is not None and high is not None:
            text += f" [{low:.2f}, {high:.2f}]"
        return text

    def _header_lines(self) -> list[str]:
        lines = [f"capeval {__version__} · ranked by {_display(self.rank_by)} · all scores x{self.scale:g}"]
        if self.ci:
            lines.append(
                f"{1 - self.ci['alpha']:.0%} confidence intervals: percentile bootstrap over images "
                f"({self.ci['n_resamples']} resamples, seed {self.ci['seed']})"
            )
        return lines

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "capeval_version": __version__,
            "rank_by": self.rank_by,
            "scale": self.scale,
            "metrics": list(self.metrics),
            "ci": self.ci,
            "signature": self.signature,
            "splits": self.details,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_csv(self) -> str:
        return self.leaderboard.to_csv(index=False, float_format="%.6f", lineterminator="\n")

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        out += [line + "  " for line in self._header_lines()] + [""]
        for split in self.splits:
            info = self.details[split]
            out += [f"## {split} ({info['n_images']} images)", ""]
            header = ["Rank", "System"] + [_display(k) for k in self.metrics]
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "|".join(["---:", ":---"] + ["---:"] * len(self.metrics)) + "|")
            for _, row in self.table(split).reset_index().iterrows():
                cells = [str(row["rank"]), _md_escape(str(row["system"]))] + [self._cell(row, k) for k in self.metrics]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
            cats = self.category_table(split)
            if not cats.empty:
                out += [f"### {split}: {_display(self.rank_by)} by category", ""]
                systems = [c for c in cats.columns if c != "n_images"]
                out.append("| Category | Images | " + " | ".join(_md_escape(str(s)) for s in systems) + " |")
                out.append("|:---|---:|" + "---:|" * len(systems))
                for category, row in cats.iterrows():
                    values = [f"{row[s]:.2f}" if _finite(row[s]) is not None else "-" for s in systems]
                    out.append(f"| {_md_escape(str(category))} | {int(row['n_images'])} | " + " | ".join(values) + " |")
                out.append("")
            out += [f"Signature: `{info['signature']}`", ""]
        if self.notes:
            out += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(out)

    def charts(self) -> dict[str, bytes]:
        """PNG charts (name -> bytes): rank metric with CIs, all metrics, categories; {} without matplotlib.
        Each system has one colour in every chart (:meth:`system_colors`); legends sit outside the axes.
        Drawn once per report (every rendering embeds the same PNGs)."""
        if self._charts is None:
            self._charts = {name: _png(fig) for name, fig in self.chart_figures().items()}
        return self._charts

    def chart_figures(self) -> dict:
        """The charts as matplotlib Figures (name -> Figure), what :meth:`charts` renders; {} without matplotlib."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            from matplotlib.patches import Patch
        except ImportError:
            return {}
        palette = self.system_colors()

        def legend(fig, names):
            handles = [Patch(color=palette[n], label=n) for n in names]
            fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)

        charts = {}
        scale = f"x{self.scale:g}"
        for split in self.splits:
            table = self.table(split).reset_index()
            systems = [str(s) for s in table["system"]]
            colors = [palette[s] for s in systems]
            # 1. the ranking metric with its intervals (systems are named on the axis: no legend needed)
            fig = Figure(figsize=(7.5, 0.6 + 0.45 * len(systems) + 0.8), dpi=100, layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            values = table[self.rank_by].to_numpy(dtype=float)
            y = np.arange(len(systems))[::-1]
            err = None
            if f"{self.rank_by}_low" in table and table[f"{self.rank_by}_low"].notna().all():
                err = np.vstack([values - table[f"{self.rank_by}_low"].to_numpy(float), table[f"{self.rank_by}_high"].to_numpy(float) - values])
            ax.barh(y, values, color=colors, xerr=err, capsize=4)
            ax.set_yticks(y, systems)
            ax.set_xlabel(f"{_display(self.rank_by)} ({scale})")
            ax.set_title(f"{split}: {_display(self.rank_by)}" + (" with 95% CI" if err is not None and self.ci and self.ci["alpha"] == 0.05 else ""))
            charts[f"{split}-{self.rank_by}"] = fig
            # 2. every metric, grouped by system
            others = [k for k in self.metrics if k != self.rank_by]
            if others:
                fig = Figure(figsize=(9, 3.8), dpi=100, layout="constrained")
                FigureCanvasAgg(fig)
                ax = fig.add_subplot()
                width = 0.8 / max(len(systems), 1)
                x = np.arange(len(others))
                for j in range(len(systems)):
                    ax.bar(x + j * width - 0.4 + width / 2, table[others].iloc[j].to_numpy(float), width, color=colors[j])
                ax.set_xticks(x, [_display(k) for k in others])
                ax.set_ylabel(f"score ({scale})")
                ax.set_title(f"{split}: all metrics")
                legend(fig, systems)
                charts[f"{split}-metrics"] = fig
            # 3. the ranking metric by category
            cats = self.category_table(split)
            if not cats.empty:
                fig = Figure(figsize=(9, 3.8), dpi=100, layout="constrained")
                FigureCanvasAgg(fig)
                ax = fig.add_subplot()
                names = list(cats.index)
                x = np.arange(len(names))
                cat_systems = [str(c) for c in cats.columns if c != "n_images"]
                width = 0.8 / max(len(cat_systems), 1)
                for j, system in enumerate(cat_systems):
                    ax.bar(x + j * width - 0.4 + width / 2, cats[system].to_numpy(float), width, color=palette.get(system, PALETTE[j % len(PALETTE)]))
                ax.set_xticks(x, [f"{c}\n({int(n)})" for c, n in zip(names, cats["n_images"])], fontsize=8)
                ax.set_ylabel(f"{_display(self.rank_by)} ({scale})")
                ax.set_title(f"{split}: {_display(self.rank_by)} by category (images)")
                legend(fig, cat_systems)
                charts[f"{split}-categories"] = fig
        return charts

    def to_html(self) -> str:
        esc = html.escape
        parts = [html_head(self.title), f"<h1>{esc(self.title)}</h1>", self.html_sections(), "</body></html>"]
        return "\n".join(parts)

    def html_sections(self, heading_level: int = 2) -> str:
        """The report's body as HTML (meta lines, one section per split, notes) with its charts embedded as
        base64 PNGs: what :meth:`to_html` wraps in a page, and what a larger report can embed."""
        esc = html.escape
        h, h_sub = f"h{heading_level}", f"h{heading_level + 1}"
        charts = self.charts()
        parts = [f'<p class="meta">{esc(line)}</p>' for line in self._header_lines()]
        for split in self.splits:
            info = self.details[split]
            parts.append(f'<section class="split" id="split-{esc(split)}"><{h}>{esc(split)} <small>({info["n_images"]} images)</small></{h}>')
            parts.append('<table class="leaderboard"><thead><tr><th>Rank</th><th>System</th>')
            parts += [f"<th>{esc(_display(k))}</th>" for k in self.metrics]
            parts.append("</tr></thead><tbody>")
            for _, row in self.table(split).reset_index().iterrows():
                parts.append(f'<tr class="system"><td class="rank">{row["rank"]}</td><td class="name">{esc(str(row["system"]))}</td>')
                for key in self.metrics:
                    value = _finite(row.get(key))
                    low, high = _finite(row.get(f"{key}_low")), _finite(row.get(f"{key}_high"))
                    ci = f'<span class="ci">[{low:.2f}, {high:.2f}]</span>' if low is not None and high is not None else ""
                    parts.append(f'<td class="num">{"-" if value is None else f"{value:.2f}"}{ci}</td>')
                parts.append("</tr>")
            parts.append("</tbody></table>")
            for name in (f"{split}-{self.rank_by}", f"{split}-metrics", f"{split}-categories"):
                if name in charts:
                    data = base64.b64encode(charts[name]).decode("ascii")
                    parts.append(f'<figure><img class="chart" alt="{esc(name)}" src="data:image/png;base64,{data}"></figure>')
            cats = self.category_table(split)
            if not cats.empty:
                systems = [c for c in cats.columns if c != "n_images"]
                parts.append(f"<{h_sub}>{esc(_display(self.rank_by))} by category</{h_sub}>")
                parts.append('<table class="categories"><thead><tr><th>Category</th><th>Images</th>')
                parts += [f"<th>{esc(str(s))}</th>" for s in systems]
                parts.append("</tr></thead><tbody>")
                for category, row in cats.iterrows():
                    values = "".join(f'<td class="num">{row[s]:.2f}</td>' if _finite(row[s]) is not None else "<td>-</td>" for s in systems)
                    parts.append(f'<tr class="category"><td>{esc(str(category))}</td><td class="num">{int(row["n_images"])}</td>{values}</tr>')
                parts.append("</tbody></table>")
            parts.append(f'<p class="signature">Signature: <code>{esc(info["signature"])}</code></p></section>')
        if self.notes:
            parts.append(f"<{h}>Notes</{h}><ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        if not charts:
            parts.append('<p class="meta">Charts need matplotlib (pip install "capeval[report]").</p>')
        return "\n".join(parts)

    def write(self, out_dir, formats: Sequence[str] = ("md", "html", "csv", "json"), stem: str = "leaderboard") -> dict[str, Path]:
        """Write ``leaderboard.md``, ``.html``, ``.csv`` (and ``_categories.csv``), ``.json`` as one set.

        Everything is rendered first. A directory of the report's own (new, empty, or holding only
        report files, :func:`report_file_names`) is then replaced as a whole (:func:`capeval._io.atomic_directory`): an
        interrupted or failed run leaves the previous report, or none, never new files beside old
        ones. In a directory shared with other files (a ``capeval-models`` run directory) that swap
        would take the other files along, so there each file is replaced atomically, one by one.
        """
        out_dir = Path(out_dir)
        unknown = [fmt for fmt in formats if fmt not in ("md", "html", "csv", "json")]
        if unknown:
            raise ValueError(f"unknown report format {unknown[0]!r}; expected md, html, csv, json")
        files: dict[str, tuple[str, str]] = {}  # key -> (file name, text)
        for fmt in formats:
            if fmt == "md":
                files["md"] = (f"{stem}.md", self.to_markdown())
            elif fmt == "html":
                files["html"] = (f"{stem}.html", self.to_html())
            elif fmt == "csv":
                files["csv"] = (f"{stem}.csv", self.to_csv())
                if len(self.categories):
                    files["categories_csv"] = (f"{stem}_categories.csv", self.categories.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
            elif fmt == "json":
                files["json"] = (f"{stem}.json", self.to_json())
        names = report_file_names(stem)
        if is_replaceable_directory(out_dir, names):
            with atomic_directory(out_dir, names) as tmp:
                for name, text in files.values():
                    atomic_write_text(tmp / name, text)
        else:
            for name, text in files.values():
                atomic_write_text(out_dir / name, text)
        return {key: out_dir / name for key, (name, _) in files.items()}

    def __repr__(self) -> str:
        return f"Report({self.title!r}, splits={self.splits}, systems={len(self.leaderboard)}, rank_by={self.rank_by!r})"


def report_file_names(stem: str = "leaderboard") -> list[str]:
    """Every file :meth:`Report.write` may write: a directory holding only these is a report."""
    return [f"{stem}.md", f"{stem}.html", f"{stem}.csv", f"{stem}_categories.csv", f"{stem}.json"]


def html_head(title: str, extra_css: str = "") -> str:
    """The page's opening (doctype, charset, title, the report's CSS) up to and including <body>."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}{extra_css}</style></head><body>",
    ])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}h2 small{color:#777;font-weight:normal}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.3rem .55rem}th{background:#f3f5f8}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.rank{text-align:right;font-weight:bold}td.name{font-weight:600}
span.ci{display:block;color:#777;font-size:.75rem}
tbody tr:nth-child(even){background:#fafbfc}
img.chart{max-width:100%;height:auto}figure{margin:1rem 0}
p.meta{color:#555;margin:.2rem 0}p.signature code{font-size:.8rem;word-break:break-all}
"""


__all__ = ["PALETTE", "Leaderboard", "Report", "build_report", "html_head", "report_file_names", "system_colors"]
