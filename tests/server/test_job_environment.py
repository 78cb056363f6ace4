"""Jobs do not get the server's secrets (issue 19, item 3).

A job's process gets an allow-listed environment (:mod:`keel.jobs.environment`), the
variables keel.yml lists under ``jobs.env`` and what its spec sets (the store settings):
never the session key (``KEEL_SECRET_KEY``, or the variable ``server.secret_key_var``
names, or any variable holding the same value), and no unrelated variable of the process
that starts it.

* unit tests of :func:`~keel.jobs.environment.job_environment` and of the refusal of a
  keel.yml whose ``jobs.env`` lists the session key;
* a real ``keel server`` started with the session key, a copy of it under another name and
  an unrelated secret in its environment: an uploaded pipeline that prints its whole
  environment (in its Run job, and in ``get_params``, which runs in a subprocess of its
  own) shows none of them, shows the variable ``jobs.env`` names, and still writes its run
  into the server's store;
* ``keel train`` as a job of the local executor (the ``keel jobs`` path): the model's
  code sees neither the key nor the unrelated variable, and does see what ``jobs.env``
  names.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.errors import ConfigError
from keel.jobs.environment import ALLOWED, SECRET_KEY_VAR, JobEnvironment, job_environment

# --------------------------------------------------------------------------- the allow-list


def test_a_job_gets_the_allow_list_its_spec_and_jobs_env_never_the_session_key() -> None:
    key = secrets.token_urlsafe(32)
    server = {
        "PATH": "/usr/bin",
        "HOME": "/home/keel",
        "LC_ALL": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "AKIA-store",
        "AWS_ENDPOINT_URL_S3": "http://minio:9000",
        "PGPASSWORD": "db-password",
        "KEEL_STORE": "postgresql://db/keel",
        SECRET_KEY_VAR: key,
        "SESSION_COPY": key,  # the key under another name is the key still
        "STRIPE_API_KEY": "sk_live_unrelated",
        "ORACLE_HOME": "/opt/oracle",
        "ORACLE_SID": "prod",
        "KEEL_CONFIG": "/etc/keel/keel.yml",
    }
    env = job_environment(
        {"KEEL_ARTIFACTS": "s3://bucket/keel"}, ["ORACLE_*", "MISSING"], source=server
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/keel",
        "LC_ALL": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "AKIA-store",
        "AWS_ENDPOINT_URL_S3": "http://minio:9000",
        "PGPASSWORD": "db-password",
        "KEEL_STORE": "postgresql://db/keel",
        "KEEL_ARTIFACTS": "s3://bucket/keel",
        "ORACLE_HOME": "/opt/oracle",
        "ORACLE_SID": "prod",
    }


def test_the_session_key_is_withheld_whatever_names_it() -> None:
    key = secrets.token_urlsafe(32)
    server = {"PATH": "/bin", "MY_SESSION_KEY": key, SECRET_KEY_VAR: "another-long-key-value"}
    policy = JobEnvironment(names=("MY_*", SECRET_KEY_VAR)).withholding(["MY_SESSION_KEY"])
    # listed in jobs.env, set by the spec, copied under an allow-listed name: never passed
    env = policy.build({"KEEL_TOKEN": key, SECRET_KEY_VAR: "x" * 40}, source=server)
    assert env == {"PATH": "/bin"}
    assert policy.named(server) == {}
    # a short value is not hunted for in other variables (PYTHONUNBUFFERED=1 stays)
    short = job_environment(source={"PYTHONUNBUFFERED": "1", SECRET_KEY_VAR: "1"})
    assert short == {"PYTHONUNBUFFERED": "1"}
    assert SECRET_KEY_VAR not in ALLOWED and "KEEL_CONFIG" not in ALLOWED


@pytest.mark.parametrize(
    ("server", "listed", "why"),
    [
        ("", "KEEL_SECRET_KEY", "jobs.env lists KEEL_SECRET_KEY, the server's session key"),
        ("", "'BAD NAME'", "'BAD NAME' is not an environment variable name"),
    ],
)
def test_keel_yml_listing_the_session_key_in_jobs_env_is_refused(
    tmp_path: Path, server: str, listed: str, why: str
) -> None:
    from keel.config import load_config
    from keel.jobs.settings import jobs_section
    from keel.server.settings import ServerSettings

    path = tmp_path / "keel.yml"
    path.write_text(f"server: {{{server}}}\njobs:\n  env: [PATH, {listed}]\n")
    with pytest.raises(ConfigError) as refused:
        jobs_section(load_config(path))
    message = str(refused.value)
    assert why in message and "line 3" in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"jobs\.env"):  # `keel server` refuses to start
        ServerSettings.resolve(path, store=str(tmp_path / "store"))


def test_a_process_that_hides_its_environment_cannot_be_read_by_its_own_user(
    tmp_path: Path,
) -> None:
    """What ``keel server`` does before it starts its first job: a process of the same user
    (a job) can no longer read its ``/proc/<pid>/environ``."""
    import keel

    if not sys.platform.startswith("linux"):
        pytest.skip("prctl(PR_SET_DUMPABLE) is Linux's")
    python, demote = sys.executable, None
    if os.geteuid() == 0:  # root reads every process: both run as an unprivileged user
        python = "/usr/bin/python3"
        if not os.access(python, os.X_OK):
            pytest.skip("running as root, and no system python to run as nobody")

        def demote() -> None:
            os.setgid(65534)
            os.setuid(65534)

    src = str(Path(keel.__file__).resolve().parents[1])
    key = secrets.token_urlsafe(32)
    holder = textwrap.dedent(
        """
        import sys, time
        from keel.jobs.environment import hide_environment
        if sys.argv[1] == "hide":
            assert hide_environment()
        print("ready", flush=True)
        time.sleep(30)
        """
    )
    reader = textwrap.dedent(
        """
        import sys
        try:
            with open(f"/proc/{sys.argv[1]}/environ", "rb") as f:
                print("has-key" if sys.argv[2].encode() in f.read() else "no-key")
        except OSError as exc:
            print(type(exc).__name__)
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": src, SECRET_KEY_VAR: key}
    seen = {}
    for mode in ("show", "hide"):
        proc = subprocess.Popen(
            [python, "-c", holder, mode],
            env=env,
            cwd="/",
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=demote,  # demoted to nobody under root (see above)
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            read = subprocess.run(
                [python, "-c", reader, str(proc.pid), key],
                env={"PATH": "/usr/bin:/bin"},
                cwd="/",
                capture_output=True,
                text=True,
                timeout=30,
                preexec_fn=demote,
                check=True,
            )
            seen[mode] = read.stdout.strip()
        finally:
            proc.kill()
            proc.wait()
    assert seen == {"show": "has-key", "hide": "PermissionError"}


# --------------------------------------------------------------------------- a real server

PIPELINE = textwrap.dedent(
    """
    import json
    import os

    def _ancestors():
        \"\"\"What each process above this one lets it read of its environment.\"\"\"
        found, pid = {}, os.getppid()
        for _ in range(3):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    found[pid] = "has-key" if b"KEEL_SECRET_KEY=" in f.read() else "no-key"
            except OSError as exc:
                found[pid] = type(exc).__name__
            try:
                with open(f"/proc/{pid}/stat") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                break
        return found

    def get_params(run=False):
        seen = json.dumps({"env": dict(os.environ), "ancestors": _ancestors()}, sort_keys=True)
        return [{"name": "seen", "type": "string", "default": seen}]

    def train(inpt, params=None):
        return {}

    def run_pipeline(input, model, args, params=None):
        seen = {"env": dict(os.environ), "ancestors": _ancestors()}
        print("ENVIRONMENT " + json.dumps(seen, sort_keys=True), flush=True)
        return {"text": "<p>ran</p>"}
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Planted:
    key: str
    unrelated: str
    visible: str


@pytest.fixture
def planted() -> Planted:
    return Planted(
        key=secrets.token_urlsafe(32),
        unrelated=f"unrelated-{secrets.token_hex(12)}",
        visible=f"visible-{secrets.token_hex(12)}",
    )


@pytest.fixture
def keel_server(tmp_path: Path, planted: Planted) -> Iterator[tuple[str, str]]:
    """``keel server`` in a subprocess, its environment holding the planted secrets; yields
    (its URL, an admin token)."""
    import httpx2
    from tests.keel_server import admin_token

    store = tmp_path / "store"
    (tmp_path / "keel.yml").write_text(
        "store: store\n"
        "server:\n  work_dir: work\n  job_timeout_s: 120\n  job_memory_mb: null\n"
        "jobs:\n  executor: local\n  env: [PIPELINE_VISIBLE]\n"
    )
    token = admin_token(str(store))
    port = _free_port()
    env = {
        **os.environ,
        SECRET_KEY_VAR: planted.key,
        "SESSION_KEY_COPY": planted.key,
        "UNRELATED_SECRET": planted.unrelated,
        "PIPELINE_VISIBLE": planted.visible,
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "-c", "keel.yml", "server", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx2.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "keel server did not start"
            time.sleep(0.2)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_a_pipeline_job_of_keel_server_sees_no_secret_of_the_server(
    keel_server: tuple[str, str], planted: Planted, tmp_path: Path
) -> None:
    import httpx2

    url, token = keel_server
    api = httpx2.Client(
        base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    with api:
        made = api.post("/pipelines", files={"control": ("envdump.py", PIPELINE.encode())})
        assert made.status_code == 201, made.text
        saved = api.post("/pipelines/inputs", files={"file": ("in.txt", b"x\n")})
        assert saved.status_code == 201, saved.text

        # get_params runs in a subprocess of the server: what it saw is its field's default
        params = api.get("/pipelines/envdump/params")
        assert params.status_code == 200, params.text
        fields = params.json()["run"]
        by_get_params = json.loads(fields[0]["default"])
        submitted = api.post("/pipelines/envdump/run", json={"input": "in.txt"})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        deadline = time.monotonic() + 180
        while (job := api.get(f"/pipelines/jobs/{job_id}").json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.3)
        log = api.get(f"/pipelines/jobs/{job_id}/logs").json()["log"]
    assert job["status"] == "finished", log
    line = next(x for x in log.splitlines() if x.startswith("ENVIRONMENT "))
    by_job = json.loads(line[len("ENVIRONMENT ") :])
    seen_by_job = by_job["env"]

    for seen in (seen_by_job, by_get_params["env"]):
        values = set(seen.values())
        assert planted.key not in values, "a pipeline read the server's session key"
        assert SECRET_KEY_VAR not in seen and "SESSION_KEY_COPY" not in seen
        assert "UNRELATED_SECRET" not in seen and planted.unrelated not in values
        assert seen.get("PIPELINE_VISIBLE") == planted.visible  # jobs.env names it
        assert "PATH" in seen
        unexpected = {
            name
            for name in seen
            if name not in ALLOWED
            and not name.startswith(("LC_", "AWS_ENDPOINT_URL", "AZURE_STORAGE_"))
            and name not in ("PIPELINE_VISIBLE", "KEEL_JOB_ID", "KEEL_JOB_DIR")
            and name != "KEEL_JOB_SUPERVISOR_PID"
        }
        assert not unexpected, f"variables beyond the allow-list: {sorted(unexpected)}"
    assert planted.key not in log and planted.unrelated not in log
    # nor through /proc/<pid>/environ of the processes above it (the server among them),
    # unless it runs as root, who reads every process
    for ancestors in (by_job["ancestors"], by_get_params["ancestors"]):
        assert len(ancestors) >= 1, ancestors
        if os.geteuid() != 0:
            assert "has-key" not in ancestors.values(), ancestors
    # the job still found the server's store (given absolute, through its environment)
    assert seen_by_job["KEEL_STORE"] == str((tmp_path / "store").resolve())
    assert job["run_id"], job

    from keel import Client

    client = Client(store=str(tmp_path / "store"))
    try:
        run = client.get_run(job["run_id"])
        assert run.status == "finished" and run.tags.get("pipeline") == "envdump"
    finally:
        client.close()


# --------------------------------------------------------------------------- keel train as a job

MODEL = textwrap.dedent(
    """
    import json
    import os
    import sys

    import keel


    class Echo(keel.Model):
        def train(self, ctx):
            seen = json.dumps(dict(os.environ), sort_keys=True)
            print("ENVIRONMENT " + seen, file=sys.stderr, flush=True)
            return {"n": 1}

        def predict(self, ctx, fitted, inputs):
            return inputs
    """
)


def test_keel_train_as_a_local_job_gets_no_session_key_and_no_unrelated_variable(
    tmp_path: Path,
) -> None:
    key = secrets.token_urlsafe(32)
    (tmp_path / "echo_model.py").write_text(MODEL)
    (tmp_path / "keel.yml").write_text(
        "project: envtest\n"
        "model: {name: echo, module: echo_model}\n"
        "jobs:\n  executor: local\n  env: [VISIBLE_*]\n"
    )
    env = {
        **os.environ,
        SECRET_KEY_VAR: key,
        "KEY_COPY": key,
        "UNRELATED_SECRET": "unrelated-value-123",
        "VISIBLE_ONE": "one",
        "VISIBLE_TWO": "two",
    }
    done = subprocess.run(
        [sys.executable, "-m", "keel.cli", "train", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "train: job " in done.stderr  # it ran as a job of the local executor
    line = next(x for x in done.stderr.splitlines() if "ENVIRONMENT " in x)
    seen = json.loads(line.split("ENVIRONMENT ", 1)[1])
    assert SECRET_KEY_VAR not in seen and "KEY_COPY" not in seen and key not in seen.values()
    assert "UNRELATED_SECRET" not in seen
    assert seen["VISIBLE_ONE"] == "one" and seen["VISIBLE_TWO"] == "two"
    assert seen["KEEL_STORE"] == str((tmp_path / ".keel").resolve())
    assert json.loads(done.stdout)["version"] == 1  # and the job still did its work
