"""Planted secrets never come out: not in logs, config snapshots, stored runs, error pages,
API answers, job logs or command output.

Distinctive secrets are planted where keel reads them (:class:`Planted`): a ``*_var`` of a
``dbms`` connection, a ``${VAR}`` inside a connection URL, a user's password, an API token,
``KEEL_SECRET_KEY`` and, with the throwaway PostgreSQL, the password of the metadata store's
URL. Then keel is used the ways that could leak them: ``keel train`` (a successful one, which
stores the config snapshot, and two that fail connecting to a database), ``keel runs show``,
``keel doctor`` and ``keel doctor --json`` (with reachable and unreachable stores), a real
``keel server`` (its own output, every API answer and UI page the test visits, error pages,
wrong credentials, a pipeline job's log) and keel's loggers in-process (caplog). Everything
collected, and every byte the store holds (its database files and every artifact blob), is
searched for each secret, as written and URL-encoded; a hit fails with where it was found.

The one place a secret is meant to be shown, ``keel tokens create``'s answer (the new token,
once), is kept out of the search.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pandas as pd
import pytest

CLI_TIMEOUT_S = 180.0
SERVER_START_S = 60.0
JOB_WAIT_S = 180.0

DB_PASSWORD = "dbpw-PLANTED-4f1c9a"  # dbms.warehouse.password_var
URL_PASSWORD = "urlpw-PLANTED-8b2e7d"  # ${PLANTED_URL_PW} inside dbms.broken's URL
USER_PASSWORD = "userpw-PLANTED-3d6a0f"  # a keel user's password
SECRET_KEY = "sk-PLANTED-" + "7e" * 20  # KEEL_SECRET_KEY
PG_PASSWORD = "pgpw-PLANTED-5c8b1e"  # in KEEL_STORE's PostgreSQL URL
MODEL_KEY = "modelkey-PLANTED-2a9f4b"  # model.service_token_var and model.params.api_key_var

CONFIG = """\
project: secrets
model:
  name: ratio
  module: ratio_model
  service_token_var: PLANTED_MODEL_KEY
  params: {api_key_var: PLANTED_MODEL_KEY, depth: 3, fail_loudly: false}
dbms:
  warehouse:
    connection_string: postgresql+psycopg://bob@127.0.0.1:1/nodb
    password_var: PLANTED_DB_PW
  broken: {connection_string: "postgresql+psycopg://bob:${PLANTED_URL_PW}@127.0.0.1:1/nodb"}
datasources:
  train: {type: csv, path: data/train.csv, tags: [train]}
  test: {type: csv, path: data/test.csv, tags: [test]}
"""
MODEL_CODE = """\
import os

import keel


def _has_its_secrets(ctx):
    key = os.environ["PLANTED_MODEL_KEY"]
    return ctx.model_conf.get("service_token") == key and ctx.params.get("api_key") == key


class Ratio(keel.Model):
    def train(self, ctx):
        assert _has_its_secrets(ctx), "the model did not get its secrets"
        if ctx.params.get("fail_loudly"):  # as a client library would, naming the token
            raise RuntimeError("the service refused token " + ctx.model_conf["service_token"])
        df = ctx.sources["train"].get_dataframe()
        return {"ratio": float((df["y"] / df["x"]).mean())}

    def evaluate(self, ctx, fitted):
        return {"rows": len(ctx.sources["test"].get_dataframe())}

    def predict(self, ctx, fitted, inputs):
        return {"y": inputs["x"] * fitted["ratio"], "secrets_ok": _has_its_secrets(ctx)}
"""
#: a pipeline that fails connecting to a database through a URL with the planted password
PIPELINE = textwrap.dedent(
    """
    import os

    def train(inpt, params=None):
        import sqlalchemy
        url = "postgresql+psycopg://bob:" + os.environ["PLANTED_URL_PW"] + "@127.0.0.1:1/nodb"
        sqlalchemy.create_engine(url).connect()

    def run_pipeline(input, model, args, params=None):
        return {}
    """
)


@dataclass
class Findings:
    """Everything collected, by where it came from, and the secrets to look for."""

    secrets: dict[str, str]
    texts: dict[str, bytes] = field(default_factory=dict)

    def add(self, place: str, content: str | bytes) -> None:
        data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
        self.texts[place] = self.texts.get(place, b"") + data

    def add_tree(self, place: str, root: Path) -> None:
        """Every file under ``root``, as bytes (SQLite databases and blobs included)."""
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.add(f"{place}/{path.relative_to(root)}", path.read_bytes())

    def hits(self) -> list[str]:
        found = []
        for name, secret in self.secrets.items():
            forms = {secret.encode(), quote(secret, safe="").encode()}
            for place, data in self.texts.items():
                if any(form in data for form in forms):
                    found.append(f"{name} in {place}")
        return found

    def places_with(self, needle: bytes) -> list[str]:
        return [place for place, data in self.texts.items() if needle in data]

    def check(self, minimum_places: int) -> None:
        assert len(self.texts) >= minimum_places, f"collected too little: {sorted(self.texts)}"
        hits = self.hits()
        assert not hits, "planted secrets leaked:\n" + "\n".join(hits)


def keel_cli(
    *args: str, cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250", **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def record(findings: Findings, place: str, done: subprocess.CompletedProcess[str]) -> None:
    findings.add(f"{place} (stdout)", done.stdout)
    findings.add(f"{place} (stderr)", done.stderr)


def make_project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "keel.yml").write_text(CONFIG)
    (root / "ratio_model.py").write_text(MODEL_CODE)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    frame.to_csv(root / "data" / "train.csv", index=False)
    frame.to_csv(root / "data" / "test.csv", index=False)
    for connection in ("warehouse", "broken"):  # training fails connecting to the database
        (root / f"keel-{connection}.yml").write_text(
            CONFIG.replace(
                "train: {type: csv, path: data/train.csv, tags: [train]}",
                f"train: {{type: dbms.{connection}, table: points, tags: [train]}}",
            )
        )
    # training fails with the model's secret in its error (as a client library's would be)
    (root / "keel-loud.yml").write_text(CONFIG.replace("fail_loudly: false", "fail_loudly: true"))
    return root


@pytest.fixture
def env() -> dict[str, str]:
    return {
        "PLANTED_MODEL_KEY": MODEL_KEY,
        "PLANTED_DB_PW": DB_PASSWORD,
        "PLANTED_URL_PW": URL_PASSWORD,
        "KEEL_SECRET_KEY": SECRET_KEY,
        "KEEL_JOB_KILL_GRACE_S": "1",
    }


def _secrets(**more: str) -> dict[str, str]:
    return {
        "dbms password (*_var)": DB_PASSWORD,
        "URL password (${VAR})": URL_PASSWORD,
        "model secret (model.*_var)": MODEL_KEY,
        "user password": USER_PASSWORD,
        "KEEL_SECRET_KEY": SECRET_KEY,
        **more,
    }


def exercise_the_cli(project: Path, env: dict[str, str], findings: Findings) -> list[str]:
    """train (fine, then failing twice), runs list/show, doctor (+ --json); the run ids."""
    trained = keel_cli("train", cwd=project, env=env)
    assert trained.returncode == 0, trained.stderr
    record(findings, "keel train", trained)
    for config in ("warehouse", "broken", "loud"):
        failed = keel_cli("-c", f"keel-{config}.yml", "train", cwd=project, env=env)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "Traceback" not in failed.stderr
        record(findings, f"keel train (fails: keel-{config}.yml)", failed)
    (project / "input.json").write_text('{"x": 2}')
    predicted = keel_cli("predict", "input.json", cwd=project, env=env)
    assert json.loads(predicted.stdout) == {"y": 4.0, "secrets_ok": True}, predicted.stderr
    record(findings, "keel predict", predicted)
    listed = keel_cli("runs", "list", "--json", cwd=project, env=env)
    record(findings, "keel runs list --json", listed)
    run_ids = [r["id"] for r in json.loads(listed.stdout)]
    assert len(run_ids) == 4, listed.stdout
    for run_id in run_ids:
        record(
            findings,
            f"keel runs show {run_id}",
            keel_cli("runs", "show", run_id, cwd=project, env=env),
        )
        shown = keel_cli("runs", "show", run_id, "--json", cwd=project, env=env)
        record(findings, f"keel runs show {run_id} --json", shown)
    for args in (("doctor",), ("doctor", "--json"), ("doctor", "--replicas", "2")):
        record(findings, "keel " + " ".join(args), keel_cli(*args, cwd=project, env=env))
    return run_ids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def keel_server(project: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``keel server`` as a real process; its stdout and stderr go to ``log``."""
    port = _free_port()
    # the project's keel.yml, and the variable the pipeline job reads: jobs get only those
    # jobs.env names (in a copy of keel.yml, so the CLI tests share the project's own)
    server_yml = project / "keel-server.yml"
    config = (project / "keel.yml").read_text(encoding="utf-8").rstrip("\n")
    server_yml.write_text(config + "\njobs:\n  env: [PLANTED_URL_PW]\n", encoding="utf-8")
    command = ["-c", server_yml.name, "server", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keel.cli", *command],
            cwd=project,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"keel server did not start: {log.read_text()}"
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def exercise_the_server(
    url: str, token: str, run_ids: list[str], findings: Findings, work: Path
) -> None:
    """API answers, UI pages, refusals and a pipeline job's log, all into ``findings``."""
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    ui = httpx.Client(base_url=url, timeout=30)
    with api, ui:

        def get(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
            answer = client.request(kwargs.pop("method", "GET"), path, **kwargs)
            findings.add(f"{answer.request.method} {path} ({answer.status_code})", answer.text)
            findings.add(f"headers of {path}", json.dumps(dict(answer.headers)))
            return answer

        for path in (
            "/api/v1/me",
            "/api/v1/me/tokens",
            "/api/v1/users",
            "/api/v1/tokens",
            "/api/v1/experiments",
            "/api/v1/models",
            "/api/v1/datasets",
            "/api/v1/jobs",
            "/api/v1/pipelines",
            "/openapi.json",
            "/readyz",
            "/api/v1/runs/0123456789abcdef0123456789abcdef",  # 404
        ):
            get(api, path)
        get(api, "/api/v1/runs")
        for run_id in run_ids:
            get(api, f"/api/v1/runs/{run_id}")
            for f in get(api, f"/api/v1/artifacts/run/{run_id}").json():
                if f["size"] < 1_000_000:
                    get(api, f"/api/v1/blobs/{f['sha256']}")
        # refusals: a wrong scheme, a wrong token, a wrong password (API, MLflow API, UI)
        get(ui, "/api/v1/me", headers={"Authorization": f"Token {token}"})
        get(ui, "/api/v1/me", headers={"Authorization": f"Bearer {token}x"})
        get(
            ui,
            "/api/2.0/mlflow/experiments/search",
            method="POST",
            json={},
            auth=("vera", USER_PASSWORD + "x"),
        )
        login_page = get(ui, "/login")
        get(
            ui,
            "/login",
            method="POST",
            data={
                "name": "vera",
                "password": USER_PASSWORD + "x",
                "csrf_token": _csrf(login_page.text),
            },
        )
        answer = get(
            ui,
            "/login",
            method="POST",
            data={
                "name": "vera",
                "password": USER_PASSWORD,
                "csrf_token": _csrf(get(ui, "/login").text),
            },
        )
        assert answer.status_code == 303, answer.text
        findings.add("session cookie", json.dumps(dict(ui.cookies)))
        for path in ("/", "/models", "/datasets", "/pipelines", "/jobs", "/nope"):
            get(ui, path)
        for run_id in run_ids:
            get(ui, f"/runs/{run_id}")
            get(ui, f"/runs/{run_id}/files")
        get(ui, "/runs/not-a-run")
        # a pipeline job that fails connecting with the URL password
        upload = get(
            api,
            "/api/v1/pipelines",
            method="POST",
            files={"control": ("leaky.py", PIPELINE.encode())},
        )
        assert upload.status_code == 201, upload.text
        inputs = get(
            api, "/api/v1/pipelines/inputs", method="POST", files={"file": ("in.csv", b"a\n1\n")}
        )
        assert inputs.status_code == 201, inputs.text
        job = get(api, "/api/v1/pipelines/leaky/train", method="POST", json={"input": "in.csv"})
        assert job.status_code in (201, 202), job.text
        job_id = job.json()["id"]
        deadline = time.monotonic() + JOB_WAIT_S
        while api.get(f"/api/v1/pipelines/jobs/{job_id}").json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, "the pipeline job did not end"
            time.sleep(0.5)
        done = get(api, f"/api/v1/pipelines/jobs/{job_id}")
        assert done.json()["status"] == "failed", done.text
        logs = get(api, f"/api/v1/pipelines/jobs/{job_id}/logs")
        assert "OperationalError" in logs.text  # the job really tried to connect
        get(ui, f"/pipelines/jobs/{job_id}")
        get(ui, f"/pipelines/jobs/{job_id}/status")
        run_id = done.json().get("run_id")
        if run_id:
            get(ui, f"/runs/{run_id}")
            get(api, f"/api/v1/runs/{run_id}")
    findings.add_tree("the server's work folder", work)


# --------------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_no_planted_secret_leaves_through_the_cli_the_store_or_the_server(
    tmp_path: Path, env: dict[str, str]
) -> None:
    project = make_project(tmp_path / "project")
    users = keel_cli(
        "users", "add", "vera", "--role", "editor", "--password-stdin",
        cwd=project, env=env, stdin=USER_PASSWORD + "\n",
    )  # fmt: skip
    assert users.returncode == 0, users.stderr
    created = keel_cli("tokens", "create", "--user", "vera", "--name", "ci", cwd=project, env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("keel_")
    findings = Findings(_secrets(**{"API token": token}))
    record(findings, "keel users add", users)

    run_ids = exercise_the_cli(project, env, findings)
    log = tmp_path / "server.log"
    with keel_server(project, env, log) as url:
        exercise_the_server(url, token, run_ids, findings, project / ".keel" / "server")
    findings.add("keel server's output", log.read_bytes())
    findings.add_tree("the store", project / ".keel")
    # the search saw what it had to: the names (never the values) stored with the config
    # snapshot and the run's params, the masked URL in the failed trainings' messages
    assert any(p.startswith("the store/") for p in findings.places_with(b"PLANTED_MODEL_KEY"))
    assert findings.places_with(b"bob:***@127.0.0.1:1/nodb")
    assert findings.places_with(b"keel: server on http://127.0.0.1")
    findings.check(minimum_places=80)


def test_the_search_finds_a_secret_as_written_and_url_encoded() -> None:
    findings = Findings({"a secret": "s3cr3t/PLANTED+1"})
    findings.add("clean", "nothing here")
    findings.add("raw", b"...s3cr3t/PLANTED+1...")
    findings.add("in a URL", "https://x/?key=s3cr3t%2FPLANTED%2B1")
    assert findings.hits() == ["a secret in raw", "a secret in in a URL"]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_metadata_store_password_never_leaves(
    tmp_path: Path, env: dict[str, str], pg_url: str
) -> None:
    """KEEL_STORE on PostgreSQL with a password in its URL (trust authentication ignores
    it, so the store works), and the same URL pointing where nothing answers."""
    project = make_project(tmp_path / "project")
    with_password = pg_url.replace("@127.0.0.1", f":{PG_PASSWORD}@127.0.0.1", 1)
    assert PG_PASSWORD in with_password
    unreachable = f"postgresql+psycopg://bob:{PG_PASSWORD}@127.0.0.1:1/nodb"
    env = {**env, "KEEL_STORE": with_password, "KEEL_ARTIFACTS": str(tmp_path / "artifacts")}
    findings = Findings(_secrets(**{"PostgreSQL password": PG_PASSWORD}))

    assert keel_cli("db", "upgrade", cwd=project, env=env).returncode == 0
    users = keel_cli(
        "users", "add", "vera", "--role", "editor", "--password-stdin",
        cwd=project, env=env, stdin=USER_PASSWORD + "\n",
    )  # fmt: skip
    record(findings, "keel users add", users)
    token = (
        keel_cli("tokens", "create", "--user", "vera", "--name", "ci", cwd=project, env=env)
        .stdout.strip()
        .splitlines()[-1]
    )
    run_ids = exercise_the_cli(project, env, findings)
    log = tmp_path / "server.log"
    with keel_server(project, env, log) as url:
        exercise_the_server(url, token, run_ids, findings, tmp_path / "cache" / "server")
    findings.add("keel server's output", log.read_bytes())
    findings.add_tree("the artifact store", tmp_path / "artifacts")

    down = {**env, "KEEL_STORE": unreachable}
    for args in (("doctor",), ("doctor", "--json"), ("runs", "list"), ("train",)):
        done = keel_cli(*args, cwd=project, env=down)
        assert done.returncode != 0
        record(findings, f"keel {' '.join(args)} (store unreachable)", done)
    log_down = tmp_path / "server-down.log"
    # it may refuse to start (no admin can be looked up): its output counts either way
    with contextlib.suppress(AssertionError), keel_server(project, down, log_down) as url:
        findings.add("/readyz (store down)", httpx.get(f"{url}/readyz", timeout=30).text)
        findings.add("/api/v1/me (store down)", httpx.get(f"{url}/api/v1/me", timeout=30).text)
    findings.add("keel server's output (store down)", log_down.read_bytes())
    findings.check(minimum_places=60)


def test_keel_loggers_and_errors_never_carry_a_planted_secret(
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In-process: a training that fails connecting (both connections), a client and a
    server over an unreachable PostgreSQL URL with a password; keel's loggers at DEBUG."""
    from fastapi.testclient import TestClient

    from keel import Client
    from keel.errors import KeelError
    from keel.lifecycle import train
    from keel.server.app import create_app
    from keel.server.settings import ServerSettings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project = make_project(tmp_path / "project")
    monkeypatch.chdir(project)
    findings = Findings(_secrets(**{"PostgreSQL password": PG_PASSWORD}))
    caplog.set_level(logging.DEBUG, logger="keel")
    for config in ("warehouse", "broken", "loud"):
        with pytest.raises(KeelError) as caught:
            train(f"keel-{config}.yml")
        # (its cause is the model's own exception, as the model raised it, in this process)
        findings.add(f"train with keel-{config}.yml: the error", str(caught.value))
    # a stored model loaded without its keel.yml reads its secrets from this environment
    from keel.lifecycle import load_model

    version = train("keel.yml").version
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    stored = Client(store=str(project / ".keel"), project="secrets")
    with load_model(f"ratio@{version.version}", client=stored) as loaded:
        assert loaded.predict({"x": 2}) == {"y": 4.0, "secrets_ok": True}
    findings.add("the stored model's manifest", json.dumps(loaded.manifest.model_conf))
    findings.add("the stored version's runs", repr(stored.find_runs()))
    stored.close()
    unreachable = f"postgresql+psycopg://bob:{PG_PASSWORD}@127.0.0.1:1/nodb"
    client = Client(store=unreachable, artifacts=str(tmp_path / "artifacts"))
    with pytest.raises(KeelError) as caught:
        client.find_runs()
    findings.add("a client of an unreachable store: the error", str(caught.value))
    findings.add("the client's repr", repr(client))
    # metrics buffered for that store: writing them at exit fails, and is logged
    from keel.tracking.buffer import _flush_at_exit

    client.log_metrics("0123456789abcdef0123456789abcdef", {"loss": 0.5})
    _flush_at_exit()
    with contextlib.suppress(KeelError):
        client.close()
    app = create_app(ServerSettings(store=unreachable, artifacts=str(tmp_path / "artifacts")))
    with TestClient(app) as tc:
        tc.headers["Authorization"] = "Bearer keel_not-a-real-token"  # checked in the store
        for path in ("/readyz", "/api/v1/me", "/api/v1/runs", "/login", "/"):
            answer = tc.get(path)
            findings.add(
                f"server on an unreachable store: GET {path} ({answer.status_code})", answer.text
            )
    findings.add("keel's log records", caplog.text)
    findings.add("keel's log records (args)", repr([r.args for r in caplog.records]))
    assert caplog.records, "nothing was logged: the loggers were not captured"
    findings.check(minimum_places=10)
