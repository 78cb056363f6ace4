"""``keel doctor``: every check against real stores (SQLite, the throwaway PostgreSQL, moto
S3), what each says when something is wrong, and the command's table, JSON and exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from keel import Client
from keel.server.doctor import ERROR, OK, SKIPPED, WARNING, Diagnosis, diagnose
from s3 import S3Server
from team import TeamStores

SECRET = "x" * 43


def keel(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        check=False,
    )


def rows(diagnosis: Diagnosis) -> dict[str, tuple[str, str, str]]:
    return {c.name: (c.status, c.detail, c.fix) for c in diagnosis.checks}


def statuses(diagnosis: Diagnosis) -> dict[str, str]:
    return {c.name: c.status for c in diagnosis.checks}


def add_admin(store: str) -> None:
    from keel.store.accounts import AccountStore
    from keel_server import _password_hash

    AccountStore(store).add_user("root", _password_hash(), "admin")


def migrate_to(url: str, revision: str) -> None:
    """Make the store at ``url`` as an older keel left it (its schema at ``revision``)."""
    from alembic import command

    from keel.store.engine import _alembic_config, _create_engine, normalize_url, write_transaction

    engine = _create_engine(normalize_url(url))
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), revision)
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- one machine -----------------------------------------------------------------------------


def test_a_local_store_in_use_passes_with_a_warning_for_its_missing_admin(tmp_path: Path) -> None:
    Client(store=str(tmp_path / ".keel")).get_or_create_exp("e")
    found = diagnose(store=str(tmp_path / ".keel"))
    assert statuses(found) == {
        "config": OK,
        "metadata store": OK,
        "schema": OK,
        "admin user": WARNING,  # the first `keel server` on 127.0.0.1 makes one
        "artifact store": OK,
        "cache folder": OK,
        "server work folder": OK,
        "partial uploads": OK,
        "jobs folder": OK,
        "session secret": OK,  # one local server needs none
        "dask scheduler": SKIPPED,
    }
    assert found.ok and found.summary() == "1 warning"
    store = rows(found)["metadata store"]
    assert "SQLite" in store[1] and "answered in" in store[1]
    assert [c.ms is not None for c in found.checks if c.name == "metadata store"] == [True]
    assert not list((tmp_path / ".keel" / "artifacts").rglob("blobs/*/*")), "the probe is gone"


def test_no_store_yet_is_a_warning_and_nothing_is_created(tmp_path: Path) -> None:
    found = diagnose(store=str(tmp_path / "none"))
    status, detail, fix = rows(found)["metadata store"]
    assert status == WARNING and "no store there yet" in detail and "keel db upgrade" in fix
    assert rows(found)["schema"][:2] == (SKIPPED, "not checked: there is no store yet")
    assert not (tmp_path / "none" / "keel.db").exists()
    assert found.ok


def test_a_config_that_does_not_load_is_the_one_error(tmp_path: Path) -> None:
    (tmp_path / "keel.yml").write_text("store: {url: x, bogus: 1}\n")
    found = diagnose()
    assert found.checks[0].status == ERROR and "bogus" in found.checks[0].detail
    assert {c.status for c in found.checks[1:]} == {SKIPPED}
    assert not found.ok


def test_bad_storage_options_in_the_environment_are_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_STORAGE_OPTIONS", "{not json")
    config = rows(diagnose(store=str(tmp_path / "s")))["config"]
    assert config[0] == ERROR and "KEEL_STORAGE_OPTIONS is not valid JSON" in config[1]


def test_an_unwritable_cache_folder_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KEEL_CACHE_DIR", str(blocker / "cache"))  # under a file: never writable
    status, detail, fix = rows(diagnose(store=str(tmp_path / "s")))["cache folder"]
    assert status == ERROR and "not writable" in detail and "KEEL_CACHE_DIR" in fix


def test_the_session_secret_and_the_admin_matter_once_the_server_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / ".keel")
    Client(store=store).get_or_create_exp("e")
    secret = rows(diagnose(store=store, replicas=3))["session secret"]
    assert secret[0] == ERROR and "each of the 3 replicas" in secret[1]
    assert "KEEL_SECRET_KEY" in secret[2] and "token_urlsafe" in secret[2]
    monkeypatch.setenv("KEEL_SECRET_KEY", "short")
    assert rows(diagnose(store=store, replicas=3))["session secret"][0] == WARNING
    monkeypatch.setenv("KEEL_SECRET_KEY", SECRET)
    secret = rows(diagnose(store=store, replicas=3))["session secret"]
    assert secret[:2] == (OK, "KEEL_SECRET_KEY is set (43 characters)")
    assert SECRET not in json.dumps(diagnose(store=store).to_json()), "never shown"

    (tmp_path / "keel.yml").write_text("server: {host: 0.0.0.0}\n")
    admin = rows(diagnose(store=store))["admin user"]
    assert admin[0] == ERROR and "on 0.0.0.0 refuses to start" in admin[1]
    assert admin[2] == "create one: keel users add NAME --role admin"
    add_admin(store)
    assert rows(diagnose(store=store))["admin user"][:2] == (OK, "1 admin user")


def test_replicas_need_the_work_and_jobs_folders_on_a_shared_mount(tmp_path: Path) -> None:
    from keel.server.settings import ServerSettings

    store = str(tmp_path / ".keel")
    alone = rows(diagnose(store=store))
    assert alone["server work folder"][0] == alone["jobs folder"][0] == OK
    replicated = rows(diagnose(store=store, replicas=2))
    status, detail, fix = replicated["server work folder"]
    assert status == WARNING and detail.endswith("the default, in this machine's cache")
    assert fix == "replicas must share it: set server.work_dir in keel.yml to a shared mount"
    assert (
        replicated["jobs folder"][0] == WARNING and "jobs.jobs_dir" in replicated["jobs folder"][2]
    )

    (tmp_path / "keel.yml").write_text(
        "server: {work_dir: /mnt/shared/keel/work}\njobs: {jobs_dir: shared/jobs}\n"
    )
    settings = ServerSettings.resolve(store=store)
    assert settings.work_dir == Path("/mnt/shared/keel/work")
    assert settings.jobs_dir == tmp_path / "shared" / "jobs"  # relative to keel.yml
    (tmp_path / "keel.yml").write_text(
        "server: {work_dir: shared/work}\njobs: {jobs_dir: shared/jobs}\n"
    )
    named = rows(diagnose(store=store, replicas=2))
    assert named["server work folder"][:2] == (
        OK,
        f"{tmp_path / 'shared' / 'work'}: writable, "
        + named["server work folder"][1].split(", ")[1],
    )
    assert named["jobs folder"][0] == OK


# --- the team deployment: PostgreSQL and S3 --------------------------------------------------


@pytest.mark.postgres
@pytest.mark.s3
def test_postgres_and_s3_from_keel_yml_pass_every_check(
    team_stores: TeamStores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, artifacts = team_stores.new_store(), team_stores.new_artifacts()
    config = {
        "store": {
            "url": store,
            "artifacts": artifacts,
            "storage_options": team_stores.storage_options(),
        },
        "server": {"host": "0.0.0.0", "work_dir": "shared/work"},
        "jobs": {"jobs_dir": "shared/jobs"},
    }
    (tmp_path / "keel.yml").write_text(json.dumps(config))  # JSON is YAML
    monkeypatch.setenv("KEEL_SECRET_KEY", SECRET)
    add_admin(store)
    found = diagnose(replicas=2)
    assert found.ok and found.summary() == "all checks passed", found.to_json()
    assert statuses(found)["dask scheduler"] == SKIPPED
    assert "PostgreSQL 15" in rows(found)["metadata store"][1]
    assert rows(found)["artifact store"][1].startswith(f"{artifacts}: wrote, read and deleted")
    bucket, prefix = artifacts.removeprefix("s3://").split("/", 1)
    assert _s3_keys(team_stores.s3, bucket, prefix) == [], "the probe object is deleted"


def _s3_keys(s3: S3Server, bucket: str, prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.s3
def test_a_missing_bucket_is_an_error_row(s3_server: S3Server, tmp_path: Path) -> None:
    (tmp_path / "keel.yml").write_text(
        json.dumps({"store": {"storage_options": s3_server.storage_options()}})
    )
    found = diagnose(store=str(tmp_path / ".keel"), artifacts="s3://no-such-bucket-here/keel")
    status, detail, fix = rows(found)["artifact store"]
    assert status == ERROR and detail.startswith("s3://no-such-bucket-here/keel: cannot write")
    assert "bucket exists" in fix
    assert not found.ok


@pytest.mark.postgres
def test_an_out_of_date_postgres_schema_says_run_keel_db_upgrade(
    pg_url: str, tmp_path: Path
) -> None:
    migrate_to(pg_url, "0001")
    found = diagnose(store=pg_url)
    status, detail, fix = rows(found)["schema"]
    from keel.store.engine import head_revision

    assert status == ERROR and detail == f"at revision 0001, this keel needs {head_revision()}"
    assert fix == "run `keel db upgrade` (once, before starting the new servers)"
    assert rows(found)["admin user"][:2] == (SKIPPED, "not checked: the schema is not current")

    out = keel("--store", pg_url, "doctor", "--json", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    answer = json.loads(out.stdout)
    assert answer["ok"] is False
    assert {c["name"]: c["status"] for c in answer["checks"]}["schema"] == ERROR

    assert keel("--store", pg_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    after = diagnose(store=pg_url)
    assert rows(after)["schema"][0] == OK
    assert rows(after)["admin user"][0] == ERROR, "a PostgreSQL store is a team's: no admin"


@pytest.mark.postgres
def test_an_empty_postgres_database_is_reported_not_filled(pg_url: str) -> None:
    found = diagnose(store=pg_url)
    status, detail, fix = rows(found)["schema"]
    assert status == WARNING and detail.startswith("no keel tables yet")
    assert fix == "run `keel db upgrade` once before starting servers"
    assert diagnose(store=pg_url).checks[2].detail == detail, "still empty: nothing was made"


@pytest.mark.postgres
def test_a_store_migrated_by_a_newer_keel_says_upgrade_keel(pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    migrate_to(pg_url, "head")
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    status, detail, fix = rows(diagnose(store=pg_url))["schema"]
    assert status == ERROR and "0099, which this keel does not know" in detail
    assert fix == "upgrade keel here to the version that migrated the store"


def test_an_unreachable_postgres_is_an_error_row_not_a_traceback(tmp_path: Path) -> None:
    url = f"postgresql://keel:s3cret@127.0.0.1:{free_port()}/keel"
    out = keel("--store", url, "doctor", "--timeout", "2", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    line = next(line for line in out.stdout.splitlines() if "metadata store" in line)
    assert "error" in line and "cannot connect" in line
    assert "s3cret" not in out.stdout, "the password is masked"
    assert "1 error" in out.stdout.splitlines()[-1]


# --- Dask ------------------------------------------------------------------------------------


def test_the_dask_scheduler_is_checked_only_when_jobs_run_on_dask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / ".keel")
    assert rows(diagnose(store=store))["dask scheduler"][1] == "not used (jobs.executor: local)"
    (tmp_path / "keel.yml").write_text("jobs: {executor: dask}\n")
    named = rows(diagnose(store=store))["dask scheduler"]
    assert named[0] == ERROR and "KEEL_DASK_SCHEDULER" in named[2]

    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("KEEL_DASK_SCHEDULER", f"tcp://127.0.0.1:{free_port()}")
    down = rows(diagnose(store=store, timeout_s=1))["dask scheduler"]
    assert down[0] == ERROR and "cannot connect" in down[1]

    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,  # a worker thread: 0.2 s to start
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # not 8787, which may be taken
    ) as cluster:
        monkeypatch.setenv("KEEL_DASK_SCHEDULER", cluster.scheduler_address)
        up = rows(diagnose(store=store))["dask scheduler"]
    assert up[0] == OK and up[1].endswith("1 worker"), up
