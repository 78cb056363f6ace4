"""The MLflow backend against a real ``mlflow server``: what the client suite does not show.

What MLflow users see of keel's records (and keel of theirs), the refusals, MLflow's batch
limits, long values, that queries really are pushed down, the artifact proxy store,
invocation records and concurrent dataset versions. The client suite
(tests/tracking, backend ``mlflow``) covers the rest.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel import Client
from keel.entities import InvocationRecord, Metric
from keel.errors import Conflict, InvalidInput, NotFound, NotSupported, StoreUnavailable
from keel.store.mlflow import MlflowStore
from mlflow_server import MlflowServer

pytestmark = pytest.mark.mlflow


@pytest.fixture
def client(mlflow_server: MlflowServer, tmp_path: Path) -> Iterator[Client]:
    project = mlflow_server.new_project()
    c = Client(
        store=mlflow_server.url,
        cache_dir=tmp_path / "cache",
        project=project,
        storage_options={"root": f"keel-tests/{project}/blobs"},
    )
    yield c
    c.close()


def _rest(server: MlflowServer, method: str, endpoint: str, body: Any = None, **params: Any) -> Any:
    import httpx2 as httpx

    resp = httpx.request(
        method, f"{server.http_url}/api/2.0/mlflow/{endpoint}", json=body, params=params or None
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_mlflow_sees_keel_records_as_its_own(client: Client, mlflow_server: MlflowServer) -> None:
    with client.start_run("vision", name="first", tags={"stage": "dev", "n": 3}) as run:
        run.log_params({"lr": 0.1, "opt": "adam", "layers": [1, 2]})
        run.log_metrics({"acc": 0.5}, step=1)
        child = run.start_child(name="child")
        child.end()
    seen = _rest(mlflow_server, "GET", "runs/get", run_id=run.id)["run"]
    assert seen["info"]["run_name"] == "first" and seen["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in seen["data"]["params"]}
    assert params == {"lr": "0.1", "opt": "adam", "layers": "[1,2]"}
    tags = {t["key"]: t["value"] for t in seen["data"]["tags"]}
    assert tags["stage"] == "dev" and tags["n"] == "3" and tags["keel.kind"] == "tracking"
    assert tags["mlflow.user"] == run.author
    experiment = _rest(mlflow_server, "GET", "experiments/get", experiment_id=run.experiment_id)
    assert experiment["experiment"]["name"] == f"{client.project}~vision"
    child_tags = {
        t["key"]: t["value"]
        for t in _rest(mlflow_server, "GET", "runs/get", run_id=child.id)["run"]["data"]["tags"]
    }
    assert child_tags["mlflow.parentRunId"] == run.id  # nested in MLflow's UI too
    # and keel reads its types back
    got = client.get_run(run.id)
    assert got.params == {"lr": 0.1, "opt": "adam", "layers": [1, 2]}
    assert got.tags == {"stage": "dev", "n": 3}


def test_keel_reads_mlflow_runs_in_the_default_project(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    name = f"native-{uuid.uuid4().hex[:8]}"
    exp_id = _rest(mlflow_server, "POST", "experiments/create", {"name": name})["experiment_id"]
    run = _rest(
        mlflow_server,
        "POST",
        "runs/create",
        {"experiment_id": exp_id, "run_name": "plain", "start_time": 1000},
    )["run"]["info"]["run_id"]
    _rest(
        mlflow_server,
        "POST",
        "runs/log-batch",
        {
            "run_id": run,
            "params": [{"key": "alpha", "value": "0.5"}],
            "metrics": [{"key": "rmse", "value": 0.7, "timestamp": 1, "step": 0}],
        },
    )
    client = Client(store=mlflow_server.url, cache_dir=tmp_path / "cache", project="default")
    exp = client.get_exp_by_name(name)
    assert exp.id == exp_id and exp.project == "default"
    found = client.find_runs({"exp.name": name, "metrics.rmse": {"$lt": 1}})
    assert [(r.id, r.name, r.kind, r.params, r.metrics) for r in found] == [
        (run, "plain", "tracking", {"alpha": "0.5"}, {"rmse": 0.7})
    ]
    assert client.get_run(run).status == "running"
    client.close()


def test_refusals_are_keel_errors(client: Client, mlflow_server: MlflowServer) -> None:
    store = client.store
    with pytest.raises(NotFound, match="no experiment with id '12345'"):
        client.get_exp("12345")
    with pytest.raises(InvalidInput, match="reserved on an MLflow server"):
        client.start_run("exp", tags={"mlflow.note.content": "x"})
    with pytest.raises(InvalidInput, match="refuses '/' in model names"):
        client.create_model("a/b")
    with client.start_run("exp") as run, pytest.raises(InvalidInput, match="keeps up to 6000"):
        run.log_params({"blob": "x" * 7000})
    client.delete_run(run)
    with pytest.raises(Conflict, match="deleted"):
        run.log_params({"late": 1})
    with pytest.raises(NotSupported, match="mlflow gc"):
        store.purge_deleted_runs()
    with pytest.raises(NotSupported):
        store.referenced_blobs()
    with pytest.raises(NotSupported, match="run ids"):
        store.create_run(run.experiment_id, run_id=uuid.uuid4().hex)


def test_an_unreachable_server_is_store_unavailable_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(
        store=f"mlflow+http://user:secret@127.0.0.1:{port}", cache_dir=tmp_path / "c", project="p"
    )
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}") as info:
        client.find_runs()
    assert "secret" not in str(info.value)
    # the artifact store says the same
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}.*MLflow server") as info:
        client.artifact_store.exists("0" * 64)
    assert "secret" not in str(info.value)


def test_big_batches_are_split_within_mlflow_limits(client: Client) -> None:
    points = [Metric("m", float(i), i, 1000 + i) for i in range(2500)]
    params = {f"p{i}": i for i in range(150)}
    tags = {f"t{i}": str(i) for i in range(120)}
    with client.start_run("exp") as run:
        client.log_batch(run, metrics=points, params=params, tags=tags)
    got = client.get_run(run.id)
    assert got.params == params and got.tags == tags and got.metrics == {"m": 2499.0}
    assert [m.step for m in client.get_metric_history(run, "m")] == list(range(2500))


def test_long_values_and_changed_types_round_trip(client: Client) -> None:
    environment = {"packages": {f"package-{i}": "1.0.0" for i in range(1500)}}
    run = client.store.create_run(
        client.get_or_create_exp("exp").id, environment=environment, author="ana"
    )
    assert client.store.get_run(run.id).environment == environment
    failure = "Traceback\n" + "  line\n" * 3000
    client.store.update_run(run.id, status="failed", failure=failure, end_time=5)
    assert client.get_run(run.id).failure == failure
    client.set_tags_on_run(run, {"n": 3})
    client.set_tags_on_run(run, {"n": "3"})
    assert client.get_run(run.id).tags == {"n": "3"}
    with pytest.raises(Conflict, match="'lr'"):
        client.log_params(run, {"lr": 1})
        client.log_params(run, {"lr": "1"})  # the same text, another type: a change


def test_queries_are_pushed_down(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(4):
        with client.start_run("exp", name=f"r{i}") as run:
            run.log_params({"opt": "adam" if i % 2 else "sgd"})
            run.log_metrics({"acc": i / 10})
    store = client.store
    assert isinstance(store, MlflowStore)
    searches: list[dict[str, Any]] = []
    call = store.http.call

    def spy(method: str, endpoint: str, body: Any = None, params: Any = None) -> Any:
        if endpoint == "runs/search":
            searches.append(body)
        return call(method, endpoint, body, params)

    monkeypatch.setattr(store.http, "call", spy)
    top = client.find_runs({"params.opt": "adam"}, sort=[("metrics.acc", -1)], limit=1)
    assert [r.name for r in top] == ["r3"]
    # a string narrows by LIKE (a list holding "adam" matches too); keel checks the rest, so
    # the sort and limit are applied here
    assert searches[-1]["filter"] == "params.`opt` LIKE '%adam%'"
    searches.clear()
    mixed = client.find_runs({"$or": [{"name": "r0"}, {"metrics.acc": {"$gt": 0.25}}]})
    assert {r.name for r in mixed} == {"r0", "r3"}
    assert searches[-1]["filter"] == "" and "order_by" not in searches[-1]


def test_pushed_metric_sort_reaching_runs_without_a_number(client: Client) -> None:
    values = {"a": 0.5, "b": math.nan, "c": None, "d": 0.7, "e": math.nan}
    for name, value in values.items():
        with client.start_run("exp", name=name) as run:
            if value is not None:
                run.log_metrics({"acc": value})
    ordered = [r.name for r in client.find_runs(sort=[("metrics.acc", -1)])]
    assert ordered[:2] == ["d", "a"] and set(ordered[2:]) == {"b", "c", "e"}
    ids = sorted(r.id for r in client.find_runs() if r.name in ("b", "c", "e"))
    assert [r.id for r in client.find_runs(sort=[("metrics.acc", -1)], limit=4)][2:] == ids[:2]


def test_invocation_records_round_trip(client: Client, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"m")
    with client.start_run("exp") as run:
        mv = client.log_model_version("clf", run, model)
    for batch in range(3):
        records = [
            InvocationRecord(
                f"ts-{batch}-{i}--uuid-x", "clf", 1, 1000 * batch + i, 1.5, "ok", "/p", {"i": i}, i
            )
            for i in range(5)
        ]
        client.log_invocations(mv, records)
    newest = client.find_invocations(mv, limit=3)
    assert [r.timestamp for r in newest] == [2004, 2003, 2002]
    assert newest[0].input == {"i": 4} and newest[0].result == 4
    window = client.find_invocations(mv, since=1002, until=2001, limit=None)
    assert [r.timestamp for r in window] == [2001, 2000, 1004, 1003, 1002]


def test_concurrent_dataset_versions_stay_unique(client: Client, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    versions: list[int] = []

    def register(i: int) -> None:
        folder = tmp_path / f"data{i}"
        folder.mkdir()
        (folder / "x.csv").write_text(f"a\n{i}\n")
        try:
            versions.append(client.log_dataset("shared", folder).version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = sorted(d.version for d in client.find_datasets({"name": "shared"}))
    assert final == [1, 2, 3]


def test_artifact_store_through_the_proxy(client: Client) -> None:
    store = client.artifact_store
    info = store.put_bytes(b"hello")
    assert info.uploaded and store.put_bytes(b"hello").uploaded is False
    assert store.exists(info.sha256) and store.size(info.sha256) == 5
    assert store.modified(info.sha256) is not None
    with store.open(info.sha256) as fh:
        assert fh.read() == b"hello"
    assert list(store.iter_blobs()) == [info.sha256]
    store.delete(info.sha256)
    assert not store.exists(info.sha256) and list(store.iter_blobs()) == []


def test_dataset_lineage_is_an_mlflow_input(
    client: Client, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("a\n1\n")
    with client.start_run("exp", kind="dataset") as maker:
        dataset = maker.log_dataset("iris", data, tags={"rows": 1})
    with client.start_run("exp") as reader:
        reader.use_dataset(dataset)
    assert sorted(dataset.runs) == sorted([(maker.id, "output"), (reader.id, "input")])
    assert client.get_dataset("iris").tags == {"rows": 1}
    inputs = _rest(mlflow_server, "GET", "runs/get", run_id=reader.id)["run"]["inputs"]
    assert [(d["dataset"]["name"], d["dataset"]["digest"]) for d in inputs["dataset_inputs"]] == [
        ("iris", dataset.id)
    ]
    # the experiment holding the dataset versions is not one of the project's experiments
    assert [e.name for e in client.find_exps()] == ["exp"]
    assert {r.id for r in client.find_runs()} == {maker.id, reader.id}


WORKER = """
import sys
from pathlib import Path
from keel import Client

url, project, root, cache, worker, points, versions = sys.argv[1:8]
client = Client(store=url, project=project, cache_dir=cache, storage_options={"root": root})
with client.start_run("load", name=f"worker-{worker}") as run:
    for i in range(int(points)):
        run.log_metrics({"m": float(i)}, step=i)
    Path(cache).mkdir(parents=True, exist_ok=True)
    model = Path(cache) / f"model-{worker}"
    for v in range(int(versions)):
        model.write_text(f"{worker}-{v}")
        client.log_model_version("shared", run, model)
print("ok")
"""


@pytest.mark.slow
def test_several_processes_write_to_one_server(
    client: Client, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    client.get_or_create_exp("load")
    root = f"keel-tests/{client.project}/blobs"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), mlflow_server.url, client.project, root,
             str(tmp_path / f"cache{w}"), str(w), "2000", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(3)
    ]  # fmt: skip
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    runs = client.find_runs({"exp.name": "load"})
    assert len(runs) == 3
    for run in runs:
        assert run.status == "finished" and run.metrics == {"m": 1999.0}
        assert [m.step for m in client.get_metric_history(run, "m")] == list(range(2000))
    versions = sorted(v.version for v in client.get_model("shared").find_versions())
    assert versions == list(range(1, 7)), "versions are unique and gapless"
