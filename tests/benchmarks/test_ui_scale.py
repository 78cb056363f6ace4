"""The UI-scale benchmark's data and pages at a tiny size: every page and JSON twin answers
200 with the right rows, in keel; MLflow's copy holds the same runs (checks, not speed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bench import ui_scale
from bench.ui_scale_data import Shape, metric_key, populate_keel, populate_mlflow, run_name

# MLflow's own client makes the schema; its SQLAlchemy use warns of deprecations
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TINY = Shape(experiments=3, runs=60, keys=800, narrow_keys=4, params=3, long_points=30_000)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    import keel

    root = tmp_path_factory.mktemp("ui-scale")
    with keel.Client(store=str(root / "keel"), project=ui_scale.PROJECT) as client:
        ours = populate_keel(client, TINY)
    theirs = populate_mlflow(root / "mlflow.db", str(root / "art"), TINY)
    return root, ours, theirs


def test_both_stores_hold_the_same_shape(loaded: tuple[Path, Any, Any]) -> None:
    root, ours, theirs = loaded
    wide_rows = TINY.runs * TINY.keys
    narrow_rows = (TINY.experiments - 1) * TINY.runs * TINY.narrow_keys
    latest = wide_rows + narrow_rows + 1  # + the long run's last point
    keel_db = sqlite3.connect(root / "keel" / "keel.db")
    mlflow_db = sqlite3.connect(root / "mlflow.db")
    try:
        assert keel_db.execute("select count(*) from latest_metrics").fetchone()[0] == latest
        assert mlflow_db.execute("select count(*) from latest_metrics").fetchone()[0] == latest
        count = "select count(*) from metrics where key = 'wave'"
        assert keel_db.execute(count).fetchone()[0] == TINY.long_points
        assert mlflow_db.execute(count).fetchone()[0] == TINY.long_points
        # run i of the wide experiment has the same value of a metric in both stores
        pick = metric_key(TINY.keys - 1)
        ours_value = keel_db.execute(
            "select m.value from latest_metrics m join runs r on r.id = m.run_id "
            "where r.name = ? and m.key = ?",
            (run_name(0, 7), pick),
        ).fetchone()[0]
        theirs_value = mlflow_db.execute(
            "select m.value from latest_metrics m join runs r on r.run_uuid = m.run_uuid "
            "where r.name = ? and m.key = ?",
            (run_name(0, 7), pick),
        ).fetchone()[0]
        assert ours_value == theirs_value
    finally:
        keel_db.close()
        mlflow_db.close()
    assert ours.loaded.runs == theirs.loaded.runs == TINY.experiments * TINY.runs + 1


def test_every_page_and_json_twin_answers_right(loaded: tuple[Path, Any, Any]) -> None:
    from rich.console import Console

    root, ours, _ = loaded
    pages = ui_scale.keel_pages(TINY, ours)
    timings = ui_scale.Timings()
    ui_scale.time_in_process(root / "keel", pages, 1, timings, Console(quiet=True))
    wrong = [name for name, ok in timings.correct.items() if not ok]
    assert not wrong, wrong
    # every page with a URL, and every JSON twin, was checked
    assert len(timings.correct) == sum(bool(p.html) + bool(p.json) for p in pages)
    assert set(timings.server) == {p.name for p in pages if p.html}
