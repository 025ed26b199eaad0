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
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install -y chromium)")

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
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    report = build_report(REFS, SYSTEMS, metrics=["bleu", "rouge_l", "cider_d"], n_resamples=100, title="Rendered board")
    return report, report.write(out, formats=["html"])["html"], out


def hex_rgb(color):
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255


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
