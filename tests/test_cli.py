"""The keel command: tables, JSON, prefixes, clear one-line errors, db upgrade and gc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel import Client


def keel(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        input=stdin,
        check=False,
    )


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    client = Client(store=str(tmp_path / ".keel"), project="default")
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    with client.start_run("iris", name="baseline") as run:
        run.log_params({"C": 1.0})
        run.log_metrics({"acc": 0.93})
        run.log_artifact(f)
        client.log_model_version("iris", run, f, label="1.0.0").set_alias("production")
    client.log_dataset("iris-data", f)
    client.close()
    return tmp_path


def test_help_lists_commands_with_examples(tmp_path: Path) -> None:
    out = keel("--help", cwd=tmp_path)
    assert out.returncode == 0
    for word in ("runs", "models", "experiments", "datasets", "db", "gc", "Examples"):
        assert word in out.stdout


def test_lists_as_tables_and_json(populated: Path) -> None:
    out = keel("runs", "list", cwd=populated)
    assert out.returncode == 0, out.stderr
    assert "baseline" in out.stdout and "0.93" in out.stdout
    runs = json.loads(keel("runs", "list", "--json", cwd=populated).stdout)
    assert runs[0]["name"] == "baseline" and runs[0]["params"] == {"C": 1.0}
    shown = json.loads(keel("runs", "show", runs[0]["id"], "--json", cwd=populated).stdout)
    assert {f["path"] for f in shown["artifacts"]} == {"model.bin", "iris"}
    assert "iris" in keel("experiments", "list", cwd=populated).stdout
    assert "production" in keel("models", "list", cwd=populated).stdout
    version = json.loads(keel("models", "show", "iris@production", "--json", cwd=populated).stdout)
    assert version["version"] == 1 and version["label"] == "1.0.0"
    assert "iris-data" in keel("datasets", "list", cwd=populated).stdout
    assert "model.bin" in keel("datasets", "show", "iris-data@1", cwd=populated).stdout


def test_filter_and_sort_from_the_command_line(populated: Path) -> None:
    out = keel("runs", "list", "--query", '{"metrics.acc": {"$gt": 0.99}}', "--json", cwd=populated)
    assert json.loads(out.stdout) == []
    out = keel("runs", "list", "--exp", "iris", "--sort", "-metrics.acc", "--json", cwd=populated)
    assert len(json.loads(out.stdout)) == 1


def test_unique_prefixes_work(populated: Path) -> None:
    out = keel("ru", "li", "--json", cwd=populated)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["name"] == "baseline"


def test_errors_are_one_clear_line(populated: Path) -> None:
    out = keel("runs", "show", "0" * 32, cwd=populated)
    assert out.returncode == 1
    # the store searched is named (issue 20: errors say where they looked)
    assert out.stderr.strip() == f"error: no run with id '{'0' * 32}' (store {populated / '.keel'})"
    bad = keel("runs", "list", "--query", "{not json", cwd=populated)
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr


def test_unreachable_store_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    out = keel("--store", "postgresql://keel:s3cret@127.0.0.1:1/keel", "runs", "list", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the metadata store")
    assert "s3cret" not in out.stderr


def test_db_upgrade_reports_revision(tmp_path: Path) -> None:
    out = keel("--store", str(tmp_path / "fresh"), "db", "upgrade", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from keel.store.engine import head_revision

    head = head_revision()
    assert f"upgraded schema from empty to {head}" in out.stdout
    again = keel("--store", str(tmp_path / "fresh"), "db", "upgrade", cwd=tmp_path)
    assert f"already at schema revision {head}" in again.stdout


def test_an_older_store_is_refused_until_upgraded_and_keeps_its_records(
    tmp_path: Path,
) -> None:
    """A store made before the accounts tables (0001) says how to migrate, then migrates."""
    from alembic import command

    from keel.store.engine import (
        _alembic_config,
        _create_engine,
        dispose_engines,
        normalize_url,
        write_transaction,
    )

    folder = tmp_path / "old"
    engine = _create_engine(normalize_url(str(folder)))
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "0001")
    engine.dispose()
    refused = keel("--store", str(folder), "runs", "list", cwd=tmp_path)
    assert refused.returncode == 1 and "run `keel db upgrade`" in refused.stderr
    out = keel("--store", str(folder), "db", "upgrade", cwd=tmp_path)
    assert "upgraded schema from 0001 to" in out.stdout, out.stderr
    dispose_engines()
    client = Client(store=str(folder), project="default")
    with client.start_run("e") as run:
        run.log_params({"a": 1})
    assert client.find_runs()[0].params == {"a": 1}
    assert keel("--store", str(folder), "users", "list", cwd=tmp_path).returncode == 0


def test_gc_purges_deleted_runs_and_unreferenced_blobs(tmp_path: Path) -> None:
    client = Client(store=str(tmp_path / ".keel"), project="default")
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 1000)
    with client.start_run("e") as run:
        run.log_artifact(f)
    keep = tmp_path / "keep.bin"
    keep.write_bytes(b"keep")
    with client.start_run("e") as kept:
        kept.log_artifact(keep)
    client.delete_run(run)
    out = keel("gc", "--grace", "0", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["purged_runs"] == [run.id]
    assert len(report["removed_blobs"]) == 1 and report["freed_bytes"] == 1000
    assert client.get_run_artifact(kept, "keep.bin").read_bytes() == b"keep"


def test_store_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("x")
    out = keel("--store", str(tmp_path / "occupied"), "runs", "list", cwd=tmp_path)
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == f"error: the embedded store {tmp_path / 'occupied'} is a file, not a folder: give a folder path or a sqlite:///FILE URL"
    )


def test_db_upgrade_of_a_server_url_says_where_to_run_it(tmp_path: Path) -> None:
    out = keel("--store", "http://127.0.0.1:9/", "db", "upgrade", cwd=tmp_path)
    assert out.returncode == 1
    assert "is a keel server: run `keel db upgrade` where it runs" in out.stderr
