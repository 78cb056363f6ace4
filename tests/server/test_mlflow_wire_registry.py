"""MLflow's model registry over the wire (MLflow's own client and plain requests) against a
real ``keel server``: renames, deletions, stages, copies, version searches, and sources keel
holds no files of. Each operation is checked from keel's side too (``keel.Client`` on the
server's store sees the rename, the deletion, the stage; a version of files keel holds keeps
keel's content hash)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow==3.17.2 is in the dev extra")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

import keel  # noqa: E402
from keel.errors import Conflict, NotFound  # noqa: E402
from keel.hashing import hash_path  # noqa: E402
from mlflow_wire import QUIET, serving  # noqa: E402
from mlflow_wire import Wire as Server  # noqa: E402

pytestmark = QUIET


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("mlflow-registry")) as server:
        yield server


@pytest.fixture
def client(server: Server) -> MlflowClient:
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def _code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


def _run_with_files(client: MlflowClient, tmp_path: Path, experiment: str) -> tuple[str, Path]:
    """A run holding a small model folder at ``model/`` (stored by keel through the proxy)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(b"\x00\x01" * 64)
    run = client.create_run(client.create_experiment(experiment))
    client.log_artifacts(run.info.run_id, str(folder), artifact_path="model")
    return run.info.run_id, folder


# --- sources keel holds no files of -------------------------------------------------------------


def test_a_source_keel_holds_no_files_of_is_registered_and_says_so_when_loaded(
    client: MlflowClient, server: Server
) -> None:
    client.create_registered_model("reg-elsewhere")
    mv = client.create_model_version("reg-elsewhere", "runs:/run_x/model", "run_x", {"k": "v"})
    assert (mv.version, mv.source, mv.run_id, mv.tags) == (
        "1",
        "runs:/run_x/model",
        "run_x",
        {"k": "v"},
    )
    other = client.create_model_version("reg-elsewhere", "s3://bucket/path/model")
    assert other.source == "s3://bucket/path/model"
    # the download URI is the source, as MLflow's server answers for files it cannot resolve
    assert client.get_model_version_download_uri("reg-elsewhere", "1") == "runs:/run_x/model"
    # searchable by the run id and the source MLflow was given
    assert [v.version for v in client.search_model_versions("run_id = 'run_x'")] == ["1"]
    found = client.search_model_versions("source_path = 's3://bucket/path/model'")
    assert [(v.name, v.version) for v in found] == [("reg-elsewhere", "2")]

    # keel's version has no run and no content hash; loading it says why, in one line
    kc = server.keel()
    kept = kc.get_model_version("reg-elsewhere@1")
    assert (kept.run_id, kept.content_hash) == (None, "")
    assert kept.tags["keel.mlflow.source"] == "runs:/run_x/model"
    with pytest.raises(NotFound) as absent:
        kc.get_model_artifact("reg-elsewhere@1")
    message = str(absent.value)
    assert "\n" not in message
    assert "registered through MLflow's API from 'runs:/run_x/model'" in message


def test_a_source_naming_files_keel_holds_keeps_keels_content_hash(
    client: MlflowClient, server: Server, tmp_path: Path
) -> None:
    run_id, folder = _run_with_files(client, tmp_path, "reg-held")
    client.create_registered_model("reg-held")
    by_run = client.create_model_version("reg-held", f"runs:/{run_id}/model", run_id)
    assert (by_run.source, by_run.run_id) == (f"runs:/{run_id}/model", run_id)
    artifact_uri = client.get_run(run_id).info.artifact_uri
    by_uri = client.create_model_version("reg-held", f"{artifact_uri}/model", run_id)
    assert by_uri.source == f"{artifact_uri}/model"

    kc = server.keel()
    for ref in ("reg-held@1", "reg-held@2"):
        kept = kc.get_model_version(ref)
        assert (kept.run_id, kept.path_in_run) == (run_id, "model")
        assert kept.content_hash == hash_path(folder)
        assert (kc.get_model_artifact(kept) / "weights.bin").read_bytes() == b"\x00\x01" * 64
    # MLflow downloads the same files through the proxy
    uri = client.get_model_version_download_uri("reg-held", "1")
    assert uri == f"{artifact_uri}/model"


def test_sources_are_checked_as_mlflows_server_checks_them(
    client: MlflowClient, server: Server
) -> None:
    client.create_registered_model("reg-checks")
    run_id = client.create_run(client.create_experiment("reg-checks")).info.run_id

    def refused(body: dict[str, Any]) -> tuple[int, str, str]:
        answer = server.post("model-versions/create", {"name": "reg-checks", **body})
        return answer.status_code, answer.json()["error_code"], answer.json()["message"]

    status, code, message = refused({"source": "runs:/another_run/model", "run_id": run_id})
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert "The run_id request parameter must identify the resource" in message
    status, _, message = refused({"source": "/tmp/model"})
    assert status == 400 and "To use a local path as a model version" in message
    status, _, message = refused({"source": "/tmp", "run_id": run_id})
    assert status == 400 and "To use a local path as a model version" in message
    status, _, message = refused({"source": "file:///tmp"})
    assert status == 400 and "To use a local path as a model version" in message
    for source in (
        "http://host:9000/models/../../../",
        "s3a://my_bucket/api/2.0/mlflow-artifacts/artifacts/../../../",
        "mlflow-artifacts://host:9000/models/..%2f..%2fartifacts",
        "mlflow-artifacts://host:9000/models/artifact%00",
    ):
        status, _, message = refused({"source": source, "run_id": run_id})
        assert status == 400 and "If supplying a source as an http, https," in message, source
    # outside the run's artifacts
    status, _, message = refused({"source": "mlflow-artifacts:/models", "run_id": run_id})
    assert status == 400 and "Invalid model version source" in message
    # a file: URI naming another host is MLflow's internal error
    status, code, message = refused(
        {"source": "file://123.456.789.123/path/to/source", "run_id": run_id}
    )
    assert (status, code) == (500, "INTERNAL_ERROR") and "is not a valid remote uri" in message
    assert client.search_model_versions("name = 'reg-checks'") == []


def test_a_version_made_from_a_logged_model_is_listed_on_it(
    client: MlflowClient, server: Server
) -> None:
    exp_id = client.create_experiment("reg-logged")
    model = client.create_logged_model(experiment_id=exp_id)
    client.create_registered_model("reg-logged")
    for _ in range(2):
        client.create_model_version(
            "reg-logged", source=model.artifact_location, model_id=model.model_id
        )
    tag = client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]
    assert tag == '[{"name": "reg-logged", "version": 1}, {"name": "reg-logged", "version": 2}]'
    answer = server.post(
        "model-versions/create",
        {"name": "reg-logged", "source": "file:///path/to/model", "model_id": model.model_id},
    )
    assert answer.status_code == 400


# --- renames and deletions ---------------------------------------------------------------------


def test_rename_and_delete_a_registered_model_on_both_sides(
    client: MlflowClient, server: Server
) -> None:
    client.create_registered_model("reg-old", tags={"t": "1"}, description="d")
    client.create_model_version("reg-old", "runs:/run_a/model", "run_a")
    client.set_registered_model_alias("reg-old", "prod", "1")
    created = client.get_registered_model("reg-old").creation_timestamp
    before = int(time.time() * 1000)
    client.rename_registered_model("reg-old", "reg-new")
    with pytest.raises(MlflowException, match="Registered Model with name=reg-old not found"):
        client.get_registered_model("reg-old")
    got = client.get_registered_model("reg-new")
    assert (got.tags, got.description, got.aliases) == ({"t": "1"}, "d", {"prod": "1"})
    assert got.creation_timestamp == created and got.last_updated_timestamp >= before
    assert client.get_model_version("reg-new", "1").name == "reg-new"
    kc = server.keel()
    assert kc.get_model("reg-new").aliases == {"prod": 1}
    with pytest.raises(NotFound):
        kc.get_model("reg-old")

    client.create_registered_model("reg-taken")
    with pytest.raises(MlflowException) as taken:
        client.rename_registered_model("reg-new", "reg-taken")
    assert _code(taken) == "RESOURCE_ALREADY_EXISTS"

    client.delete_registered_model("reg-new")
    with pytest.raises(MlflowException, match=r"Registered Model .+ not found"):
        client.get_registered_model("reg-new")
    with pytest.raises(MlflowException, match=r"Registered Model .+ not found"):
        client.rename_registered_model("reg-new", "reg-other")
    assert client.search_registered_models("name = 'reg-new'") == []
    with pytest.raises(NotFound):
        kc.get_model("reg-new")
    # the name is free again; versions start over
    client.create_registered_model("reg-new")
    assert client.create_model_version("reg-new", "runs:/run_a/model", "run_a").version == "1"


def test_delete_a_version_its_number_is_not_given_again(
    client: MlflowClient, server: Server
) -> None:
    client.create_registered_model("reg-del")
    for _ in range(3):
        client.create_model_version("reg-del", "runs:/run_d/model", "run_d")
    client.set_registered_model_alias("reg-del", "best", "1")
    client.delete_model_version("reg-del", "1")
    assert {v.version for v in client.search_model_versions("name = 'reg-del'")} == {"2", "3"}
    assert client.get_registered_model("reg-del").aliases == {}
    with pytest.raises(MlflowException, match=r"Model Version .+ not found") as gone:
        client.delete_model_version("reg-del", "1")
    assert _code(gone) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match=r"Model Version .+ not found"):
        client.update_model_version("reg-del", "1", description="x")
    with pytest.raises(MlflowException, match=r"Model Version .+ not found"):
        client.transition_model_version_stage("reg-del", "1", "Staging")
    client.delete_model_version("reg-del", "3")
    assert client.create_model_version("reg-del", "runs:/run_d/model", "run_d").version == "4"
    kc = server.keel()
    assert [v.version for v in kc.find_model_versions({"model.name": "reg-del"})] == [2, 4]
    with pytest.raises(NotFound):
        kc.get_model_version("reg-del@1")
    assert kc.get_model("reg-del").latest_version == 4


# --- stages ------------------------------------------------------------------------------------


def test_stage_transitions_latest_versions_and_update_times(
    client: MlflowClient, server: Server
) -> None:
    client.create_registered_model("reg-stages")
    for _ in range(4):
        client.create_model_version("reg-stages", "runs:/run_s/model", "run_s")
    assert client.get_model_version("reg-stages", "1").current_stage == "None"
    before = int(time.time() * 1000)
    moved = client.transition_model_version_stage("reg-stages", "1", "production")
    assert moved.current_stage == "Production"
    assert moved.last_updated_timestamp >= before > moved.creation_timestamp - 1
    assert client.get_registered_model("reg-stages").last_updated_timestamp >= before
    client.transition_model_version_stage("reg-stages", "2", "Staging")
    client.transition_model_version_stage("reg-stages", "3", "Production")

    def latest(stages: list[str] | None) -> dict[str, str]:
        found = client.get_latest_versions("reg-stages", stages)
        return {v.current_stage: v.version for v in found}

    assert latest(None) == {"Production": "3", "Staging": "2", "None": "4"}
    assert latest(["Staging", "None"]) == {"Staging": "2", "None": "4"}
    assert {v.version for v in client.get_registered_model("reg-stages").latest_versions} == {
        "2",
        "3",
        "4",
    }
    # archive_existing_versions moves the others in the stage to Archived
    client.transition_model_version_stage("reg-stages", "4", "Production", True)
    assert latest(None) == {"Production": "4", "Staging": "2", "Archived": "3"}
    assert client.get_model_version("reg-stages", "1").current_stage == "Archived"
    with pytest.raises(MlflowException, match="Invalid Model Version stage: Nope") as bad:
        client.transition_model_version_stage("reg-stages", "1", "Nope")
    assert _code(bad) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="is not an Active stage"):
        client.transition_model_version_stage("reg-stages", "1", "Archived", True)

    # keel sees the stage, as a reserved version tag MLflow does not list among the tags
    kept = server.keel().get_model_version("reg-stages@4")
    assert kept.tags["keel.mlflow.stage"] == "Production"
    assert client.get_model_version("reg-stages", "4").tags == {}

    # a description update moves the version's update time, not the model's
    model_time = client.get_registered_model("reg-stages").last_updated_timestamp
    time.sleep(0.01)
    client.update_model_version("reg-stages", "2", description="two")
    updated = client.get_model_version("reg-stages", "2")
    assert updated.description == "two" and updated.last_updated_timestamp > model_time
    assert client.get_registered_model("reg-stages").last_updated_timestamp == model_time


# --- copies and searches -----------------------------------------------------------------------


def test_copy_a_model_version(client: MlflowClient, server: Server, tmp_path: Path) -> None:
    run_id, folder = _run_with_files(client, tmp_path, "reg-copy")
    client.create_registered_model("reg-copy")
    held = client.create_model_version(
        "reg-copy", f"runs:/{run_id}/model", run_id, tags={"h": "w"}, description="d"
    )
    client.set_registered_model_alias("reg-copy", "champion", "1")
    copy = client.copy_model_version("models:/reg-copy@champion", "reg-copy-dst")
    assert (copy.name, copy.version) == ("reg-copy-dst", "1")
    got = client.get_model_version("reg-copy-dst", "1")
    assert (got.source, got.run_id, got.tags, got.description) == (
        "models:/reg-copy/1",
        run_id,
        {"h": "w"},
        "d",
    )
    assert client.get_model_version_download_uri(
        "reg-copy-dst", "1"
    ) == client.get_model_version_download_uri("reg-copy", held.version)
    # a copy of files keel holds is a keel version of the same files
    kept = server.keel().get_model_version("reg-copy-dst@1")
    assert (kept.run_id, kept.content_hash) == (run_id, hash_path(folder))

    # a copy of a version without files downloads from the original's source
    client.create_model_version("reg-copy", "s3://b/m", None)
    copy2 = client.copy_model_version("models:/reg-copy/2", "reg-copy-dst")
    assert client.get_model_version_download_uri("reg-copy-dst", copy2.version) == "s3://b/m"


def test_search_model_versions_orders_and_pages_as_mlflow(client: MlflowClient) -> None:
    names = [f"reg-search-{i}" for i in range(3)]
    for name in names:
        client.create_registered_model(name)
    made = []
    for name in [*names, *names[:2]]:
        time.sleep(0.002)
        made.append(client.create_model_version(name, "runs:/run_q/model", "run_q"))

    def pages(**kwargs: Any) -> list[tuple[str, str]]:
        found, token = [], None
        while True:
            page = client.search_model_versions(
                "name LIKE 'reg-search-%'", page_token=token, **kwargs
            )
            found += [(v.name, v.version) for v in page]
            if not page.token:
                return found
            token = page.token

    newest_first = [(v.name, v.version) for v in reversed(made)]
    assert pages() == newest_first
    assert pages(max_results=2) == newest_first
    by_name = sorted(newest_first, key=lambda nv: (nv[0], nv[1]), reverse=True)
    assert pages(order_by=["name DESC"]) == by_name
    by_version = sorted(newest_first, key=lambda nv: (-int(nv[1]), nv[0]))
    assert pages(order_by=["version_number DESC"]) == by_version
    with pytest.raises(
        MlflowException, match="Parameter 'version' must be an integer, got 'one'"
    ) as bad:
        client.get_model_version("reg-search-0", "one")
    assert _code(bad) == "INVALID_PARAMETER_VALUE"


# --- keel's own client -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "http", "mlflow"])
def test_keels_client_renames_and_deletes_models_and_versions(
    server: Server, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The same operations through keel's client on each backend: the server's store, the
    keel server's REST API (``/api/v1``), and an MLflow server (keel's MLflow backend)."""
    if backend == "embedded":
        kc = server.keel()
    elif backend == "http":
        kc = keel.Client(store=server.url, artifacts=server.artifacts, token=server.token)
    else:
        mlflow_server = request.getfixturevalue("mlflow_server")
        project = mlflow_server.new_project()
        kc = keel.Client(
            store=mlflow_server.url,
            cache_dir=tmp_path / "cache",
            project=project,
            storage_options={"root": f"keel-tests/{project}/blobs"},
        )
    name = f"keel-{backend}"
    with kc.start_run(f"keel-registry-{backend}") as run:
        for i in range(3):
            (tmp_path / f"m{i}.txt").write_text(f"weights {i}")
            kc.log_model_version(name, run, tmp_path / f"m{i}.txt", path_in_run=f"m{i}")
    renamed = kc.rename_model(name, f"{name}-2")
    assert renamed.name == f"{name}-2"
    assert kc.get_model_version(f"{name}-2@3").version == 3
    kc.delete_model_version(f"{name}-2@2")
    assert [v.version for v in kc.find_model_versions({"model.name": f"{name}-2"})] == [1, 3]
    if backend != "mlflow":  # the same model through the keel server's MLflow API
        mlflow_client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        found = mlflow_client.search_model_versions(f"name = '{name}-2'")
        assert [v.version for v in found] == ["3", "1"]
    kc.create_model(f"{name}-taken")
    with pytest.raises(Conflict):
        kc.rename_model(f"{name}-taken", f"{name}-2")
    kc.delete_model(f"{name}-2")
    with pytest.raises(NotFound):
        kc.get_model(f"{name}-2")
