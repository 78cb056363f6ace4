"""MLflow's artifact routes on a real ``keel server``: the proxy, locations, UI routes.

MLflow's client (and plain ``requests`` for wire-level checks) against keel server, in a
thread (tests/keel_server.py). What lands where is checked from keel's side too: a run's
files in keel's content-addressed store (keel.Client sees them, hashes kept), other proxied
paths as plain files under :func:`keel.server.mlflow.artifacts.proxy_root`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow==3.17.2 is in the dev extra")
requests = pytest.importorskip("requests")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

import keel  # noqa: E402
from keel.server.mlflow.artifacts import proxy_root  # noqa: E402
from keel.server.settings import ServerSettings  # noqa: E402
from mlflow_wire import QUIET, serving  # noqa: E402
from mlflow_wire import Wire as Server  # noqa: E402

pytestmark = QUIET


def _serve(root: Path, mlflow_artifact_root: str | None = None) -> Iterator[Server]:
    with serving(root, mlflow_artifact_root=mlflow_artifact_root) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose MLflow files go through its proxy (no mlflow_artifact_root)."""
    yield from _serve(tmp_path_factory.mktemp("mlflow-artifacts"))


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with MLflow's --default-artifact-root set: the client writes files itself."""
    root = tmp_path_factory.mktemp("mlflow-local")
    yield from _serve(root, (root / "mlruns").as_uri())


def _client(server: Server) -> MlflowClient:
    """MLflow's client (and its fluent API) on ``server``: the module has two servers, so
    each test names its own (the fixtures' monkeypatches restore the environment)."""
    os.environ["MLFLOW_TRACKING_TOKEN"] = server.token
    mlflow.set_tracking_uri(server.url)
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def _refused(answer: requests.Response, status: int, code: str, message: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error_code"] == code
    assert message in body["message"]


# --- the proxy: any path under its root --------------------------------------------------------


def test_plain_paths_are_files_under_the_proxy_root(server: Server) -> None:
    assert server.put("/api/2.0/mlflow-artifacts/artifacts/a.txt", data=b"0").status_code == 200
    answer = server.put("/api/2.0/mlflow-artifacts/artifacts/dir/b.txt", data=b"12")
    assert answer.status_code == 200
    root = proxy_root(server.artifacts)
    assert (root / "a.txt").read_bytes() == b"0"
    assert (root / "dir" / "b.txt").read_bytes() == b"12"
    assert server.get("/api/2.0/mlflow-artifacts/artifacts/dir/b.txt").content == b"12"
    listed = server.get("/api/2.0/mlflow-artifacts/artifacts").json()["files"]
    assert {"path": "a.txt", "is_dir": False, "file_size": 1} in listed
    assert {"path": "dir", "is_dir": True} in listed
    inner = server.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "dir"}).json()
    assert inner == {"files": [{"path": "b.txt", "is_dir": False, "file_size": 2}]}
    under_a_file = server.put("/api/2.0/mlflow-artifacts/artifacts/a.txt/c.txt", data=b"x")
    _refused(under_a_file, 400, "INVALID_PARAMETER_VALUE", "is a file, not a folder")
    # MLflow's client deletes through the same route
    assert server.delete("/api/2.0/mlflow-artifacts/artifacts/dir").status_code == 200
    assert not (root / "dir").exists()
    missing = server.get("/api/2.0/mlflow-artifacts/artifacts/dir/b.txt")
    _refused(missing, 404, "RESOURCE_DOES_NOT_EXIST", "dir/b.txt")


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.txt", "text/plain"),
        ("b.pkl", "application/octet-stream"),
        ("c.png", "image/png"),
        ("d.pdf", "application/pdf"),
        ("MLmodel", "text/plain"),
        ("mlproject", "text/plain"),
    ],
)
def test_downloads_are_attachments_typed_by_name_not_by_the_request(
    server: Server, tmp_path: Path, name: str, mime: str
) -> None:
    server.put(f"/api/2.0/mlflow-artifacts/artifacts/mime/{name}", data=b"x").raise_for_status()
    answer = server.get(f"/api/2.0/mlflow-artifacts/artifacts/mime/{name}",
                        headers={"Accept": "text/html"})  # fmt: skip
    assert answer.headers["Content-Type"] == mime
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Disposition"] == f"attachment; filename={name}"
    # a run's file through /get-artifact answers the same way
    (tmp_path / name).write_bytes(b"y")
    _client(server)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / name))
    got = server.get("/get-artifact", params={"run_id": run.info.run_id, "path": name})
    assert got.content == b"y"
    assert got.headers["Content-Type"] == mime
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"] == f"attachment; filename={name}"


def test_a_name_outside_header_tokens_is_quoted_or_encoded(server: Server) -> None:
    for name, shown in [
        ("my file.txt", 'attachment; filename="my file.txt"'),
        (
            "d\u00e9j\u00e0.txt",
            "attachment; filename=deja.txt; filename*=UTF-8''d%C3%A9j%C3%A0.txt",
        ),
    ]:
        server.put(
            f"/api/2.0/mlflow-artifacts/artifacts/names/{name}", data=b"x"
        ).raise_for_status()
        answer = server.get(f"/api/2.0/mlflow-artifacts/artifacts/names/{name}")
        assert answer.headers["Content-Disposition"] == shown


def test_run_files_still_go_into_keels_store(server: Server, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("0")
    _client(server)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "a.txt"), artifact_path="docs")
    run_id = run.info.run_id
    assert run.info.artifact_uri == f"mlflow-artifacts:/0/{run_id}/artifacts"
    files = {f.path: f for f in server.keel().list_run_artifact(run_id)}
    assert files["docs/a.txt"].sha256 == hashlib.sha256(b"0").hexdigest()
    assert not (proxy_root(server.artifacts) / "0" / run_id).exists()  # no second copy
    listed = server.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}).json()
    assert listed == {
        "root_uri": run.info.artifact_uri,
        "files": [{"path": "docs", "is_dir": True}],
    }
    # a run's file is not deleted through the proxy: keel deletes a run's records with it
    gone = server.delete(f"/api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/docs/a.txt")
    _refused(gone, 400, "INVALID_PARAMETER_VALUE", "delete the run")
    assert "docs/a.txt" in {f.path for f in server.keel().list_run_artifact(run_id)}


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "a//b", "%2e%2e/x"])
def test_hostile_proxy_paths_are_refused_and_nothing_is_written(server: Server, path: str) -> None:
    before = sorted(Path(server.artifacts).rglob("*"))
    # quoted whole: the HTTP client would otherwise resolve the dots itself
    answer = server.put("/api/2.0/mlflow-artifacts/artifacts/" + quote(path, safe=""), data=b"e")
    assert 400 <= answer.status_code < 500
    listing = server.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": path})
    assert listing.status_code == 400
    assert listing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert sorted(Path(server.artifacts).rglob("*")) == before


def test_a_link_out_of_the_proxy_root_is_not_followed(server: Server, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = proxy_root(server.artifacts)
    root.mkdir(parents=True, exist_ok=True)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    try:
        read = server.get("/api/2.0/mlflow-artifacts/artifacts/escape/secret.txt")
        _refused(read, 400, "INVALID_PARAMETER_VALUE", "Invalid path")
        write = server.put("/api/2.0/mlflow-artifacts/artifacts/escape/new.txt", data=b"x")
        assert write.status_code == 400
        assert not (outside / "new.txt").exists()
    finally:
        (root / "escape").unlink()


# --- MLflow's "Invalid path" ----------------------------------------------------------------


def test_parent_paths_are_mlflows_invalid_path_everywhere(server: Server) -> None:
    client = _client(server)
    run_id = client.create_run("0").info.run_id
    for path, params in [
        ("/api/2.0/mlflow/artifacts/list", {"run_id": run_id, "path": "../path"}),
        ("/get-artifact", {"run_id": run_id, "path": "../path"}),
        ("/model-versions/get-artifact", {"name": "m", "version": "1", "path": "../path"}),
        ("//model-versions/get-artifact", {"name": "m", "version": "1", "path": "../path"}),
    ]:
        answer = server.get(path, params=params)
        assert answer.status_code == 400, path
        assert answer.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}


# --- the UI's upload route ------------------------------------------------------------------


def test_ui_upload_checks_its_arguments_then_stores_a_run_file(server: Server) -> None:
    client = _client(server)
    run_id = client.create_run("0").info.run_id
    route = "/ajax-api/2.0/mlflow/upload-artifact"
    for params, message in [
        ({}, "Request must specify run_uuid."),
        ({"run_uuid": run_id}, "Request must specify path."),
        ({"run_uuid": run_id, "path": ""}, "Request must specify path."),
        ({"run_uuid": run_id, "path": "../test.txt"}, "Invalid path"),
        ({"run_uuid": run_id, "path": "test.txt"}, "Request must specify data."),
    ]:
        _refused(server.post(route, params=params), 400, "INVALID_PARAMETER_VALUE", message)
    assert server.keel().list_run_artifact(run_id) == []  # nothing recorded by a refusal
    done = server.post(route, params={"run_uuid": run_id, "path": "t/test.txt"}, data="hello")
    assert done.status_code == 200
    got = server.get("/get-artifact", params={"run_uuid": run_id, "path": "t/test.txt"})
    assert got.text == "hello"
    kept = {f.path: f.sha256 for f in server.keel().list_run_artifact(run_id)}
    assert kept == {"t/test.txt": hashlib.sha256(b"hello").hexdigest()}


# --- experiments' own locations ---------------------------------------------------------------


def test_a_requested_artifact_location_is_kept_and_runs_live_under_it(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(server)
    monkeypatch.chdir(tmp_path)  # the server resolves relative locations as MLflow does
    relative = client.create_experiment("loc-relative", artifact_location="my_location",
                                        tags={"k": "v"})  # fmt: skip
    exp = client.get_experiment(relative)
    assert exp.artifact_location == str(tmp_path / "my_location")
    assert exp.tags == {"k": "v"}  # the location is not shown as a tag
    given = (tmp_path / "elsewhere").as_uri()
    exp_id = client.create_experiment("loc-uri", artifact_location=given)
    assert client.get_experiment(exp_id).artifact_location == given
    assert client.get_experiment_by_name("loc-uri").artifact_location == given
    run = client.create_run(exp_id)
    assert run.info.artifact_uri == f"{given}/{run.info.run_id}/artifacts"
    assert client.get_run(run.info.run_id).info.artifact_uri == run.info.artifact_uri
    for bad, message in [
        ("runs:/abc/model", "cannot be a runs:/ URI"),
        ("s3://bucket/path#frag", "fragments or params"),
    ]:
        with pytest.raises(MlflowException, match=message) as exc:
            client.create_experiment(f"loc-bad-{len(bad)}", artifact_location=bad)
        assert exc.value.error_code == "INVALID_PARAMETER_VALUE"


def test_files_an_mlflow_client_writes_under_a_server_root_are_listed_and_served(
    local_server: Server, tmp_path: Path
) -> None:
    client = _client(local_server)
    exp_id = client.create_experiment("local-files")
    exp = client.get_experiment(exp_id)
    root = Path(local_server.store).parent / "mlruns"
    assert exp.artifact_location == f"{root.as_uri()}/{exp_id}"
    (tmp_path / "my.file").write_text("Hello")
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    client.log_artifact(run_id, str(tmp_path / "my.file"), "dir")  # written by the client
    on_disk = root / exp_id / run_id / "artifacts" / "dir" / "my.file"
    assert on_disk.read_text() == "Hello"
    listed = local_server.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    assert listed.json() == {
        "root_uri": run.info.artifact_uri,
        "files": [{"path": "dir", "is_dir": True}],
    }
    inner = local_server.get(
        "/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "dir"}
    ).json()["files"]
    assert inner == [{"path": "dir/my.file", "is_dir": False, "file_size": 5}]
    got = local_server.get("/get-artifact", params={"run_id": run_id, "path": "dir/my.file"})
    assert got.text == "Hello"
    # the Default experiment "0" lives under the root too
    assert client.get_experiment("0").artifact_location == f"{root.as_uri()}/0"


def test_a_location_outside_the_servers_roots_is_never_read_by_the_server(
    local_server: Server, tmp_path: Path
) -> None:
    client = _client(local_server)
    outside = tmp_path / "outside"
    exp_id = client.create_experiment("outside", artifact_location=outside.as_uri())
    run_id = client.create_run(exp_id).info.run_id
    secret = outside / run_id / "artifacts" / "secret.txt"
    secret.parent.mkdir(parents=True)
    secret.write_text("not the server's to serve")
    listed = local_server.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    assert listed.json()["files"] == []
    got = local_server.get("/get-artifact", params={"run_id": run_id, "path": "secret.txt"})
    assert got.status_code == 404


# --- logged models and model versions --------------------------------------------------------


def test_a_logged_models_files_are_listed_and_served(server: Server) -> None:
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input

    _client(server)
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo())
    base = f"/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts"
    listed = server.get(f"/api/2.0/mlflow/logged-models/{info.model_id}/artifacts/directories")
    assert listed.status_code == 200
    body = listed.json()
    assert "MLmodel" in {f["path"] for f in body["files"]}
    assert body["root_uri"].endswith(f"/models/{info.model_id}/artifacts")
    got = server.get(f"{base}/files", params={"artifact_file_path": "MLmodel"})
    assert got.status_code == 200
    assert info.model_id in got.text
    assert got.headers["Content-Type"] == "text/plain"
    missing = server.get(f"{base}/files")
    _refused(missing, 400, "BAD_REQUEST", "artifact_file_path")


def test_a_model_versions_file_is_served(server: Server, tmp_path: Path) -> None:
    client = _client(server)
    (tmp_path / "weights.bin").write_bytes(b"w" * 10)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "weights.bin"), artifact_path="model")
    client.create_registered_model("served-version")
    client.create_model_version(
        "served-version", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    params = {"name": "served-version", "version": "1", "path": "weights.bin"}
    for route in ("/model-versions/get-artifact", "//model-versions/get-artifact"):
        got = server.get(route, params=params)
        assert got.status_code == 200, got.text
        assert got.content == b"w" * 10
        assert got.headers["Content-Disposition"] == "attachment; filename=weights.bin"
    gone = server.get("/model-versions/get-artifact", params={**params, "path": "nope.bin"})
    assert gone.status_code == 404


def test_proxy_root_is_a_folder_of_a_local_store_only() -> None:
    assert proxy_root("/data/artifacts") == Path("/data/artifacts/mlflow-artifacts")
    assert proxy_root("file:///data/artifacts") == Path("/data/artifacts/mlflow-artifacts")
    with pytest.raises(keel.errors.InvalidInput, match="not a local artifact store"):
        proxy_root("s3://bucket/prefix")


def test_on_an_fsspec_store_plain_paths_are_kept_under_the_same_prefix(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    from fastapi.testclient import TestClient

    from keel.server.app import create_app
    from keel_server import admin_token

    url = f"memory://proxy-{tmp_path.name}/prefix"
    settings = ServerSettings(store=str(tmp_path / "store"), artifacts=url)
    headers = {"Authorization": f"Bearer {admin_token(settings.store)}"}
    with TestClient(create_app(settings)) as app:
        route = "/api/2.0/mlflow-artifacts/artifacts"
        assert app.put(f"{route}/dir/b.txt", content=b"12", headers=headers).status_code == 200
        memory = fsspec.filesystem("memory")
        assert memory.cat(f"/proxy-{tmp_path.name}/prefix/mlflow-artifacts/dir/b.txt") == b"12"
        listed = app.get(route, params={"path": "dir"}, headers=headers).json()
        assert listed == {"files": [{"path": "b.txt", "is_dir": False, "file_size": 2}]}
        got = app.get(f"{route}/dir/b.txt", headers=headers)
        assert (got.content, got.headers["Content-Type"]) == (b"12", "text/plain")
        assert app.delete(f"{route}/dir", headers=headers).status_code == 200
        assert app.get(route, headers=headers).json() == {"files": []}


def test_the_client_downloads_a_whole_proxied_run_as_dot(server: Server, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "my.file").write_text("Hello, World!")
    client = _client(server)
    run_id = client.create_run("0").info.run_id
    client.log_artifacts(run_id, str(tmp_path / "src"), "dir")
    client.log_artifact(run_id, str(tmp_path / "src" / "my.file"))
    got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=".",
                                                   dst_path=str(tmp_path / "d")))  # fmt: skip
    assert (got / "my.file").read_text() == "Hello, World!"
    assert (got / "dir" / "my.file").read_text() == "Hello, World!"
