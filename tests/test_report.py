"""capeval.report: rankings, x100 scores with intervals, categories, several splits, the written files."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import capeval
from capeval.errors import InputError, MissingIdError
from capeval.formats import References
from capeval.report import Leaderboard, build_report

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

CASES = json.loads((Path(__file__).parent / "fixtures" / "golden_cases.json").read_text(encoding="utf-8"))
C300 = CASES["coco300"]
IDS = C300["ids"][:200]
CATS = ["animals", "street", "food"]
REFS = References({i: C300["refs"][i] for i in IDS}, categories={i: CATS[k % 3] for k, i in enumerate(IDS)})
SYSTEMS = {
    "human": {i: C300["preds"][i] for i in IDS},  # a held-out human caption
    "copy": {i: (C300["refs"][i][0] if k % 2 else C300["preds"][i]) for k, i in enumerate(IDS)},  # half copied refs
    "short": {i: " ".join(C300["preds"][i].split()[:3]) for i in IDS},
}
OPTIONS = {"metrics": ["bleu", "rouge_l", "cider_d"], "n_resamples": 200, "title": "Test board"}


@pytest.fixture(scope="module")
def report():
    return build_report(REFS, SYSTEMS, **OPTIONS)


def test_ranked_by_cider_d_on_the_x100_scale(report):
    table = report.table()
    assert list(table.index) == [1, 2, 3]
    assert list(table["system"]) == ["copy", "human", "short"]
    direct = {name: capeval.evaluate(REFS, preds, metrics=OPTIONS["metrics"]) for name, preds in SYSTEMS.items()}
    for _, row in table.iterrows():
        scores = direct[row["system"]].scores
        for key in ["CIDEr-D", "Bleu_1", "Bleu_4", "ROUGE_L"]:
            assert row[key] == pytest.approx(100 * scores[key], abs=1e-9)
            assert row[f"{key}_low"] < row[key] < row[f"{key}_high"]
        assert row["n_images"] == 200
    assert report.metrics == ["CIDEr-D", "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L"]
    assert "ci:percentile|resamples:200|seed:12345" in report.signature
    assert ("val", "copy") in report.results


def test_categories_use_each_categorys_images(report):
    cats = report.categories
    assert set(cats["category"]) == set(CATS)
    human = cats[(cats["system"] == "human")].set_index("category")
    assert human["n_images"].sum() == 200
    result = report.results[("val", "human")]
    for category in CATS:
        ids = [i for i in IDS if REFS.categories[i] == category]
        sub = capeval.evaluate({i: REFS[i] for i in ids}, {i: SYSTEMS["human"][i] for i in ids}, metrics="bleu")
        assert human.loc[category, "Bleu_4"] == pytest.approx(100 * sub.scores["Bleu_4"], abs=1e-9)  # corpus BLEU of the category
        mean_cider = result.per_item.loc[ids, "CIDEr-D"].mean()  # document frequencies of the whole split
        assert human.loc[category, "CIDEr-D"] == pytest.approx(100 * mean_cider, abs=1e-9)
        assert human.loc[category, "CIDEr-D_low"] < human.loc[category, "CIDEr-D"] < human.loc[category, "CIDEr-D_high"]
    wide = report.category_table()
    assert list(wide.columns) == ["n_images", "copy", "human", "short"] and list(wide.index) == sorted(CATS)


def test_several_splits_and_existing_results():
    half = IDS[:100]
    refs_b = {i: REFS[i] for i in half}
    report = build_report(
        splits={
            "val": (REFS, {"human": SYSTEMS["human"], "short": SYSTEMS["short"]}),
            "test": (refs_b, {"human": {i: SYSTEMS["human"][i] for i in half}}, {i: "all" for i in half}),
        },
        metrics=["bleu", "cider_d"],
        ci=False,
    )
    assert report.splits == ["val", "test"]
    assert list(report.leaderboard["split"]) == ["val", "val", "test"]
    assert report.table("test")["n_images"].tolist() == [100]
    assert report.leaderboard["CIDEr-D_low"].isna().all()  # ci=False
    assert set(report.categories[report.categories["split"] == "test"]["category"]) == {"all"}

    board = Leaderboard(metrics=["bleu", "cider_d"], n_resamples=50, category_ci=False)
    board.add_split("val", REFS)
    board.add_result("val", "given", capeval.evaluate(REFS, SYSTEMS["human"], metrics=["bleu", "cider_d"]))
    board.add("val", "scored", SYSTEMS["short"])
    rep = board.report()
    assert list(rep.table()["system"]) == ["given", "scored"]
    with pytest.raises(InputError, match="added twice"):
        board.add("val", "scored", SYSTEMS["short"])


def test_submission_errors_name_the_system():
    broken = dict(SYSTEMS["human"])
    broken.pop(IDS[0])
    with pytest.raises(MissingIdError, match=r"system 'broken' on split 'val': .*no prediction"):
        build_report(REFS, {"broken": broken}, metrics="bleu", ci=False)
    with pytest.raises(TypeError):
        build_report(REFS)


def test_ties_share_a_rank():
    report = build_report(REFS, {"a": SYSTEMS["human"], "b": dict(SYSTEMS["human"])}, metrics="cider_d", ci=False)
    assert report.table()["system"].tolist() == ["a", "b"] and list(report.table().index) == [1, 1]


def test_written_files(report, tmp_path):
    written = report.write(tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["leaderboard.csv", "leaderboard.html", "leaderboard.json", "leaderboard.md", "leaderboard_categories.csv"]
    assert set(written) == {"md", "html", "csv", "categories_csv", "json"}

    md = written["md"].read_text(encoding="utf-8")
    assert md.startswith("# Test board\n")
    assert "| Rank | System | CIDEr-D | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | ROUGE-L |" in md
    top = report.table().iloc[0]
    assert f"| 1 | copy | {top['CIDEr-D']:.2f} [{top['CIDEr-D_low']:.2f}, {top['CIDEr-D_high']:.2f}] |" in md
    assert "### val: CIDEr-D by category" in md and "| animals | 67 |" in md
    assert "Signature: `nrefs:" in md and "SPICE" in md

    data = json.loads(written["json"].read_text(encoding="utf-8"))
    assert data["rank_by"] == "CIDEr-D" and data["scale"] == 100 and data["ci"]["n_resamples"] == 200
    first = data["splits"]["val"]["systems"][0]
    assert first["system"] == "copy" and first["rank"] == 1
    assert first["scores"]["CIDEr-D"] == pytest.approx(top["CIDEr-D"], abs=1e-9)
    assert first["raw_scores"]["CIDEr-D"] == pytest.approx(top["CIDEr-D"] / 100, abs=1e-12)
    assert set(first["categories"]) == set(CATS)

    frame = pd.read_csv(written["csv"])
    assert list(frame["system"]) == ["copy", "human", "short"]
    np.testing.assert_allclose(frame["CIDEr-D"], report.leaderboard["CIDEr-D"], atol=1e-6)
    assert len(pd.read_csv(written["categories_csv"])) == 9

    page = written["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<tr class="system">') == 3 and page.count('<tr class="category">') == 3
    charts = re.findall(r'<img class="chart" alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    if HAVE_MATPLOTLIB:
        assert [name for name, _ in charts] == ["val-CIDEr-D", "val-metrics", "val-categories"]
        assert all(len(data) > 1000 for _, data in charts)
    else:  # matplotlib is optional (the "report" extra): the page goes without charts
        assert charts == [] and report.charts() == {}
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained: nothing to fetch
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic writes leave no temp files


def test_markdown_escapes_and_html_escapes(tmp_path):
    report = build_report(REFS, {"a|b <i>": SYSTEMS["human"]}, metrics="cider_d", ci=False, title="<Board & co>")
    assert "| 1 | a\\|b <i> |" in report.to_markdown()
    page = report.to_html()
    assert "<title>&lt;Board &amp; co&gt;</title>" in page and "a|b &lt;i&gt;" in page
