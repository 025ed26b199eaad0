"""Rendering the run's report: summary.{md,csv,json}, capeval's leaderboard files, and report.html, one page
that stands alone (every image embedded as base64, so the single file can be mailed).

:func:`report_files` returns every report file as {name: text}; the pipeline writes them with one call
(:func:`capeval_models.files.write_report_files`).
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import json_text
from .findings import findings_text, summary_table

SECTIONS = ("data", "leaderboard", "findings", "caption-quality", "samples", "training", "attention", "drophead")


@dataclass
class ReportInputs:
    config: object  # RunConfig
    data: dict | None  # {split: CaptionSplit}, for the sample images and the data section
    predictions: dict  # {split: {system: {image_id: caption}}}
    histories: dict  # {model: history}
    figures: Path  # folder of loss.png and val_cider.png
    attention: list = field(default_factory=list)  # attention PNG paths
    samples: int = 3  # images per split in the sample-captions section


def report_files(report, summary: dict, inputs: ReportInputs) -> dict[str, str]:
    files = {
        "report.html": report_html(report, summary, inputs),
        "leaderboard.md": report.to_markdown(),
        "leaderboard.html": report.to_html(),
        "leaderboard.csv": report.to_csv(),
        "leaderboard.json": report.to_json(),
        "summary.md": summary_markdown(summary),
        "summary.csv": summary_csv(summary),
        "summary.json": json_text(summary),
    }
    if len(report.categories):
        files["leaderboard_categories.csv"] = report.categories.to_csv(index=False, float_format="%.6f",
                                                                        lineterminator="\n")
    return files


# ------------------------------------------------------------------------------------------------ Markdown


def _num(x) -> str:
    return "" if x is None else f"{x:.6f}"


def _seed_columns(seeds) -> list[str]:
    return sorted({s for by_model in seeds["per_seed"].values() for per in by_model.values() for s in per}, key=int)


def _seed_rows(seeds) -> list[tuple[str, str, list[str], str, str]]:
    """(split, model, per-seed cells, mean, sd) of the DropHead study, CIDEr-D x100 with 95% CIs."""
    rows = []
    for split, by_model in seeds["per_seed"].items():
        comp = (seeds.get("comparison") or {}).get(split, {})
        for model, per in by_model.items():
            cells = [f"{per[s]['CIDEr-D']:.1f} [{per[s]['low']:.1f}, {per[s]['high']:.1f}]" if s in per else "-"
                     for s in _seed_columns(seeds)]
            mean, sd = comp.get("mean", {}).get(model), comp.get("sd", {}).get(model)
            rows.append((split, model, cells, "-" if mean is None else f"{mean:.1f}",
                         "-" if sd is None or not math.isfinite(sd) else f"{sd:.1f}"))
    return rows


def summary_markdown(summary: dict) -> str:
    lines = ["# Summary: caption decoders, ranked by CIDEr-D on nice", "",
             "CIDEr-D x100 (pycocoevalcap's CIDEr), 95% percentile-bootstrap intervals over images; the full "
             "table with every metric is in leaderboard.md, the whole report in report.html.", "",
             summary_table(summary), "", "## Findings", ""]
    lines += [f"- {t}" for t in findings_text(summary)]
    seeds = summary.get("drophead_seeds") or {}
    if seeds.get("per_seed"):
        cols = _seed_columns(seeds)
        lines += ["", "## DropHead across seeds (greedy decoding, CIDEr-D x100, 95% CI)", "",
                  "| split | model | " + " | ".join(f"seed {s}" for s in cols) + " | mean | sd |",
                  "|:---|:---|" + "---:|" * (len(cols) + 2)]
        for split, model, cells, mean, sd in _seed_rows(seeds):
            lines.append(f"| {split} | {model} | " + " | ".join(cells) + f" | {mean} | {sd} |")
    if summary["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def summary_csv(summary: dict) -> str:
    lines = ["system," + ",".join(f"{s}_CIDEr-D,{s}_low,{s}_high" for s in summary["splits"]) + ",gap_nice_minus_val"]
    for row in summary["systems"]:
        values = [row["system"]]
        for s in summary["splits"]:
            cell = row.get(s) or {}
            ci = cell.get("ci") or [None, None]
            values += [_num(cell.get("CIDEr-D")), _num(ci[0]), _num(ci[1])]
        values.append(_num(row.get("gap_nice_minus_val")))
        lines.append(",".join(values))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ HTML

_EXTRA_CSS = """
nav.toc{background:#f3f5f8;padding:.5rem 1rem;border-radius:6px}nav.toc a{margin-right:1rem}
section.part{margin-top:2.5rem}
img.figure{max-width:100%;height:auto;border:1px solid #eee}
figure figcaption{color:#555;font-size:.85rem}
div.sample{display:flex;gap:1.2rem;align-items:flex-start;margin:1rem 0;padding:.6rem;border:1px solid #eee}
div.sample img{image-rendering:pixelated;width:192px;height:192px;border:1px solid #ccc}
ul.refs{margin:.2rem 0 .4rem 1rem;padding:0;color:#333;font-size:.9rem}
span.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.35rem;vertical-align:-1px}
table.captions td{font-size:.9rem}
"""


def _img(png: bytes, alt: str, cls: str = "figure") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def image_png(pixels) -> bytes:
    """A uint8 (H, W, 3) image as PNG bytes."""
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, np.asarray(pixels, dtype=np.uint8), format="png")
    return buf.getvalue()


def _section(key: str, title: str, body: list[str]) -> str:
    return f'<section class="part" id="{key}"><h2>{html.escape(title)}</h2>\n' + "\n".join(body) + "\n</section>"


def _data_section(summary: dict, inputs: ReportInputs) -> list[str]:
    esc = html.escape
    data = inputs.data or {}
    sizes = {k: f"{v.num_images} images, {v.num_captions} reference captions" for k, v in data.items()}
    if inputs.config.data is None:
        from .data.shapes import NICE_STYLE_RATE, WITHHELD

        withheld = ", ".join(f"{c} {s}" for c, s in WITHHELD)
        items = [
            ("train", "synthetic 64x64 scenes of one to three coloured shapes (6 colours, 5 shapes, 2 sizes, a 3x3 "
                      "grid of positions), five reference captions each from a grammar with synonyms, relations "
                      "and counts. The models learn from it; its scores show how well they fit what they saw."),
            ("val", "new images from the same distribution as train: the held-out test of the same task."),
            ("nice", f"a zero-shot split in the manner of the NICE challenge: every image holds at least one "
                     f"colour-shape pair that never occurs in train or val ({withheld}), and "
                     f"{NICE_STYLE_RATE:.0%} of its references use phrasings the training grammar never "
                     f"produces (\"there is ... in the picture\", \"a circle that is red\", \"next to\")."),
        ]
        why = ("nice is harder because a model must name a combination it never saw (a decoder that learned "
               "\"purple\" goes with \"square\" will say so) and because its n-grams are scored against "
               "references phrased in ways no training caption was: CIDEr-D rewards matching n-grams, so even a "
               "correct caption in the training style scores lower. The nice - val gap in the tables measures "
               "both effects together.")
    else:
        items = [(k, f"from {getattr(v, 'source', inputs.config.data)}") for k, v in data.items()]
        why = ("nice (when given) is the NICE challenge's validation set: images and phrasings outside COCO's "
               "distribution, which is why scores there are lower than on val.")
    body = ["<dl>"]
    for name, text in items:
        if name in data or inputs.data is None:
            body.append(f"<dt><b>{esc(name)}</b> <small>({esc(sizes.get(name, ''))})</small></dt><dd>{esc(text)}</dd>")
    body.append("</dl>")
    body.append(f"<p>{esc(why)}</p>")
    body.append(f"<p>Systems are ranked by {esc(summary['rank_by'])}; every score in this report is x100 "
                "(pycocoevalcap's numbers times 100), with 95% percentile-bootstrap intervals over images.</p>")
    return body


def _findings_section(summary: dict) -> list[str]:
    return ['<ul class="findings">' + "".join(f"<li>{html.escape(t)}</li>" for t in findings_text(summary)) + "</ul>"]


def _quality_section(summary: dict, colors: dict) -> list[str]:
    quality = summary.get("caption_quality") or {}
    body = ["<p>Share of captions with a repeated word bigram or trigram (\"a yellow circle a large yellow "
            "circle\" repeats \"yellow circle\") and of captions naming a shape that no reference of the image "
            "names. CIDEr-D can be high while both are: each n-gram of a repeated phrase still matches a "
            "reference. The references' own shares are the yardstick (\"a red square and a red circle\" "
            "repeats \"a red\").</p>"]
    for split, by_system in (quality.get("systems") or {}).items():
        ref = quality.get("references", {}).get(split)
        body.append(f"<h3>{html.escape(split)}</h3><table class=\"quality\"><thead><tr><th>System</th>"
                    "<th>repeated bigram (%)</th><th>repeated trigram (%)</th><th>wrong shape named (%)</th>"
                    "</tr></thead><tbody>")
        for system, q in by_system.items():
            wrong = "-" if q.get("wrong_shape") is None else f"{100 * q['wrong_shape']:.1f}"
            body.append(f'<tr><td>{_swatch(colors, system)}{html.escape(system)}</td>'
                        f'<td class="num">{100 * q["repeated_2gram"]:.1f}</td>'
                        f'<td class="num">{100 * q["repeated_3gram"]:.1f}</td><td class="num">{wrong}</td></tr>')
        if ref:
            body.append(f'<tr><td><i>references</i></td><td class="num">{100 * ref["repeated_2gram"]:.1f}</td>'
                        f'<td class="num">{100 * ref["repeated_3gram"]:.1f}</td><td>-</td></tr>')
        body.append("</tbody></table>")
    return body


def _swatch(colors: dict, system: str) -> str:
    color = colors.get(system)
    return f'<span class="swatch" style="background:{color}"></span>' if color else ""


def _samples_section(inputs: ReportInputs, colors: dict) -> list[str]:
    esc = html.escape
    body = ["<p>The first images of val and nice: the image, its references, and every system's caption.</p>"]
    for split in ("val", "nice"):
        sp = (inputs.data or {}).get(split)
        preds = inputs.predictions.get(split)
        if sp is None or not preds:
            continue
        body.append(f"<h3>{esc(split)}</h3>")
        for i in range(min(inputs.samples, sp.num_images)):
            image_id = sp.image_ids[i]
            refs = sp.references.get(image_id, [])
            picture = (_img(image_png(sp.images[i]), f"{split} {image_id}", "sample")
                       if sp.images is not None else "<p><i>(no pixels in this dataset)</i></p>")
            rows = "".join(f"<tr><td>{_swatch(colors, system)}{esc(system)}</td><td>{esc(p.get(image_id, ''))}</td></tr>"
                           for system, p in preds.items())
            category = (sp.categories or {}).get(image_id)
            body.append(f'<div class="sample" id="sample-{esc(split)}-{esc(image_id)}">{picture}<div>'
                        f"<b>{esc(image_id)}</b>" + (f" <small>({esc(category)})</small>" if category else "")
                        + '<br>References:<ul class="refs">' + "".join(f"<li>{esc(r)}</li>" for r in refs)
                        + f'</ul><table class="captions"><tbody>{rows}</tbody></table></div></div>')
    return body


def _figure_files(paths, caption) -> list[str]:
    out = []
    for path in paths:
        path = Path(path)
        if path.exists():
            out.append(f"<figure>{_img(path.read_bytes(), path.stem)}<figcaption>{html.escape(caption(path))}"
                       "</figcaption></figure>")
    return out


def _drophead_section(summary: dict) -> list[str]:
    esc = html.escape
    seeds = summary.get("drophead_seeds") or {}
    if not seeds.get("per_seed"):
        return ["<p>Not run (it needs both transformer and transformer-drophead).</p>"]
    cols = _seed_columns(seeds)
    body = ["<p>Both Transformers trained with several seeds, greedy captions, CIDEr-D x100 [95% CI]. The "
            "across-seed test is an exact sign-flip test on the per-seed paired differences.</p>",
            '<table class="drophead"><thead><tr><th>split</th><th>model</th>'
            + "".join(f"<th>seed {esc(s)}</th>" for s in cols) + "<th>mean</th><th>sd</th></tr></thead><tbody>"]
    for split, model, cells, mean, sd in _seed_rows(seeds):
        body.append(f"<tr><td>{esc(split)}</td><td>{esc(model)}</td>" + "".join(f'<td class="num">{esc(c)}</td>' for c in cells)
                    + f'<td class="num">{mean}</td><td class="num">{sd}</td></tr>')
    body.append("</tbody></table>")
    for split, c in (seeds.get("comparison") or {}).items():
        body.append(f"<p><b>{esc(split)}</b>: mean difference {c['mean_difference']:+.1f}, DropHead better for "
                    f"{c['drophead_wins']} of {len(c['seeds'])} seeds, sign-flip p = {c['p_value_sign_flip']:.3f} "
                    f"(smallest possible {c['smallest_possible_p']:.3f}): {esc(c['verdict'])}.</p>")
    return body


def report_html(report, summary: dict, inputs: ReportInputs) -> str:
    from capeval.report import html_head

    esc = html.escape
    colors = report.system_colors()
    title = report.title
    toc = {"data": "Data", "leaderboard": "Leaderboard", "findings": "Findings", "caption-quality": "Caption quality",
           "samples": "Sample captions", "training": "Training curves", "attention": "Attention maps",
           "drophead": "DropHead seed study"}
    parts = [html_head(title, _EXTRA_CSS), f"<h1>{esc(title)}</h1>",
             '<nav class="toc">' + "".join(f'<a href="#{k}">{esc(v)}</a>' for k, v in toc.items()) + "</nav>",
             _section("data", "Data: train, val and nice", _data_section(summary, inputs)),
             _section("leaderboard", "Leaderboard", ["<h3>CIDEr-D (x100) by split, ranked by nice</h3>",
                                                      _summary_table_html(summary, colors),
                                                      report.html_sections(heading_level=3)]),
             _section("findings", "Findings", _findings_section(summary)),
             _section("caption-quality", "Caption quality", _quality_section(summary, colors)),
             _section("samples", "Sample captions", _samples_section(inputs, colors)),
             _section("training", "Training curves", _figure_files(
                 [inputs.figures / "loss.png", inputs.figures / "val_cider.png"],
                 lambda p: "training loss per iteration (light: per minibatch; dark: moving average)" if p.stem == "loss"
                 else "validation CIDEr-D (x100) during training; dashed: the most-frequent-caption baseline")
                 or ["<p>No trained models.</p>"]),
             _section("attention", "Attention maps", ["<p>Per word of the Transformer's greedy caption: the image "
                      "darkened where the word did not attend (object colours unchanged), a white contour at half "
                      "the word's largest weight; the plain image comes first.</p>"]
                      + (_figure_files(inputs.attention, lambda p: p.stem) or ["<p>None drawn.</p>"])),
             _section("drophead", "DropHead seed study", _drophead_section(summary)),
             "</body></html>"]
    return "\n".join(parts)


def _summary_table_html(summary: dict, colors: dict) -> str:
    esc = html.escape
    splits = summary["splits"]
    gap = "nice" in splits and "val" in splits
    head = "".join(f"<th>{esc(s)} CIDEr-D</th>" for s in splits) + ("<th>nice - val</th>" if gap else "")
    rows = []
    for k, row in enumerate(summary["systems"], start=1):
        cells = []
        for s in splits:
            cell = row.get(s) or {}
            value = cell.get("CIDEr-D")
            ci = cell.get("ci")
            cells.append('<td class="num">' + ("-" if value is None else f"{value:.1f}")
                         + (f'<span class="ci">[{ci[0]:.1f}, {ci[1]:.1f}]</span>' if ci else "") + "</td>")
        if gap:
            g = row.get("gap_nice_minus_val")
            cells.append('<td class="num">' + ("-" if g is None else f"{g:+.1f}") + "</td>")
        rows.append(f'<tr class="summary-row"><td class="rank">{k}</td><td class="name">{_swatch(colors, row["system"])}'
                    f'{esc(row["system"])}</td>' + "".join(cells) + "</tr>")
    return (f'<table class="summary"><thead><tr><th>#</th><th>System</th>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")
