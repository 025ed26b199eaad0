"""The run's report is replaced as one set (issue 18.1): an interrupted write leaves the previous set."""

from pathlib import Path

import pytest

from capeval_models.files import write_report_files
from capeval_models.pipeline import REPORT_FILES


def test_an_interrupted_report_write_leaves_the_previous_set(tmp_path, monkeypatch):
    report = tmp_path / "run" / "report"
    write_report_files(report, {"report.html": "old page", "summary.md": "old summary"}, names=REPORT_FILES)
    assert sorted(p.name for p in report.iterdir()) == ["report.html", "summary.md"]

    real_write_text = Path.write_text

    def fail_on_summary(self, text, *args, **kwargs):
        if self.name == "summary.md":
            raise KeyboardInterrupt  # Ctrl-C after report.html of the new set was written
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fail_on_summary)
    with pytest.raises(KeyboardInterrupt):
        write_report_files(report, {"report.html": "new page", "summary.md": "new summary"}, names=REPORT_FILES)
    monkeypatch.undo()
    assert (report / "report.html").read_text() == "old page"  # not the new page beside the old summary
    assert (report / "summary.md").read_text() == "old summary"
    assert [p.name for p in report.parent.iterdir()] == ["report"]  # no temporary directory left

    write_report_files(report, {"report.html": "new page"}, names=REPORT_FILES)
    assert sorted(p.name for p in report.iterdir()) == ["report.html"]  # a new set, nothing of the old


def test_a_directory_holding_other_files_is_not_replaced(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"weights")
    with pytest.raises(FileExistsError):
        write_report_files(tmp_path, {"report.html": "page"}, names=REPORT_FILES)
    assert (tmp_path / "model.npz").read_bytes() == b"weights"
