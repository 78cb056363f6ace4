"""MLflow's own client (unmodified ``mlflow`` 3.x) against a real ``keel server``.

One server for the module (uvicorn in a thread, see tests/keel_server.py); each test works in
its own experiments and models. Every object made through MLflow is checked from keel's side
too (a keel run, a keel model version whose files verify against their content hash).
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow==3.17.2 is in the dev extra")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

import keel  # noqa: E402
from keel.server.auth import Accounts  # noqa: E402
from keel.server.settings import ServerSettings  # noqa: E402
from keel.store.accounts import AccountStore  # noqa: E402
from keel_server import ADMIN, RunningServer, _password_hash, running_server  # noqa: E402
from mlflow_wire import MLFLOW_ENV, QUIET, reset_fluent_state  # noqa: E402

pytestmark = QUIET


class Server:
    """The running server, its tokens per role and the store behind it."""

    def __init__(self, running: RunningServer, artifacts: str, tokens: dict[str, str]) -> None:
        self.url = running.url
        self.store = running.store
        self.artifacts = artifacts
        self.tokens = tokens

    def keel(self) -> keel.Client:
        """keel's own client on the server's stores (embedded: the same database and files)."""
        return keel.Client(store=self.store, artifacts=self.artifacts)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mlflow-wire")
    settings = ServerSettings(store=str(root / "store"), artifacts=str(root / "artifacts"))
    with pytest.MonkeyPatch.context() as patch, running_server(settings) as running:
        for key, value in MLFLOW_ENV.items():
            patch.setenv(key, value)
        accounts = Accounts(AccountStore(running.store))
        tokens = {"admin": running.token}
        for role in ("viewer", "editor"):
            accounts.store.add_user(role, _password_hash(), role)
            tokens[role] = accounts.create_token(role, "tests")[1]
        patch.setenv("MLFLOW_TRACKING_TOKEN", tokens["editor"])
        mlflow.set_tracking_uri(running.url)
        yield Server(running, str(settings.artifacts), tokens)
        reset_fluent_state()


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.tokens["editor"])
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def _code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


# --- experiments -------------------------------------------------------------------------------


def test_experiments_create_get_search_rename_delete_restore_and_tags(
    client: MlflowClient, server: Server
) -> None:
    exp_id = client.create_experiment("wire-exp", tags={"team": "a"})
    exp = client.get_experiment(exp_id)
    assert (exp.name, exp.lifecycle_stage, exp.tags) == ("wire-exp", "active", {"team": "a"})
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert client.get_experiment_by_name("wire-exp").experiment_id == exp_id
    assert client.get_experiment_by_name("no-such-exp") is None
    with pytest.raises(MlflowException) as taken:
        client.create_experiment("wire-exp")
    assert _code(taken) == "RESOURCE_ALREADY_EXISTS"

    client.set_experiment_tag(exp_id, "stage", "dev")
    client.delete_experiment_tag(exp_id, "team")
    assert client.get_experiment(exp_id).tags == {"stage": "dev"}
    client.rename_experiment(exp_id, "wire-exp-renamed")
    assert client.get_experiment(exp_id).name == "wire-exp-renamed"

    found = client.search_experiments(filter_string="name LIKE 'wire-exp%'")
    assert [e.experiment_id for e in found] == [exp_id]
    assert [e.name for e in client.search_experiments(filter_string="tags.stage = 'dev'")] == [
        "wire-exp-renamed"
    ]
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in [e.experiment_id for e in client.search_experiments()]
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert exp_id in [e.experiment_id for e in deleted]
    with pytest.raises(MlflowException) as refused:
        client.create_run(exp_id)
    assert _code(refused) == "INVALID_PARAMETER_VALUE"
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"

    # the same experiment through keel
    kept = server.keel().get_exp(exp_id)
    assert (kept.name, kept.tags) == ("wire-exp-renamed", {"stage": "dev"})

    with pytest.raises(MlflowException) as missing:
        client.get_experiment("0123456789abcdef0123456789abcdef")
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"


def test_the_default_experiment_is_0(server: Server) -> None:
    with mlflow.start_run() as run:  # no experiment set: MLflow's default, "0"
        mlflow.log_param("p", "1")
    assert run.info.experiment_id == "0"
    assert mlflow.get_experiment("0").name == "Default"
    exp = server.keel().get_exp_by_name("Default")
    assert server.keel().get_run(run.info.run_id).experiment_id == exp.id
    assert [r.info.run_id for r in MlflowClient().search_runs(["0"])] == [run.info.run_id]


# --- runs, params, metrics, tags ---------------------------------------------------------------


def test_run_lifecycle_params_metrics_tags_and_keel_sees_them(
    client: MlflowClient, server: Server
) -> None:
    mlflow.set_experiment("wire-runs")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"model": "rf", "depth": 3})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.9, "nan": math.nan, "inf": math.inf})
        mlflow.set_tag("owner", "ann")
        mlflow.set_tags({"a": "1", "b": "2"})
        run_id = run.info.run_id
        assert client.get_run(run_id).info.status == "RUNNING"
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.run_name == "first"
    assert got.data.params == {"lr": "0.1", "model": "rf", "depth": "3"}
    assert got.data.metrics["loss"] == 0.5 and got.data.metrics["acc"] == 0.9
    assert math.isnan(got.data.metrics["nan"]) and got.data.metrics["inf"] == math.inf
    assert {"owner": "ann", "a": "1", "b": "2", "mlflow.runName": "first"}.items() <= (
        got.data.tags.items()
    )
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]

    # the run is a keel run with the same facts
    kept = server.keel().get_run(run_id)
    assert (kept.name, kept.status, kept.kind) == ("first", "finished", "tracking")
    assert kept.params == {"lr": "0.1", "model": "rf", "depth": "3"}
    assert kept.metrics["loss"] == 0.5
    assert [m.value for m in server.keel().get_metric_history(run_id, "loss")] == [1.0, 0.5]

    # rename, delete, restore, delete a tag
    client.update_run(run_id, name="renamed")
    assert client.get_run(run_id).data.tags["mlflow.runName"] == "renamed"
    client.set_tag(run_id, "mlflow.runName", "again")
    assert client.get_run(run_id).info.run_name == "again"
    client.delete_tag(run_id, "owner")
    assert "owner" not in client.get_run(run_id).data.tags
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as deleted:
        client.log_metric(run_id, "loss", 0.1)
    assert _code(deleted) == "INVALID_PARAMETER_VALUE"
    client.restore_run(run_id)
    client.set_terminated(run_id, status="KILLED")
    assert client.get_run(run_id).info.status == "KILLED"
    assert server.keel().get_run(run_id).status == "killed"


def test_params_are_write_once_and_batches_keep_mlflow_limits(client: MlflowClient) -> None:
    exp_id = client.create_experiment("wire-batch")
    run_id = client.create_run(exp_id).info.run_id
    client.log_param(run_id, "p", "1")
    client.log_param(run_id, "p", "1")  # the same value again is fine, as in MLflow
    with pytest.raises(MlflowException) as changed:
        client.log_param(run_id, "p", "2")
    assert _code(changed) == "INVALID_PARAMETER_VALUE"
    assert "write-once" in changed.value.message

    metrics = [Metric("m", float(i), 1_700_000_000_000 + i, i) for i in range(1000)]
    client.log_batch(run_id, metrics=metrics, params=[Param("q", "x")], tags=[RunTag("t", "y")])
    assert len(client.get_metric_history(run_id, "m")) == 1000
    too_many = {
        "metrics": [Metric("m", 0.0, 1, 0)] * 1001,
        "params": [Param(f"p{i}", "v") for i in range(101)],
        "tags": [RunTag(f"t{i}", "v") for i in range(101)],
    }
    # MlflowClient.log_batch splits big batches; its REST store sends one request as it is
    rest = client._tracking_client.store
    for what, items in too_many.items():
        with pytest.raises(MlflowException) as refused:
            rest.log_batch(run_id, **{"metrics": [], "params": [], "tags": [], what: items})
        assert _code(refused) == "INVALID_PARAMETER_VALUE"
        assert f"at most {len(items) - 1} {what}" in refused.value.message
    with pytest.raises(MlflowException) as total:
        rest.log_batch(
            run_id,
            metrics=[Metric("n", 0.0, 1, i) for i in range(950)],
            params=[Param(f"k{i}", "v") for i in range(51)],
            tags=[],
        )
    assert "at most 1000 metrics, params, and tags" in total.value.message
    assert len(client.get_metric_history(run_id, "n")) == 0  # nothing of a refused batch
    with pytest.raises(MlflowException) as unknown:
        client.log_metric("0123456789abcdef0123456789abcdef", "m", 1.0)
    assert _code(unknown) == "RESOURCE_DOES_NOT_EXIST"


def test_search_runs_filters_order_and_pages(client: MlflowClient) -> None:
    mlflow.set_experiment("wire-search")
    rows = [("rf", 0.95, "yellow"), ("rf", 0.85, "grey"), ("svm", 0.97, "gold"), ("rf", 0.91, "")]
    ids = {}
    for model, acc, colour in rows:
        with mlflow.start_run() as run:
            mlflow.log_params({"model": model})
            mlflow.log_metric("acc", acc)
            if colour:
                mlflow.set_tag("colour", colour)
        ids[acc] = run.info.run_id
    with mlflow.start_run() as running:
        mlflow.log_metric("acc", 0.99)
        df = mlflow.search_runs(
            filter_string="metrics.acc > 0.9 and params.model = 'rf'",
            order_by=["metrics.acc DESC"],
        )
        assert list(df["run_id"]) == [ids[0.95], ids[0.91]]
        assert list(df["metrics.acc"]) == [0.95, 0.91]
        like = mlflow.search_runs(filter_string="tags.colour LIKE '%ell%'", output_format="list")
        assert [r.info.run_id for r in like] == [ids[0.95]]
        ilike = mlflow.search_runs(filter_string="tags.colour ILIKE 'G%'", output_format="list")
        assert {r.info.run_id for r in ilike} == {ids[0.85], ids[0.97]}
        untagged = mlflow.search_runs(filter_string="tags.colour IS NULL", output_format="list")
        assert {r.info.run_id for r in untagged} == {ids[0.91], running.info.run_id}
        active = mlflow.search_runs(filter_string="attributes.status = 'RUNNING'")
        assert list(active["run_id"]) == [running.info.run_id]
    finished = mlflow.search_runs(
        filter_string="attributes.status = 'FINISHED' and params.model != 'rf'"
    )
    assert list(finished["run_id"]) == [ids[0.97]]
    some = [ids[0.85], ids[0.97]]
    listed = ", ".join(f"'{i}'" for i in some)
    chosen = mlflow.search_runs(filter_string=f"attributes.run_id IN ({listed})")
    assert set(chosen["run_id"]) == set(some)

    exp_id = mlflow.get_experiment_by_name("wire-search").experiment_id
    first = client.search_runs([exp_id], order_by=["metrics.acc ASC"], max_results=2)
    assert [r.data.metrics["acc"] for r in first] == [0.85, 0.91]
    assert first.token
    second = client.search_runs(
        [exp_id], order_by=["metrics.acc ASC"], max_results=2, page_token=first.token
    )
    assert [r.data.metrics["acc"] for r in second] == [0.95, 0.97]
    third = client.search_runs(
        [exp_id], order_by=["metrics.acc ASC"], max_results=2, page_token=second.token
    )
    assert [r.data.metrics["acc"] for r in third] == [0.99] and not third.token

    for bad in (
        "metrics.acc >",
        "metrics.acc > 'x'",
        "params.model = rf",
        "foo.bar = 'x'",
        "metrics.acc > 1 or params.x = 'y'",
        "attributes.nope = 'x'",
    ):
        with pytest.raises(MlflowException) as refused:
            client.search_runs([exp_id], filter_string=bad)
        assert _code(refused) == "INVALID_PARAMETER_VALUE", bad


def test_the_filter_language_is_read_as_mlflow_reads_it() -> None:
    from keel.server.mlflow.protocol import MlflowError
    from keel.server.mlflow.search import Clause, parse_filter, parse_order_by, translate
    from keel.server.mlflow.tracking import RUNS

    assert parse_filter(
        'metrics.`val loss` <= -1.5e-3 AND tags.mlflow.runName != "a b" and '
        "attr.run_id NOT IN ('x', 'y') and params.p IS NOT NULL and status ilike 'fin%'"
    ) == [
        Clause("metric", "val loss", "<=", -1.5e-3),
        Clause("tag", "mlflow.runName", "!=", "a b"),
        Clause("attribute", "run_id", "NOT IN", ["x", "y"]),
        Clause("param", "p", "IS NOT NULL"),
        Clause("attribute", "status", "ILIKE", "fin%"),
    ]
    assert translate(
        parse_filter("params.model = 'rf' and attributes.status = 'FINISHED'"), RUNS
    ) == {"$and": [{"params.model": {"$eq": "rf"}}, {"status": {"$eq": "finished"}}]}
    assert translate(parse_filter("tags.t LIKE 'a_c%'"), RUNS) == {"tags.t": {"$regex": "^a.c.*$"}}
    assert parse_order_by(["metrics.acc DESC", "`Run Name`", 'tags."a b" asc']) == [
        ("metric", "acc", False),
        ("attribute", "Run Name", True),
        ("tag", "a b", True),
    ]
    with pytest.raises(MlflowError, match="at character 15, got 'or'"):
        parse_filter("metrics.a > 1 or metrics.b > 2")


# --- artifacts and models ----------------------------------------------------------------------


def test_artifacts_go_through_the_proxy_into_keel(
    client: MlflowClient, server: Server, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "sub" / "b.bin").write_bytes(os.urandom(3 << 20))  # several chunks
    mlflow.set_experiment("wire-artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"), artifact_path="docs")
        mlflow.log_artifacts(str(folder), artifact_path="plots")
        mlflow.log_text("inline", "texts/t.txt")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert [f.path for f in client.list_artifacts(run_id)] == ["docs", "plots", "texts"]
    listed = client.list_artifacts(run_id, "plots")
    assert [(f.path, f.is_dir) for f in listed] == [("plots/a.csv", False), ("plots/sub", True)]
    assert listed[0].file_size == 8
    down = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "d")))
    assert (down / "docs" / "notes.txt").read_text() == "hello"
    assert (down / "plots" / "sub" / "b.bin").read_bytes() == (
        folder / "sub" / "b.bin"
    ).read_bytes()
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/t.txt") == "inline"

    # keel's client finds the same files, content-addressed
    files = {f.path: f.size for f in server.keel().list_run_artifact(run_id)}
    assert files == {
        "docs/notes.txt": 5,
        "plots/a.csv": 8,
        "plots/sub/b.bin": 3 << 20,
        "texts/t.txt": 6,
    }
    local = server.keel().get_run_artifact(run_id, "docs/notes.txt")
    assert local.read_text() == "hello"


def test_sklearn_model_registered_aliased_and_loaded_back(
    client: MlflowClient, server: Server, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 1, 0, 1])
    fitted = LogisticRegression().fit(x, y)
    mlflow.set_experiment("wire-models")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("acc", 1.0)
        # requirements given (inferring them runs the model in a subprocess) and cloudpickle
        # (skops scans every scikit-learn module on import): ~15 s less
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",
        )
    assert info.model_uri.startswith("models:/m-")
    logged = client.get_logged_model(info.model_id)
    assert (logged.name, logged.source_run_id, logged.status.to_proto()) == (
        "model",
        run.info.run_id,
        2,  # LOGGED_MODEL_READY
    )
    assert logged.params == {"C": "1.0"} and [m.key for m in logged.metrics] == ["acc"]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "acc")] == [1.0]

    v1 = mlflow.register_model(f"runs:/{run.info.run_id}/model", "wire-clf")
    v2 = mlflow.register_model(info.model_uri, "wire-clf", tags={"kind": "copy"})
    assert (v1.version, v2.version) == ("1", "2")  # as in MLflow: a new version each time
    assert v1.run_id == run.info.run_id and v1.source == info.model_uri

    client.set_registered_model_tag("wire-clf", "team", "ml")
    client.update_registered_model("wire-clf", description="a classifier")
    client.set_model_version_tag("wire-clf", "1", "validated", "yes")
    client.update_model_version("wire-clf", "1", description="first")
    client.set_registered_model_alias("wire-clf", "prod", "1")
    client.set_registered_model_alias("wire-clf", "next", "2")
    client.delete_registered_model_alias("wire-clf", "next")
    model = client.get_registered_model("wire-clf")
    assert (model.description, model.tags, model.aliases) == (
        "a classifier",
        {"team": "ml"},
        {"prod": "1"},
    )
    assert [v.version for v in model.latest_versions] == ["2"]
    by_alias = client.get_model_version_by_alias("wire-clf", "prod")
    assert (by_alias.version, by_alias.description, by_alias.tags) == (
        "1",
        "first",
        {"validated": "yes"},
    )
    client.delete_model_version_tag("wire-clf", "2", "kind")
    assert client.get_model_version("wire-clf", "2").tags == {}
    uri = client.get_model_version_download_uri("wire-clf", "1")
    assert uri == logged.artifact_location
    versions = client.search_model_versions("name = 'wire-clf'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert [m.name for m in client.search_registered_models("name LIKE 'wire-%'")] == ["wire-clf"]

    loaded = mlflow.pyfunc.load_model("models:/wire-clf@prod")
    assert list(loaded.predict(x)) == [0, 1, 0, 1]
    sk = mlflow.sklearn.load_model("models:/wire-clf/2")
    assert list(sk.predict(x)) == [0, 1, 0, 1]

    # a real keel version: its files are the logged model's, its hash verifies
    kc = server.keel()
    version = kc.get_model_version("wire-clf@prod")
    assert version.version == 1 and version.path_in_run == "model"
    holder = kc.get_run(version.run_id)
    assert holder.parent_id == run.info.run_id  # the logged model's run is a child
    assert "MLmodel" in {f.path.rsplit("/", 1)[-1] for f in kc.list_model_artifact(version)}
    assert (kc.get_model_artifact(version) / "MLmodel").is_file()
    assert kc.get_model("wire-clf").aliases == {"prod": 1}
    # the logged model's run is not one of the experiment's runs for MLflow
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id])] == [
        run.info.run_id
    ]
    with pytest.raises(MlflowException) as missing:
        client.get_model_version_by_alias("wire-clf", "nope")
    assert _code(missing) == "RESOURCE_DOES_NOT_EXIST"

    # sent as it is (older clients do), runs:/<run>/<name> still finds the logged model; the
    # source is shown as given, as MLflow does
    registry = client._get_registry_client().store
    v3 = registry.create_model_version(
        "wire-clf", f"runs:/{run.info.run_id}/model", run.info.run_id
    )
    assert (v3.version, v3.source) == ("3", f"runs:/{run.info.run_id}/model")
    assert kc.get_model_version("wire-clf@3").content_hash == version.content_hash


def test_a_model_folder_logged_as_run_artifacts_registers_too(
    client: MlflowClient, server: Server, tmp_path: Path
) -> None:
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: list[str], params: Any = None) -> list[str]:
            return model_input

    mlflow.pyfunc.save_model(
        str(tmp_path / "echo"), python_model=Echo(), pip_requirements=["mlflow"]
    )
    mlflow.set_experiment("wire-folder")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "echo"), artifact_path="echo")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/echo", "wire-echo")
    assert version.source.endswith(f"/{run.info.run_id}/artifacts/echo")
    kept = server.keel().get_model_version("wire-echo@1")
    assert (kept.run_id, kept.path_in_run) == (run.info.run_id, "echo")
    assert (server.keel().get_model_artifact(kept) / "MLmodel").is_file()
    # as in MLflow, a source naming no files keel holds is registered; keel says so on load
    nothing = client.create_model_version(
        "wire-echo", f"runs:/{run.info.run_id}/nope", run.info.run_id
    )
    assert nothing.source == f"runs:/{run.info.run_id}/nope"
    with pytest.raises(keel.errors.NotFound, match="registered through MLflow's API from"):
        server.keel().get_model_artifact(f"wire-echo@{nothing.version}")


def test_logged_models_without_a_run_search_delete_and_nested_runs(
    client: MlflowClient, server: Server
) -> None:
    import mlflow.pyfunc

    class Upper(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: list[str], params: Any = None) -> list[str]:
            return [text.upper() for text in model_input]

    mlflow.set_experiment("wire-logged")
    info = mlflow.pyfunc.log_model(name="upper", python_model=Upper(), pip_requirements=["mlflow"])
    assert info.run_id is None  # no active run: the logged model's run holds it alone
    found = mlflow.search_logged_models(filter_string="name = 'upper'", output_format="list")
    assert [m.model_id for m in found] == [info.model_id]
    assert mlflow.pyfunc.load_model(info.model_uri).predict(["a"]) == ["A"]
    version = mlflow.register_model(info.model_uri, "wire-upper")
    assert (version.source, version.run_id) == (info.model_uri, "")
    client.delete_logged_model(info.model_id)
    with pytest.raises(MlflowException) as gone:
        client.get_logged_model(info.model_id)
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.search_logged_models(output_format="list") == []
    assert (server.keel().get_model_artifact("wire-upper@1") / "MLmodel").is_file()

    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        mlflow.log_metric("x", 1.0)
    assert server.keel().get_run(child.info.run_id).parent_id == parent.info.run_id
    nested = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert list(nested["run_id"]) == [child.info.run_id]


# --- access and errors -------------------------------------------------------------------------


def test_roles_tokens_and_passwords(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MlflowClient(tracking_uri=server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.tokens["viewer"])
    assert client.search_experiments() is not None  # reads are a viewer's
    with pytest.raises(MlflowException) as denied:
        client.create_experiment("wire-by-viewer")
    assert _code(denied) == "PERMISSION_DENIED"
    assert "editor role" in denied.value.message
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "keel_not-a-token")
    with pytest.raises(MlflowException) as unknown:
        client.search_experiments()
    assert _code(unknown) == "UNAUTHENTICATED"
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException) as anonymous:
        client.search_experiments()
    assert _code(anonymous) == "UNAUTHENTICATED"

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "test-password")
    exp_id = client.create_experiment("wire-by-password")
    assert client.get_experiment(exp_id).name == "wire-by-password"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    with pytest.raises(MlflowException) as wrong:
        client.get_experiment(exp_id)
    assert _code(wrong) == "UNAUTHENTICATED"


def test_refusals_have_mlflow_error_shape(server: Server) -> None:
    import requests

    headers = {"Authorization": f"Bearer {server.tokens['editor']}"}
    missing = requests.get(
        f"{server.url}/api/2.0/mlflow/runs/get", params={"run_id": "nope"}, headers=headers
    )
    assert missing.status_code == 404
    assert missing.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Run with id=nope not found",
    }
    required = requests.post(
        f"{server.url}/api/2.0/mlflow/runs/log-batch", json={}, headers=headers
    )
    assert required.status_code == 400
    assert required.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'run_id'" in required.json()["message"]
    unknown = requests.post(f"{server.url}/api/2.0/mlflow/traces/search", json={}, headers=headers)
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    basic = base64.b64encode(b"nobody:whatever").decode()
    refused = requests.get(
        f"{server.url}/api/2.0/mlflow/experiments/search",
        headers={"Authorization": f"Basic {basic}"},
    )
    assert (refused.status_code, refused.json()["error_code"]) == (401, "UNAUTHENTICATED")


def test_answers_are_compact_json_and_big_integers_still_encode() -> None:
    import json

    from keel.server.mlflow.protocol import answer, encode_json

    page = {"runs": [{"info": {"run_id": "a" * 32, "start_time": 1_700_000_000_000}}], 3: "x"}
    assert json.loads(encode_json(page)) == {**{k: v for k, v in page.items() if k != 3}, "3": "x"}
    assert b" " not in encode_json(page)
    # orjson stops at 64 bits; the standard library does not, and neither may the answer.
    assert json.loads(encode_json({"step": 2**70})) == {"step": 2**70}
    assert answer(None).body == b"{}"
    assert answer({"value": "NaN"}).headers["content-type"].startswith("application/json")
