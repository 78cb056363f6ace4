"""The drift benchmark (``python -m bench --only drift``) on small data.

Without Evidently: the generated data is what it says (seeded; keel flags the columns made to
drift clearly and none of those left unchanged). With Evidently's venv (``make
bench-evidently-venv``; skipped otherwise): the whole comparison runs, both tools pick the
same test for every column, and where both compute exactly (category shares; every test of a
reference of at most 1,000 rows) their statistics are equal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the bench package lives next to src/, not inside keel
    sys.path.insert(0, str(REPO))

from bench import drift_bench, drift_data  # noqa: E402
from bench.data import DEFAULT_SEED  # noqa: E402
from bench.report import Report  # noqa: E402


def _evidently_or_skip() -> Path:
    try:
        return drift_bench.evidently_python(create=False)
    except drift_bench.EvidentlyUnavailable as exc:
        pytest.skip(str(exc))


def test_data_is_seeded_and_planned() -> None:
    first = drift_data.generate(1_000, 200, 8, DEFAULT_SEED)
    again = drift_data.generate(1_000, 200, 8, DEFAULT_SEED)
    other = drift_data.generate(1_000, 200, 8, DEFAULT_SEED + 1)
    assert first[0].equals(again[0]) and first[1].equals(again[1])
    assert not first[0].equals(other[0])
    specs = first[2]
    assert [s.kind for s in specs].count("number") == 6  # 70% of 8, rounded
    assert {s.drift for s in specs} == {"clear", "slight", "none"}
    assert first[0].num_rows == 1_000 and first[1].num_rows == 200
    plan = drift_data.column_plan(100)
    assert sum(kind == "number" for _n, kind, _f, _i in plan) == 70
    assert {family for _n, kind, family, _i in plan if kind == "number"} == set(
        drift_data.NUMERIC_FAMILIES
    )


def test_keel_finds_the_designed_drift(tmp_path: Path) -> None:
    reference, current, spec_path = drift_data.write(tmp_path, 20_000, 5_000, 20, DEFAULT_SEED)
    _spec, specs = drift_data.read_spec(spec_path)
    keel = drift_bench.keel_side(reference, current, specs, times=1)
    rows = drift_bench.verdicts(specs, keel.report, None)

    clear = [r for r in rows if r.spec.drift == "clear"]
    unchanged = [r for r in rows if r.spec.drift == "none"]
    assert clear and unchanged
    assert [r.spec.name for r in clear if not r.keel_drifted] == []
    assert [r.spec.name for r in unchanged if r.keel_drifted] == []
    for r in rows:  # keel's statistic is near the drift the column was made with
        if r.spec.drift != "clear" or r.spec.kind == "category":
            assert r.keel_statistic == pytest.approx(r.spec.statistic, abs=0.06), r.spec.name
    assert keel.report.drift_share == pytest.approx(
        sum(r.keel_drifted for r in rows) / len(rows), abs=1e-6
    )
    assert keel.cold and keel.repeated and keel.profile_bytes > 1_000


@pytest.mark.parametrize(
    ("rows", "current_rows"),
    [(2_000, 1_000), (800, 400)],
    ids=["large-reference-tests", "small-reference-tests"],
)
def test_drift_bench_against_evidently(tmp_path: Path, rows: int, current_rows: int) -> None:
    _evidently_or_skip()
    report = Report(config={})
    found = drift_bench.run(
        tmp_path,
        report,
        Console(quiet=True),
        rows=rows,
        columns=8,
        seed=DEFAULT_SEED,
        repeat=1,
        current_rows=current_rows,
        recording=False,
    )
    assert report.problems == []
    assert all(r.evidently_drifted is not None for r in found)
    # Evidently's default test for each column is keel's auto_test
    assert {r.spec.name: r.keel_test for r in found} == {
        r.spec.name: r.evidently_test for r in found
    }
    small = rows <= 1_000
    tests = {r.keel_test for r in found}
    assert tests == ({"ks", "z", "chisquare"} if small else {"wasserstein", "jensenshannon"})
    for r in found:
        assert r.keel_statistic is not None and r.evidently_statistic is not None
        exact = small or r.keel_test != "wasserstein"
        assert r.keel_statistic == pytest.approx(
            r.evidently_statistic, abs=1e-5 if exact else 0.05
        ), r.spec.name
        if not small:  # a sample of 1,000 rows is large enough not to hide these
            assert not r.wrong(r.keel_drifted) and not r.wrong(r.evidently_drifted)
        if exact:
            assert r.agree, r.spec.name

    names = [m.name for m in report.measures]
    assert any(n.startswith("drift verdicts differing") for n in names)
    cold = next(m for m in report.measures if m.name.startswith("drift check, cold"))
    repeated = next(m for m in report.measures if m.name.startswith("drift check, repeated"))
    assert cold.keel and cold.mlflow and repeated.keel and repeated.mlflow
    assert all(m.correct for m in report.measures)
    details = report.details["drift"]
    assert set(details["columns"]) == {r.spec.name for r in found}


@pytest.mark.slow
def test_recording_cost_runs_keel_serve_with_monitoring_off_and_on(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("server CPU time is read from /proc")
    cpu = drift_bench.recording_cost(tmp_path, Console(quiet=True), seconds=1.0, rounds=1)
    assert len(cpu["off"]) == len(cpu["on"]) == 1
    assert all(0 < value < 1e6 for value in cpu["off"] + cpu["on"])
    assert 0 < drift_bench.fold_cost(batch=100, times=2) < 10_000
