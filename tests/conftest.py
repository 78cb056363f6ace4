"""Root conftest: test isolation, metadata-store URLs and the CI guard against silent skips.

Sections:

1. Isolation: every test runs in its own tmp_path, away from the user's home and config.
2. Stores: ``sqlite_url``, ``pg_url`` (throwaway PostgreSQL server, one per session) and
   ``store_url`` (the same test on both backends).
3. CI guard: under ``CI=true`` a skipped ``postgres``, ``s3``, ``browser`` or ``mlflow`` test
   fails the session.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent)
if _TESTS not in sys.path:  # `pg` lives next to this file and is not part of keel
    sys.path.insert(0, _TESTS)
from mlflow_server import mlflow_server  # noqa: E402, F401  (a real MLflow server)
from pg import PostgresServer, PostgresUnavailable  # noqa: E402
from s3 import s3_server  # noqa: E402, F401  (a session fixture every suite may use)
from team import team_stores  # noqa: E402, F401  (PostgreSQL + S3 store pairs, see team.py)

# --------------------------------------------------------------------------- 1. isolation


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests off the user's home, config and stores: everything lands in tmp_path."""
    monkeypatch.setenv("KEEL_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("KEEL_STORE", "KEEL_CONFIG", "KEEL_ARTIFACTS", "KEEL_PROJECT", "LAUNCHPAD_CFG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the default ./.keel store and ./keel.yml are in tmp_path


# --------------------------------------------------------------------------- 2. stores


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the whole session (see tests/pg.py)."""
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL binaries not found (apt-get install postgresql): {exc.reason}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database for this test."""
    return postgres_server.new_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a fresh SQLite file for this test."""
    return f"sqlite:///{tmp_path / 'keel.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The metadata store URL: the test runs once on SQLite and once on PostgreSQL."""
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url"}[request.param]
    return str(request.getfixturevalue(fixture))


# --------------------------------------------------------------------------- 3. CI guard

#: Tests with these markers must not be skipped in CI: a missing PostgreSQL, moto S3,
#: Chromium, MLflow or podman would otherwise turn the suite green while testing nothing of
#: the kind.
CI_REQUIRED_MARKERS = ("postgres", "s3", "browser", "mlflow", "container")

_MARKER_DOCS = {
    "browser": "browser: Playwright + system Chromium UI tests",
    "mlflow": "mlflow: needs a real MLflow tracking server (mlflow server, started by the tests)",
    "unsupported_on": "unsupported_on(backend, reason=...): xfail on that backend of the client suite",
}

#: (node id, markers, skip reason) of every required test skipped in this session.
_skipped_required: list[tuple[str, str, str]] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    declared = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, doc in _MARKER_DOCS.items():
        if name not in declared:
            config.addinivalue_line("markers", doc)
    _skipped_required.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # Recorded on the report itself (not looked up by node id later) so it survives xdist.
    report.keel_required_markers = [  # type: ignore[attr-defined]
        name for name in CI_REQUIRED_MARKERS if item.get_closest_marker(name) is not None
    ]
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    markers = getattr(report, "keel_required_markers", None)
    if not (markers and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    _skipped_required.append((report.nodeid, ",".join(markers), reason))


def _ci_failure_message(count: int) -> str:
    return (
        f"CI=true: {count} test(s) marked {' or '.join(CI_REQUIRED_MARKERS)} were SKIPPED, "
        "but in CI they must run; failing the session. Install what the skip reasons name "
        "(`make test` installs PostgreSQL itself)."
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not (_in_ci() and _skipped_required):
        return
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if session.config.pluginmanager.get_plugin("terminalreporter") is None:
        # Otherwise pytest_terminal_summary below prints the message with the list.
        print(_ci_failure_message(len(_skipped_required)), file=sys.stderr)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if not (_in_ci() and _skipped_required):
        return
    terminalreporter.section("CI: required tests were skipped", sep="=", red=True, bold=True)
    for nodeid, markers, reason in _skipped_required:
        terminalreporter.write_line(f"SKIPPED [{markers}] {nodeid}: {reason}")
    terminalreporter.write_line(_ci_failure_message(len(_skipped_required)), red=True, bold=True)
