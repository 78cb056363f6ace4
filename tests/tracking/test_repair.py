"""``keel doctor --repair`` (:mod:`keel.tracking.repair`) on a store with one leftover of each
kind a killed writer leaves: what it finds, what it clears, its table, JSON and exit code,
and that a second run finds nothing. The SIGKILLed writers themselves are in
``test_crash_safety.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from keel import Client
from keel.tracking.repair import process_gone

# A writer that dies without closing its run (os._exit skips every cleanup, like SIGKILL).
DIES_MID_RUN = textwrap.dedent(
    """
    import os, sys
    from keel import Client
    client = Client(store=sys.argv[1], project="default")
    run = client.start_run("e", name="abandoned")
    print(run.id, flush=True)
    os._exit(0)
    """
)


def keel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
        timeout=120,
    )


@pytest.fixture
def messy(tmp_path: Path) -> tuple[Client, dict[str, object]]:
    """An embedded store in ./.keel with a version, and one leftover of each kind."""
    store = str(tmp_path / ".keel")
    client = Client(store=store, project="default")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with client.start_run("e") as run:
        mv = client.log_model_version("m", run, model)
    out = subprocess.run(
        [sys.executable, "-c", DIES_MID_RUN, store], capture_output=True, text=True, check=True
    )
    orphan = client.artifact_store.put_bytes(b"uploaded, never recorded").sha256
    partial = tmp_path / ".keel" / "artifacts" / "tmp" / "0123abcd.part"
    partial.write_bytes(b"half a blo")
    return client, {
        "abandoned": out.stdout.strip(),
        "orphan": orphan,
        "partial": partial,
        "version": mv,
    }


def test_repair_clears_each_leftover_once_and_keeps_the_rest(
    messy: tuple[Client, dict[str, object]], tmp_path: Path
) -> None:
    client, left = messy
    dry = keel("doctor", "--repair", "--grace", "0", "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["repair"]["found"] == 3
    assert client.get_run(str(left["abandoned"])).status == "running", "a dry run changes nothing"

    out = keel("doctor", "--repair", "--grace", "0", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["repair"]
    assert report["partial_uploads"] == [str(left["partial"])]
    assert report["removed_partials"] == 1
    assert report["unreferenced_blobs"] == [left["orphan"]]
    assert report["dead_runs"] == [left["abandoned"]]
    assert report["broken_versions"] == [] and report["versions_checked"] == 1
    assert report["ok"] and report["found"] == 3
    abandoned = client.get_run(str(left["abandoned"]))
    assert abandoned.status == "killed" and abandoned.end_time is not None
    assert "marked killed by keel doctor --repair" in (abandoned.failure or "")
    assert not Path(str(left["partial"])).exists()
    assert not client.artifact_store.exists(str(left["orphan"]))
    assert client.get_model_artifact(("m", 1)).read_bytes() == b"weights"

    table = keel("doctor", "--repair", "--grace", "0", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "keel doctor --repair" in table.stdout and "nothing to repair" in table.stdout
    assert "1 checked, all complete" in table.stdout


def test_the_grace_period_spares_young_leftovers(
    messy: tuple[Client, dict[str, object]], tmp_path: Path
) -> None:
    client, left = messy
    out = keel("doctor", "--repair", "--json", cwd=tmp_path)  # default grace: one hour
    report = json.loads(out.stdout)["repair"]
    assert report["removed_partials"] == 0 and report["unreferenced_blobs"] == []
    assert report["dead_runs"] == [left["abandoned"]], "a dead process needs no grace"
    assert client.artifact_store.exists(str(left["orphan"]))


def test_an_incomplete_version_is_reported_and_exits_1(
    messy: tuple[Client, dict[str, object]], tmp_path: Path
) -> None:
    client, left = messy
    mv = left["version"]
    client.artifact_store.delete(client.list_model_artifact(mv)[0].sha256)  # type: ignore[arg-type]
    out = keel("doctor", "--repair", "--grace", "0", cwd=tmp_path)
    assert out.returncode == 1
    assert "m@1: blob" in out.stdout and "is missing" in out.stdout
    assert "some model versions are incomplete" in out.stdout
    assert "Traceback" not in out.stderr


def test_repair_makes_no_store_where_there_is_none(tmp_path: Path) -> None:
    out = keel("--store", str(tmp_path / "none"), "doctor", "--repair", cwd=tmp_path)
    assert "not repaired: the config, the stores and the schema must pass first" in out.stderr
    assert not (tmp_path / "none" / "keel.db").exists()


def test_process_gone_knows_dead_live_zombie_and_reused_pids() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert process_gone(done.pid)
    before = time.time()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not process_gone(alive.pid, since=time.time())
        if Path("/proc/self/stat").exists():  # start times and states come from Linux's /proc
            # a run that started a minute before this process cannot have been started by it
            assert process_gone(alive.pid, since=before - 60)
            alive.send_signal(signal.SIGKILL)  # not reaped yet: a zombie
            deadline = time.monotonic() + 10
            while not process_gone(alive.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert process_gone(alive.pid)
    finally:
        alive.kill()
        alive.wait()


def test_a_run_of_another_pid_namespace_is_left_alone(tmp_path: Path) -> None:
    from keel.tracking.environment import pid_namespace
    from keel.tracking.repair import run_process_gone

    client = Client(store=str(tmp_path / ".keel"), project="default")
    run = client.start_run("e")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = dict(run.environment, pid=gone.pid)
    assert run_process_gone(replace(run.entity, environment=here))
    if pid_namespace() is not None:  # Linux
        assert run.environment["pid_namespace"] == pid_namespace()
        elsewhere = dict(here, pid_namespace="pid:[1]")  # another container, same host name
        assert not run_process_gone(replace(run.entity, environment=elsewhere))
    assert not run_process_gone(replace(run.entity, environment=dict(here, host="other-host")))
    run.end()
