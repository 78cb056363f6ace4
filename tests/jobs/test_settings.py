"""keel.yml's ``jobs:`` section: its keys, the executor it names (unknown names in one line
with the known ones), where job records live and the Dask scheduler's address."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import parse_config
from keel.errors import ConfigError
from keel.jobs import executor_for
from keel.jobs.dask import DaskExecutor
from keel.jobs.local import LocalExecutor
from keel.jobs.settings import ENV_SCHEDULER, default_jobs_dir, is_configured, jobs_dir_for
from keel.jobs.tasks import absolute_store, job_env, referenced_variables
from keel.tracking.settings import resolve_settings


def test_the_section_is_checked(tmp_path: Path) -> None:
    config = parse_config(
        "jobs:\n  executor: dask\n  scheduler: tcp://10.0.0.5:8786\n  timeout_s: 60\n"
        "  max_parallel: 3\n  partition_mb: 8\n",
        env={},
        base_dir=tmp_path,
    )
    jobs = config.settings.jobs
    assert jobs is not None and jobs.executor == "dask" and jobs.timeout_s == 60
    assert jobs.scheduler == "tcp://10.0.0.5:8786" and jobs.partition_mb == 8
    assert is_configured(config) and not is_configured(parse_config("", env={}))
    # naming what the server's pipeline jobs receive does not make `keel train` a job
    only_env = parse_config("jobs:\n  env: [TEAM_TOKEN]\n", env={}, base_dir=tmp_path)
    assert not is_configured(only_env)
    with pytest.raises(ConfigError, match=r"line 2: jobs\.schedulr: unknown key schedulr "):
        parse_config("jobs:\n  schedulr: x\n", env={}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"jobs\.timeout_s: .*greater than 0"):
        parse_config("jobs:\n  timeout_s: 0\n", env={}, base_dir=tmp_path)


def test_unknown_executors_are_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    settings = resolve_settings(store=str(tmp_path / "store"))
    config = parse_config("project: p\njobs:\n  executor: celery\n", env={}, base_dir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        executor_for(config, settings)
    message = str(caught.value)
    assert "line 3: jobs.executor: unknown executor 'celery'; known: dask, local" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="unknown executor 'nope'; known: dask, local"):
        executor_for(config, settings, "nope")


def test_where_records_live_and_which_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded = resolve_settings(store=str(tmp_path / "store"))
    assert default_jobs_dir(embedded) == tmp_path / "store" / "jobs"
    remote = resolve_settings(store="postgresql://keel@db/keel", artifacts="s3://b/k")
    assert default_jobs_dir(remote) == remote.cache_dir / "jobs"

    plain = parse_config("project: p\n", env={}, base_dir=tmp_path)
    local = executor_for(plain, embedded)
    assert isinstance(local, LocalExecutor) and local.jobs_dir == tmp_path / "store" / "jobs"

    config = parse_config(
        "jobs:\n  executor: local\n  jobs_dir: records\n  max_parallel: 3\n",
        env={},
        base_dir=tmp_path,
    )
    assert jobs_dir_for(config, embedded) == tmp_path / "records"
    chosen = executor_for(config, embedded)
    assert isinstance(chosen, LocalExecutor) and chosen.max_parallel == 3

    dask = parse_config(
        "jobs:\n  executor: dask\n  scheduler: tcp://from-config:8786\n",
        env={},
        base_dir=tmp_path,
    )
    made = executor_for(dask, embedded)
    assert isinstance(made, DaskExecutor) and made.scheduler == "tcp://from-config:8786"
    monkeypatch.setenv(ENV_SCHEDULER, "tcp://from-env:8786")
    assert executor_for(dask, embedded).scheduler == "tcp://from-env:8786"  # env first
    assert executor_for(plain, embedded, "dask").scheduler == "tcp://from-env:8786"


def test_jobs_get_absolute_store_locations_and_the_variables_keel_yml_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert absolute_store(".keel") == str(tmp_path / ".keel")  # the tests run in tmp_path
    assert absolute_store("sqlite:///meta.db") == f"sqlite:///{tmp_path / 'meta.db'}"
    assert absolute_store("sqlite:////abs/meta.db") == "sqlite:////abs/meta.db"
    assert absolute_store("postgresql://u@h/db") == "postgresql://u@h/db"
    text = (
        "dbms:\n  wh: {connection_string: 'postgresql://u@h/${DB_NAME}', password_var: DB_PW}\n"
        "datasources:\n  a: {type: csv, path: '${DATA_DIR:-data}/a.csv'}\n"
    )
    monkeypatch.setenv("DB_NAME", "shop")
    monkeypatch.setenv("DB_PW", "s3cret")
    config = parse_config(text, base_dir=tmp_path)
    assert referenced_variables(config.snapshot()) == {"DB_NAME", "DB_PW", "DATA_DIR"}
    env = job_env(config, resolve_settings(store=".keel"))
    assert env["KEEL_STORE"] == str(tmp_path / ".keel")
    assert env["DB_NAME"] == "shop" and env["DB_PW"] == "s3cret" and "DATA_DIR" not in env
