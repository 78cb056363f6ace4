"""The platform server's REST API (``/api/v1``): roles, refusals, blobs, finds, accounts.

Most tests call the ASGI app in process (``TestClient``); the last ones start a real server
to check what the HTTP stores make of its answers. The tracking suite (tests/tracking) runs
every client verb against a real server too (its ``http`` backend).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from keel.errors import AccessDenied, Conflict, InvalidInput, NotFound, StoreUnavailable
from keel.server.app import create_app
from keel.server.auth import Accounts
from keel.store.accounts import AccountStore
from keel_server import _password_hash, running_server

if TYPE_CHECKING:
    from server.conftest import ServerBackend

API = "/api/v1"
ROLES = ("viewer", "editor", "admin")
#: writes any logged-in user may make: managing their own tokens


@dataclass
class Api:
    """The app in process, and a bearer token per role (users named after their role)."""

    http: TestClient
    tokens: dict[str, str]
    accounts: Accounts

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(self, role: str | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**kwargs.pop("headers", {}), **(self.auth(role) if role else {})}
        return self.http.request(method, API + path, headers=headers, **kwargs)


def _make_api(tmp_path: Path, backend: ServerBackend, **settings: Any) -> Iterator[Api]:
    made = backend.settings(
        store=str(tmp_path / "store"), artifacts=str(tmp_path / "artifacts"), **settings
    )
    accounts = Accounts(AccountStore(made.store))
    tokens = {}
    for role in ROLES:
        accounts.store.add_user(role, _password_hash(), role)
        tokens[role] = accounts.create_token(role, "tests")[1]
    app = create_app(made)
    with TestClient(app) as http:
        yield Api(http, tokens, accounts)
    app.state.client.close()


@pytest.fixture
def api(tmp_path: Path, server_backend: ServerBackend) -> Iterator[Api]:
    yield from _make_api(tmp_path, server_backend)


@pytest.fixture
def open_api(tmp_path: Path, server_backend: ServerBackend) -> Iterator[Api]:
    """A server that lets anonymous callers read."""
    yield from _make_api(tmp_path, server_backend, anonymous_read=True)


def _experiment(api: Api, name: str = "exp") -> str:
    resp = api.call("editor", "POST", "/experiments", json={"project": "p", "name": name})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _run(api: Api, exp_id: str, name: str, **batch: Any) -> str:
    resp = api.call("editor", "POST", "/runs", json={"experiment_id": exp_id, "name": name})
    assert resp.status_code == 201, resp.text
    run_id = str(resp.json()["id"])
    if batch:
        done = api.call("editor", "POST", f"/runs/{run_id}/log-batch", json=batch)
        assert done.status_code == 204, done.text
    return run_id


# --- who may do what -------------------------------------------------------------------------


def test_each_role_may_do_what_it_should(api: Api) -> None:
    body = {"project": "p", "name": "by-viewer"}
    refused = api.call("viewer", "POST", "/experiments", json=body)
    assert refused.status_code == 403
    assert refused.json() == {
        "message": "'viewer' may not do this: it needs the editor role (viewer now)"
    }
    exp_id = _experiment(api)
    for role in ROLES:
        assert api.call(role, "GET", f"/experiments/{exp_id}").json()["name"] == "exp"
        assert api.call(role, "GET", "/experiments", params={"project": "p"}).status_code == 200
        assert api.call(role, "GET", "/me").json() == {"name": role, "role": role}
    assert (
        api.call("viewer", "PATCH", f"/experiments/{exp_id}", json={"tags": {}}).status_code == 403
    )
    tagged = api.call("editor", "PATCH", f"/experiments/{exp_id}", json={"tags": {"a": 1}})
    assert tagged.json()["tags"] == {"a": 1}
    for role in ("viewer", "editor"):
        assert api.call(role, "GET", "/users").status_code == 403
        assert api.call(role, "GET", "/gc/referenced-blobs").status_code == 403
        assert api.call(role, "POST", "/gc/purge-deleted-runs").status_code == 403
    assert [u["name"] for u in api.call("admin", "GET", "/users").json()] == sorted(ROLES)
    assert api.call("admin", "POST", "/gc/purge-deleted-runs").json() == {"purged": [], "kept": []}


def test_no_credentials_bad_scheme_and_unknown_tokens_are_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer keel_nope"}):
        resp = api.http.get(f"{API}/experiments", headers=headers)
        assert resp.status_code == 401, headers
        assert set(resp.json()) == {"message"} and resp.json()["message"]


def test_anonymous_reads_when_allowed_but_never_writes(open_api: Api) -> None:
    exp_id = _experiment(open_api)
    assert open_api.call(None, "GET", f"/experiments/{exp_id}").status_code == 200
    assert open_api.call(None, "GET", "/me").json() == {"name": "anonymous", "role": "viewer"}
    refused = open_api.call(None, "POST", "/experiments", json={"project": "p", "name": "x"})
    assert refused.status_code == 403
    assert "anonymous callers may not do this" in refused.json()["message"]
    assert open_api.call(None, "POST", "/me/tokens", json={"name": "t"}).status_code == 401
    assert open_api.call(None, "GET", "/users").status_code == 403


def test_own_tokens_work_until_revoked(api: Api) -> None:
    made = api.call("viewer", "POST", "/me/tokens", json={"name": "laptop"})
    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret.startswith("keel_") and made.json()["token"]["user"] == "viewer"
    mine = {"Authorization": f"Bearer {secret}"}
    assert api.http.get(f"{API}/me", headers=mine).json()["name"] == "viewer"
    listed = api.call("viewer", "GET", "/me/tokens").json()
    assert sorted(t["name"] for t in listed) == ["laptop", "tests"]
    assert secret not in json.dumps(listed)
    revoked = api.call("viewer", "DELETE", "/me/tokens/laptop")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = api.http.get(f"{API}/me", headers=mine)
    assert after.status_code == 401 and "revoked" in after.json()["message"]


def test_admin_manages_users_and_their_tokens(api: Api) -> None:
    added = api.call(
        "admin", "POST", "/users", json={"name": "ann", "password": "long enough", "role": "viewer"}
    )
    assert added.status_code == 201 and added.json()["role"] == "viewer"
    assert "password" not in added.text
    short = api.call("admin", "POST", "/users", json={"name": "bob", "password": "x"})
    assert short.status_code == 422 and "at least 8" in short.json()["message"]
    assert (
        api.call(
            "editor", "POST", "/users", json={"name": "eve", "password": "12345678"}
        ).status_code
        == 403
    )
    promoted = api.call("admin", "PATCH", "/users/ann", json={"role": "editor"})
    assert promoted.json()["role"] == "editor"
    made = api.call("admin", "POST", "/tokens", json={"user": "ann", "name": "ci"})
    ann = {"Authorization": f"Bearer {made.json()['secret']}"}
    assert api.http.get(f"{API}/me", headers=ann).json() == {"name": "ann", "role": "editor"}
    assert [
        t["name"] for t in api.call("admin", "GET", "/tokens", params={"user": "ann"}).json()
    ] == ["ci"]
    assert api.call("admin", "DELETE", "/tokens/ann/ci").json()["revoked_at"] is not None
    assert api.http.get(f"{API}/me", headers=ann).status_code == 401
    last_admin = api.call("admin", "PATCH", "/users/admin", json={"role": "viewer"})
    assert last_admin.status_code == 409 and "last admin" in last_admin.json()["message"]
    assert api.call("admin", "DELETE", "/users/ann").status_code == 204
    assert api.call("admin", "DELETE", "/users/ann").status_code == 404


# --- refusals --------------------------------------------------------------------------------


def test_refusals_are_one_line_json_messages(api: Api) -> None:
    missing = api.call("viewer", "GET", f"/runs/{'0' * 32}")
    assert missing.status_code == 404
    assert missing.json() == {"message": f"no run with id {'0' * 32!r}"}
    bad_id = api.call("viewer", "GET", "/runs/nope")
    assert bad_id.status_code == 422 and "32 lowercase hex" in bad_id.json()["message"]
    _experiment(api, "dup")
    dup = api.call("editor", "POST", "/experiments", json={"project": "p", "name": "dup"})
    assert dup.status_code == 409 and "already exists" in dup.json()["message"]
    typo = api.call("editor", "POST", "/experiments", json={"project": "p", "nmae": "x"})
    assert typo.status_code == 422 and typo.json()["message"].startswith("invalid request:")
    not_json = api.call("viewer", "GET", "/runs", params={"query": "{oops"})
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["message"]
    unknown = api.call("viewer", "GET", "/runs", params={"query": '{"colour": "red"}'})
    assert (
        unknown.status_code == 422 and "unknown query field 'colour'" in unknown.json()["message"]
    )
    for resp in (missing, bad_id, dup, typo, not_json, unknown):
        assert "\n" not in resp.json()["message"]


def test_params_are_write_once_over_the_api(api: Api) -> None:
    run_id = _run(api, _experiment(api), "r", params={"lr": 0.1})
    again = api.call("editor", "POST", f"/runs/{run_id}/log-batch", json={"params": {"lr": 0.2}})
    assert again.status_code == 409 and "write-once" in again.json()["message"]


# --- finds -----------------------------------------------------------------------------------


def test_find_runs_with_a_mongo_style_query(api: Api) -> None:
    exp_id = _experiment(api)
    rows = {"a": (0.91, "adam"), "b": (0.85, "sgd"), "c": (0.97, "adam"), "d": (math.nan, "adam")}
    for name, (acc, opt) in rows.items():
        metrics = [{"key": "acc", "value": "NaN" if math.isnan(acc) else acc, "step": 0}]
        _run(api, exp_id, name, params={"opt": opt}, metrics=metrics, tags={"team": "x"})
    query = {"params.opt": "adam", "metrics.acc": {"$gt": 0.9}, "tags.team": {"$in": ["x"]}}
    found = api.call(
        "viewer",
        "GET",
        "/runs",
        params={"project": "p", "query": json.dumps(query), "sort": '[["metrics.acc", -1]]'},
    )
    assert found.status_code == 200, found.text
    assert [r["name"] for r in found.json()] == ["c", "a"]
    page = api.call(
        "viewer", "GET", "/runs", params={"sort": '[["name", 1]]', "limit": 2, "offset": 1}
    )
    assert [r["name"] for r in page.json()] == ["b", "c"]
    regex = api.call("viewer", "GET", "/runs", params={"query": '{"name": {"$regex": "^[ab]$"}}'})
    assert sorted(r["name"] for r in regex.json()) == ["a", "b"]
    # NaN is not JSON: a metric that is NaN travels as the string "NaN"
    nan_run = next(r for r in api.call("viewer", "GET", "/runs").json() if r["name"] == "d")
    assert nan_run["metrics"] == {"acc": "NaN"}
    history = api.call("viewer", "GET", f"/runs/{nan_run['id']}/metrics/acc").json()
    assert [p["value"] for p in history] == ["NaN"]


def test_a_metric_history_keeps_order_words_and_every_field(api: Api) -> None:
    exp_id = _experiment(api)
    points = [
        {"key": "loss", "value": 0.5, "step": 2, "timestamp": 20},
        {"key": "loss", "value": "Infinity", "step": 0, "timestamp": 5},
        {"key": "loss", "value": 3, "step": 1, "timestamp": 9},
        {"key": "loss", "value": "NaN", "step": 1, "timestamp": 7},
        {"key": "loss", "value": "-Infinity", "step": 2, "timestamp": 10},
    ]
    run_id = _run(api, exp_id, "h", metrics=points)
    history = api.call("viewer", "GET", f"/runs/{run_id}/metrics/loss")
    assert history.status_code == 200 and history.headers["content-type"] == "application/json"
    # by step, then time
    assert history.json() == [
        {"key": "loss", "value": "Infinity", "step": 0, "timestamp": 5},
        {"key": "loss", "value": "NaN", "step": 1, "timestamp": 7},
        {"key": "loss", "value": 3.0, "step": 1, "timestamp": 9},
        {"key": "loss", "value": "-Infinity", "step": 2, "timestamp": 10},
        {"key": "loss", "value": 0.5, "step": 2, "timestamp": 20},
    ]
    assert api.call("viewer", "GET", f"/runs/{run_id}/metrics/other").json() == []
    missing = api.call("viewer", "GET", f"/runs/{'0' * 32}/metrics/loss")
    assert missing.status_code == 404
    assert missing.json() == {"message": f"no run with id {'0' * 32!r}"}


# --- blobs -----------------------------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, str]:
    """A 20 MiB file of random bytes and its sha256."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as out:
        for _ in range(20):
            out.write(os.urandom(1 << 20))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_blob_upload_and_download_stream_and_are_checked(
    api: Api, big_file: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha = big_file
    assert api.call("viewer", "GET", f"/blobs/{sha}/info").status_code == 404
    assert api.call("editor", "POST", f"/blobs/{sha}/reuse").status_code == 404

    def chunks() -> Iterator[bytes]:  # a body the client cannot know the length of
        with open(path, "rb") as fh:
            while data := fh.read(1 << 18):
                yield data

    wrong = api.call("editor", "PUT", f"/blobs/{'0' * 64}", content=chunks())
    assert wrong.status_code == 422 and f"hash to {sha}" in wrong.json()["message"]
    assert api.call("viewer", "PUT", f"/blobs/{sha}", content=b"x").status_code == 403
    stored = api.call("editor", "PUT", f"/blobs/{sha}", content=chunks())
    assert stored.status_code == 201, stored.text
    assert stored.json() == {"sha256": sha, "size": 20 << 20, "uploaded": True}
    again = api.call("editor", "PUT", f"/blobs/{sha}", content=chunks())
    assert again.status_code == 200 and again.json()["uploaded"] is False
    assert api.call("editor", "POST", f"/blobs/{sha}/reuse").json()["uploaded"] is False
    info = api.call("viewer", "GET", f"/blobs/{sha}/info").json()
    assert info["size"] == 20 << 20 and info["modified"] > 0

    digest, size = hashlib.sha256(), 0
    with api.http.stream("GET", f"{API}/blobs/{sha}", headers=api.auth("viewer")) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-length"] == str(20 << 20)
        assert resp.headers["etag"] == f'"{sha}"'
        for piece in resp.iter_bytes():
            digest.update(piece)
            size += len(piece)
    assert (digest.hexdigest(), size) == (sha, 20 << 20)
    leftovers = [p for p in (tmp_path / "artifacts").rglob("*.part")]
    assert leftovers == [], "uploads leave no temporary files behind"
    assert list(api.http.app.state.client.artifact_store.iter_partials()) == []
    assert api.call("viewer", "GET", f"/blobs/{'1' * 64}").status_code == 404
    assert api.call("viewer", "GET", "/blobs/not-a-hash").status_code == 422
    assert api.call("editor", "GET", "/blobs").status_code == 403
    assert api.call("admin", "GET", "/blobs").json() == [sha]
    assert api.call("editor", "DELETE", f"/blobs/{sha}").status_code == 403
    assert api.call("admin", "DELETE", f"/blobs/{sha}").status_code == 204
    assert api.call("viewer", "GET", f"/blobs/{sha}/info").status_code == 404


# --- names with '/' --------------------------------------------------------------------------


def test_model_and_dataset_names_may_hold_slashes(api: Api) -> None:
    run_id = _run(api, _experiment(api), "r", metrics=[{"key": "acc", "value": 0.9}])
    name = "team a/./clf"
    body = {
        "project": "p",
        "model": name,
        "run_id": run_id,
        "path_in_run": "m",
        "content_hash": "h1",
        "label": "1.0.0",
    }
    made = api.call("editor", "POST", "/model-versions", json=body)
    assert made.status_code == 201 and made.json()["created"] is True
    assert api.call("editor", "POST", "/model-versions", json=body).json()["created"] is False
    quoted = "team%20a/%2E/clf"
    model = api.call("viewer", "GET", f"/models/{quoted}", params={"project": "p"})
    assert model.status_code == 200, model.text
    assert model.json()["name"] == name and model.json()["latest_version"] == 1
    alias = api.call(
        "editor",
        "PUT",
        f"/models/{quoted}/aliases/production",
        params={"project": "p"},
        json={"version": 1},
    )
    assert alias.status_code == 204
    for ref in ("1", "latest", "production", "1.0.0"):
        got = api.call("viewer", "GET", f"/model-versions/{quoted}/{ref}", params={"project": "p"})
        assert got.json()["version"] == 1, ref
    assert got.json()["metrics"] == {"acc": 0.9} and got.json()["aliases"] == ["production"]
    dataset = {
        "project": "p",
        "name": "raw/iris",
        "content_hash": "d1",
        "files": [],
        "run_id": run_id,
    }
    assert api.call("editor", "POST", "/datasets", json=dataset).status_code == 201
    found = api.call("viewer", "GET", "/dataset-versions/raw/iris/latest", params={"project": "p"})
    assert found.json()["name"] == "raw/iris"
    lineage = api.call("viewer", "GET", f"/datasets/{found.json()['id']}/runs").json()
    assert lineage == [{"run_id": run_id, "role": "output"}]


# --- the HTTP stores against a real server ---------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, server_backend: ServerBackend) -> Iterator[Any]:
    settings = server_backend.settings(
        store=str(tmp_path / "server"), artifacts=str(tmp_path / "artifacts")
    )
    with running_server(settings) as running:
        yield running


def test_http_artifact_store_streams_20_mib_both_ways(
    server: Any, big_file: tuple[Path, str], tmp_path: Path
) -> None:
    from keel.artifacts.http import HttpArtifactStore

    path, sha = big_file
    store = HttpArtifactStore(server.url, token=server.token)
    info = store.put_file(path)
    assert (info.sha256, info.size, info.uploaded) == (sha, 20 << 20, True)
    assert store.put_file(path, sha256=sha).uploaded is False, "a stored blob is not sent again"
    assert store.exists(sha) and store.size(sha) == 20 << 20
    copy = store.get_file(sha, tmp_path / "copy.bin")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha
    with store.open(sha) as fh:
        assert fh.read(10) == path.read_bytes()[:10]
    assert store.put_bytes(b"hello").sha256 == hashlib.sha256(b"hello").hexdigest()
    assert sorted(store.iter_blobs()) == sorted([sha, hashlib.sha256(b"hello").hexdigest()])
    store.close()


def test_http_store_maps_refusals_to_keel_errors(server: Any, tmp_path: Path) -> None:
    from keel.artifacts.http import HttpArtifactStore
    from keel.store.http import HttpStore

    admin = HttpStore(server.url, token=server.token)
    exp = admin.create_experiment("p", "e")
    with pytest.raises(Conflict, match="already exists"):
        admin.create_experiment("p", "e")
    with pytest.raises(NotFound, match="no model named 'm'"):
        admin.get_model("p", "m")
    with pytest.raises(InvalidInput, match="unknown query field"):
        admin.find_runs("p", {"colour": "red"})

    anonymous = HttpStore(server.url, token="")
    with pytest.raises(AccessDenied, match="keel tokens create") as info:
        anonymous.get_experiment(exp.id)
    assert "KEEL_TOKEN" in str(info.value)

    accounts = Accounts(AccountStore(server.store))
    accounts.store.add_user("vic", _password_hash(), "viewer")
    _token, secret = accounts.create_token("vic", "t")
    viewer = HttpStore(server.url, token=secret)
    assert viewer.get_experiment(exp.id).name == "e"
    with pytest.raises(AccessDenied, match="needs the editor role"):
        viewer.create_experiment("p", "other")
    blob = tmp_path / "b.txt"
    blob.write_text("b")
    with pytest.raises(AccessDenied, match="editor role"):
        HttpArtifactStore(server.url, token=secret).put_file(blob)
    accounts.store.revoke_token("vic", "t")
    with pytest.raises(AccessDenied, match="revoked"):
        viewer.get_experiment(exp.id)


def test_an_unreachable_server_is_store_unavailable_without_the_token(tmp_path: Path) -> None:
    import socket

    from keel.store.http import HttpStore

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "keel_" + "s" * 43
    store = HttpStore(f"http://user:{secret}@127.0.0.1:{port}", token=secret)
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}") as info:
        store.get_or_create_project("p")
    assert secret not in str(info.value) and secret not in repr(store)
