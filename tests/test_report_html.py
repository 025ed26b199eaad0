"""The HTML report renders in a real browser: headless Chromium screenshots it and dumps its DOM.

Skipped, with the reason, where no Chromium is installed (Debian: ``apt-get install -y chromium``).
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from capeval.formats import References
from capeval.report import PALETTE, build_report

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install -y chromium)")

CASES = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))
C300 = CASES["coco300"]
IDS = C300["ids"][:150]
REFS = References({i: C300["refs"][i] for i in IDS}, categories={i: ("indoors", "outdoors")[k % 2] for k, i in enumerate(IDS)})
SYSTEMS = {
    "human": {i: C300["preds"][i] for i in IDS},
    "half-copied": {i: (C300["refs"][i][0] if k % 2 else C300["preds"][i]) for k, i in enumerate(IDS)},
}


def chromium(tmp_path, *args):
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def two_splits():
    """Two splits where the systems' ranks are swapped: "human" wins a, "half-copied" wins b."""
    pytest.importorskip("matplotlib")
    from capeval.report import build_report

    half = len(IDS) // 2
    a_ids, b_ids = IDS[:half], IDS[half:]
    refs = {i: C300["refs"][i] for i in IDS}
    good = {i: C300["refs"][i][0] for i in IDS}  # a reference as the caption: a high score
    poor = {i: C300["preds"][i] for i in IDS}
    splits = {
        "a": ({i: refs[i] for i in a_ids}, {"half-copied": {i: poor[i] for i in a_ids}, "human": {i: good[i] for i in a_ids}},
              {i: ("x", "y")[k % 2] for k, i in enumerate(a_ids)}),
        "b": ({i: refs[i] for i in b_ids}, {"half-copied": {i: good[i] for i in b_ids}, "human": {i: poor[i] for i in b_ids}}),
    }
    return build_report(splits=splits, metrics=["bleu", "rouge_l", "cider_d"], n_resamples=50)


def _bar_colors(ax):
    from matplotlib.colors import to_hex

    return [to_hex(p.get_facecolor()) for p in ax.patches]


def test_each_system_keeps_its_colour_in_every_chart_whatever_its_rank(two_splits):
    report = two_splits
    assert list(report.table("a")["system"]) == ["human", "half-copied"]
    assert list(report.table("b")["system"]) == ["half-copied", "human"]
    colors = report.system_colors()
    assert colors == {"half-copied": PALETTE[0], "human": PALETTE[1]}  # the order they were added
    figures = report.chart_figures()
    for split in ("a", "b"):  # the ranking chart: bars in rank order, each in its system's colour
        (ax,) = figures[f"{split}-CIDEr-D"].axes
        ranked = list(report.table(split)["system"])
        assert _bar_colors(ax) == [colors[s] for s in ranked]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == ranked
    for name in ("a-metrics", "b-metrics", "a-categories"):
        fig = figures[name]
        (ax,) = fig.axes
        legend = fig.legends[0]
        assert [t.get_text() for t in legend.get_texts()] == list(report.table(name[0])["system"])
        assert _legend_colors(legend) == [colors[t.get_text()] for t in legend.get_texts()]
        # the legend sits outside the data: its box does not overlap the axes' box
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box, axes_box = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert box.x0 >= axes_box.x1 or box.y1 <= axes_box.y0 or box.y0 >= axes_box.y1
        assert ax.get_ylabel().endswith("(x100)")
    assert figures["a-CIDEr-D"].axes[0].get_xlabel() == "CIDEr-D (x100)"


def _legend_colors(legend):
    from matplotlib.colors import to_hex

    return [to_hex(h.get_facecolor()) for h in legend.legend_handles]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    report = build_report(REFS, SYSTEMS, metrics=["bleu", "rouge_l", "cider_d"], n_resamples=100, title="Rendered board")
    return report, report.write(out, formats=["html"])["html"], out


def hex_rgb(color):
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255


@needs_chromium
def test_screenshot_shows_the_table_and_the_charts(page):
    report, html, tmp = page
    shot = tmp / "shot.png"
    proc = chromium(tmp, f"--screenshot={shot}", "--window-size=1280,2000", html.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-1000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    non_white = (pixels < 0.95).any(axis=2)
    assert non_white.mean() > 0.02  # not blank
    for color in PALETTE[:2]:  # bars in the two systems' colours (tab:blue, tab:orange)
        close = (np.abs(pixels - hex_rgb(color)) < 0.04).all(axis=2)
        assert close.sum() > 2000, color
    # the table's header band (light grey) sits above the first chart
    header = (np.abs(pixels - hex_rgb("#f3f5f8")) < 0.01).all(axis=2)
    first_blue = np.argmax((np.abs(pixels - hex_rgb(PALETTE[0])) < 0.04).all(axis=2).any(axis=1))
    assert header.any() and np.argmax(header.any(axis=1)) < first_blue


@needs_chromium
def test_dom_has_the_rows_and_loaded_images(page):
    report, html, tmp = page
    proc = chromium(tmp, "--dump-dom", html.as_uri())
    dom = proc.stdout
    assert '<table class="leaderboard">' in dom, proc.stderr[-1000:]
    rows = re.findall(r'<tr class="system"><td class="rank">(\d+)</td><td class="name">([^<]+)</td>', dom)
    assert rows == [("1", "half-copied"), ("2", "human")]
    top = report.table().iloc[0]
    assert f"{top['CIDEr-D']:.2f}" in dom
    assert len(re.findall(r'<img class="chart"[^>]*src="data:image/png;base64,', dom)) == 3
    assert dom.count('<tr class="category">') == 2
