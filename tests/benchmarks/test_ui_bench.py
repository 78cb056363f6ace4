"""The UI benchmark (``python -m bench --only ui``) at a small size: its checks of the pages
it times (rows, the true best run, the oldest run, the chart's maximum) all hold. They once
failed silently for weeks after the UI's pages moved under /projects/<name>/."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import ui_bench
from bench.report import Report
from rich.console import Console


def test_every_page_the_ui_benchmark_times_is_the_right_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_bench, "UI_RUNS", 400)
    monkeypatch.setattr(ui_bench, "LONG_POINTS", 40_000)
    report = Report(config={})
    ui_bench.run(tmp_path, 7, report, Console(quiet=True), times=1)
    assert report.problems == []
    checks = report.details["ui"]["checks"]
    assert len(checks) == 5 and all(checks.values()), checks
    assert {m.name for m in report.measures} >= {"ui: run page + chart together"}
