"""Hostile paths are refused on every surface that turns a name into a file, and nothing is
written outside the folder meant for it.

One table of hostile paths (:data:`HOSTILE`: ``..``, absolute and Windows paths, NUL, URL
escapes, fullwidth and look-alike Unicode, a right-to-left override, ``~``, empty, ``.``)
is tried on each surface (:data:`SURFACES`): the tracking client's artifact paths (log,
dumper callbacks, model versions, list, get, place, export), the files of a logged folder,
the artifact cache and the local artifact store, the REST API's artifact routes, the
MLflow-compatible artifact routes, the web UI's download route, pipeline and input-file
uploads (UI and API) and their form fields, and the file names a remote keel server (or a
tampered offline cache) lists back to a client. Each must refuse with
:class:`~keel.errors.InvalidInput` (or a 4xx) and leave every file of the sandbox, of the
test's working folder and of the home folder as it was (:func:`untouched`).

Symbolic links get their own tests: a logged folder holding a link that leads outside is
refused (a link inside is stored as its file's content), the cache and exports do not
write through a link in their target, and a place/export target holding a NUL or an
invisible character is refused (any other target is the caller's own path, like ``cp``'s).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from keel import Client
from keel.artifacts.cache import ArtifactCache
from keel.artifacts.local import LocalArtifactStore
from keel.errors import ArtifactError, InvalidInput
from keel.hashing import hash_file
from keel.paths import check_relative_path, unsafe_reason
from keel.server.app import create_app
from keel.server.settings import ServerSettings
from keel.tracking.client import check_artifact_path
from keel_server import running_server

PASSWORD = "correct-horse"

#: (id, hostile path): every surface is tried with each
HOSTILE: list[tuple[str, str]] = [
    ("dotdot", "../x"),
    ("inner-dotdot", "a/../../x"),
    ("absolute", "/etc/passwd"),
    ("drive", "C:\\x"),
    ("unc", "\\\\server\\x"),
    ("backslash-dotdot", "a\\..\\..\\x"),
    ("nul", "a\x00b"),
    ("percent", "%2e%2e/x"),
    ("fullwidth-dots", "\uff0e\uff0e/x"),
    ("fullwidth-all", "\uff0e\uff0e\uff0fx"),
    ("division-slash", "..\u2215x"),
    ("rtl-override", "evil\u202etxt.exe"),
    ("two-dot-leader", "\u2025/x"),
    ("fullwidth-drive", "\uff23:/x"),
    ("home", "~/x"),
    ("empty", ""),
    ("dot", "."),
]
#: where an empty path is not hostile: it means "the whole run" or "the default name"
EMPTY_MEANS_DEFAULT = {"log", "model-version", "list", "get", "place", "export", "api-list"}
#: a file name the local filesystem can hold (for a folder that is logged as it is)
ON_DISK = [(i, h) for i, h in HOSTILE if h and "/" not in h and "\x00" not in h and h != "."]
ON_DISK += [("dots-only", "..."), ("percent-name", "%2e%2e")]
SQLITE_FILE = re.compile(r"\.db(-wal|-shm|-journal)?$")
#: what reading a run may write: the metadata cache's JSON copies of the records it read
METADATA_COPY = re.compile(r"/(cache|remote-cache)/meta/(exps|runs|models)/[^/]+\.json$")


# --------------------------------------------------------------------------- the sandbox


@dataclass
class Sandbox:
    """Everything the surfaces may touch: stores, caches, work folders, export targets and
    a folder of files that must never change (``outside``)."""

    root: Path
    client: Client
    run_id: str
    version: str
    source: Path
    app_client: TestClient  # editor's token (REST), editor's session (UI)
    ui_viewer: TestClient
    ui_editor: TestClient
    server_run: str
    remote: Client
    remote_db: Path
    remote_run: str
    store: LocalArtifactStore
    cache: ArtifactCache
    blob: str


def snapshot(*roots: Path) -> dict[str, tuple[int, int, bool]]:
    """Every file and link under ``roots`` with its size, time and kind (SQLite files, which
    change with any read, and the metadata cache's copies of records read, left out)."""
    found: dict[str, tuple[int, int, bool]] = {}
    for root in roots:
        if not root.exists():
            continue
        for folder, dirs, files in os.walk(root):
            links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            for name in files + links:
                full = os.path.join(folder, name)
                if SQLITE_FILE.search(name) or METADATA_COPY.search(full):
                    continue
                st = os.lstat(full)
                found[full] = (st.st_size, st.st_mtime_ns, os.path.islink(full))
    return found


@contextlib.contextmanager
def untouched(sandbox: Sandbox, cwd: Path, edited: Path | None = None) -> Iterator[None]:
    """Assert that no file changes in the sandbox, the working folder or the home folder,
    and that ``/etc/passwd`` is as it was (``edited``: a file the test changes itself)."""
    roots = (sandbox.root, cwd)
    before = snapshot(*roots)
    if edited is not None:
        before.pop(str(edited), None)
    home_x = Path.home() / "x"
    home_before = home_x.exists()
    passwd = os.stat("/etc/passwd").st_mtime_ns if os.path.exists("/etc/passwd") else None
    yield
    after = snapshot(*roots)
    if edited is not None:
        after.pop(str(edited), None)
    added = sorted(set(after) - set(before))
    changed = sorted(p for p in set(after) & set(before) if after[p] != before[p])
    assert not added and not changed, f"written: {added}, changed: {changed}"
    assert home_x.exists() == home_before
    if passwd is not None:
        assert os.stat("/etc/passwd").st_mtime_ns == passwd


def _login(app: Any, name: str) -> TestClient:
    tc = TestClient(app)
    tc.__enter__()
    token = csrf_of(tc.get("/login").text)
    answer = tc.post(
        "/login",
        data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return tc


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    # deep, so that '../..' from any folder keel writes to stays in the sandbox and is seen
    root = tmp_path_factory.mktemp("traversal")
    inside = root / "a" / "b" / "c" / "inside"
    outside = root / "outside"
    outside.mkdir(parents=True)
    (outside / "sentinel.txt").write_text("never changes")
    source = inside / "model.txt"
    source.parent.mkdir(parents=True)
    source.write_text("weights")

    client = Client(
        store=str(inside / "store"),
        artifacts=str(inside / "artifacts"),
        cache_dir=inside / "cache",
        project="traversal",
    )
    with client.start_run("exp") as run:
        run.log_artifact(source, "model/model.txt")
        version = client.log_model_version("m", run, source)
    client.export_run_artifact(run.id, inside / "bundle")  # for the offline-listing surface

    settings = ServerSettings(store=str(inside / "server-store"), work_dir=inside / "work")
    app = create_app(settings)
    accounts = app.state.accounts
    accounts.add_user("eddie", PASSWORD, "editor")
    accounts.add_user("vera", PASSWORD, "viewer")
    token = accounts.create_token("eddie", "traversal")[1]
    with app.state.client.start_run("exp") as server_run:
        server_run.log_artifact(source, "model/model.txt")
    api = TestClient(app)
    api.__enter__()
    api.headers["Authorization"] = f"Bearer {token}"
    ui_viewer, ui_editor = _login(app, "vera"), _login(app, "eddie")
    # the pipeline pages and an input file for the form fields
    token_form = csrf_of(ui_editor.get("/pipelines").text)
    control = b"def train(inpt, params=None):\n    pass\n\ndef run_pipeline(input, model, args, params=None):\n    return {}\n"
    made = ui_editor.post(
        "/pipelines/upload",
        files=[("control", ("good_pipeline.py", control))],
        data={"csrf_token": token_form},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    assert ui_editor.get("/pipelines/good_pipeline").status_code == 200  # params read, cached

    remote_store = inside / "remote-store"
    with running_server(ServerSettings(store=str(remote_store))) as server:
        remote = Client(server.url, token=server.token, cache_dir=inside / "remote-cache")
        with remote.start_run("exp") as remote_run:
            remote_run.log_artifact(source, "model.txt")
        store = LocalArtifactStore(inside / "artifacts")
        yield Sandbox(
            root=root,
            client=client,
            run_id=run.id,
            version=f"m@{version.version}",
            source=source,
            app_client=api,
            ui_viewer=ui_viewer,
            ui_editor=ui_editor,
            server_run=server_run.id,
            remote=remote,
            remote_db=remote_store / "keel.db",
            remote_run=remote_run.id,
            store=store,
            cache=ArtifactCache(inside / "cache"),
            blob=hash_file(source),
        )
        remote.close()
    for tc in (api, ui_viewer, ui_editor):
        tc.__exit__(None, None, None)
    app.state.client.close()
    client.close()


# --------------------------------------------------------------------------- the surfaces


def _refused(call: Callable[[], Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message  # one line
    assert "\u202e" not in message and "\x00" not in message  # shown escaped


def _refused_http(answer: Any) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert answer.status_code != 401 and answer.status_code != 403, answer.text[:300]


def _in_url(path: str) -> str:
    """The hostile path in a URL: percent-encoded whole (a literal ``../`` would be removed
    by the HTTP client before it is sent), except the ``%2e%2e`` entry, sent as it is: the
    server decodes it to ``..``."""
    return path if path.startswith("%2e") else quote(path, safe="")


def s_log(sb: Sandbox, h: str) -> None:
    _refused(lambda: sb.client.log_run_artifact(sb.run_id, sb.source, h))


def s_dumper(sb: Sandbox, h: str) -> None:
    called: list[Path] = []
    _refused(lambda: sb.client.log_run_artifact(sb.run_id, called.append, h))
    assert called == []  # refused before the callback could write anything


def s_model_version(sb: Sandbox, h: str) -> None:
    _refused(lambda: sb.client.log_model_version("m2", sb.run_id, sb.source, path_in_run=h))


def s_list(sb: Sandbox, h: str) -> None:
    _refused(lambda: sb.client.list_run_artifact(sb.run_id, h))


def s_get(sb: Sandbox, h: str) -> None:
    _refused(lambda: sb.client.get_run_artifact(sb.run_id, h))


def s_place(sb: Sandbox, h: str) -> None:
    target = sb.root / "a" / "b" / "c" / "inside" / "placed"
    _refused(lambda: sb.client.place_run_artifact(sb.run_id, target, h, link=False))


def s_export(sb: Sandbox, h: str) -> None:
    target = sb.root / "a" / "b" / "c" / "inside" / "exported"
    _refused(lambda: sb.client.export_run_artifact(sb.run_id, target, h))


def s_cache(sb: Sandbox, h: str) -> None:
    target = sb.root / "a" / "b" / "c" / "inside" / "tree"
    _refused(lambda: sb.cache.materialize(sb.store, {h: sb.blob}, target))


def s_blob_store(sb: Sandbox, h: str) -> None:
    dest = sb.root / "a" / "b" / "c" / "inside" / "blob-copy"
    _refused(lambda: sb.store.put_file(sb.source, sha256=h))
    _refused(lambda: sb.store.get_file(h, dest))
    _refused(lambda: sb.store.open(h))
    _refused(lambda: sb.store.delete(h))


def s_api_record(sb: Sandbox, h: str) -> None:
    files = [{"path": h, "sha256": sb.blob, "size": 7}]
    answer = sb.app_client.post(f"/api/v1/artifacts/run/{sb.server_run}", json={"files": files})
    _refused_http(answer)
    assert "message" in answer.json()
    listed = sb.app_client.get(f"/api/v1/artifacts/run/{sb.server_run}").json()
    assert [f["path"] for f in listed] == ["model/model.txt"]


def s_api_list(sb: Sandbox, h: str) -> None:
    answer = sb.app_client.get(f"/api/v1/artifacts/run/{sb.server_run}", params={"prefix": h})
    _refused_http(answer)


def s_mlflow_upload(sb: Sandbox, h: str) -> None:
    url = f"/api/2.0/mlflow-artifacts/artifacts/0/{sb.server_run}/artifacts/{_in_url(h)}"
    answer = sb.app_client.put(url, content=b"evil")
    _refused_http(answer)
    assert answer.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    listed = sb.app_client.get(f"/api/v1/artifacts/run/{sb.server_run}").json()
    assert [f["path"] for f in listed] == ["model/model.txt"]


def s_mlflow_download(sb: Sandbox, h: str) -> None:
    url = f"/api/2.0/mlflow-artifacts/artifacts/0/{sb.server_run}/artifacts/{_in_url(h)}"
    _refused_http(sb.app_client.get(url))
    listing = sb.app_client.get(
        "/api/2.0/mlflow/artifacts/list", params={"run_id": sb.server_run, "path": h or "."}
    )
    _refused_http(listing)


def s_mlflow_proxy_path(sb: Sandbox, h: str) -> None:
    """The proxy's paths outside any run: plain files under its root (MLflow's
    --artifacts-destination), written and read by path."""
    url = f"/api/2.0/mlflow-artifacts/artifacts/{_in_url(h)}"
    answer = sb.app_client.put(url, content=b"evil")
    _refused_http(answer)
    # "." is dropped by the HTTP client: a PUT to the root, which no route takes
    assert answer.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "ENDPOINT_NOT_FOUND")
    if h == ".":  # a GET of the root lists it, as MLflow's proxy does
        assert set(sb.app_client.get(url).json()) <= {"files"}
    else:
        _refused_http(sb.app_client.get(url))
    _refused_http(sb.app_client.delete(url))


def s_mlflow_get_artifact(sb: Sandbox, h: str) -> None:
    """MLflow's UI download route: a run's file by ``path`` query."""
    answer = sb.app_client.get(
        "/ajax-api/2.0/mlflow/get-artifact", params={"run_id": sb.server_run, "path": h}
    )
    _refused_http(answer)


def s_ui_download(sb: Sandbox, h: str) -> None:
    _refused_http(sb.ui_viewer.get(f"/runs/{sb.server_run}/artifacts/{_in_url(h)}"))


def _multipart(parts: list[tuple[str, bytes, bytes]], token: str) -> tuple[bytes, str]:
    """A multipart body written by hand (``field, file name bytes, content``): an HTTP
    library would percent-encode a NUL or leave out an empty file name."""
    boundary = "keel-traversal-boundary"
    chunks = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{token}\r\n".encode()
    ]
    for field, filename, content in parts:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="'.encode()
            + filename
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + content
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _pipelines_kept(sb: Sandbox) -> list[str]:
    work = sb.root / "a" / "b" / "c" / "inside" / "work"
    return sorted(p.name for p in (work / "pipelines").iterdir() if not p.name.startswith("."))


def _stripped_by_the_parser(name: str) -> bool:
    """python-multipart keeps only the last part of a file name that starts like a Windows
    path (``C:\\x``; checked after it undoes a quoted name's ``\\\\`` escapes), an old
    browser's bug worked around: keel then sees a plain name."""
    value = name.replace("\\\\", "\\")
    return value[1:3] == ":\\" or value[:2] == "\\\\"


def s_pipeline_upload(sb: Sandbox, h: str) -> None:
    before = _pipelines_kept(sb)
    control = b"def train(a): pass\ndef run_pipeline(a, b, c): pass\n"
    name = h.encode("utf-8", "surrogatepass")
    token = csrf_of(sb.ui_editor.get("/pipelines").text)
    for parts in (
        [("control", name + b".py", control)],
        [("control", b"ok_control.py", control), ("support", name, b"x")],
    ):
        body, kind = _multipart(parts, token)
        answer = sb.ui_editor.post(
            "/pipelines/upload",
            content=body,
            headers={"content-type": kind},
            follow_redirects=False,
        )
        if _stripped_by_the_parser(h):  # kept under its last part, in the pipelines folder
            assert answer.status_code == 303, answer.text
            kept = answer.headers["location"].rsplit("/", 1)[1]
            code = sb.root / "a" / "b" / "c" / "inside" / "work" / "pipelines" / kept / "code"
            assert {p.name for p in code.iterdir()} <= {"x.py", "ok_control.py", "x"}
            assert sb.app_client.delete(f"/api/v1/pipelines/{kept}").status_code == 204
            continue
        _refused_http(answer)
    named = sb.ui_editor.post(
        "/pipelines/upload",
        files=[("control", ("ok_control.py", control))],
        data={"csrf_token": token, "name": h or "."},
        follow_redirects=False,
    )
    _refused_http(named)
    assert _pipelines_kept(sb) == before


def s_input_upload(sb: Sandbox, h: str) -> None:
    name = h.encode("utf-8", "surrogatepass")
    token = csrf_of(sb.ui_editor.get("/pipelines").text)
    body, kind = _multipart([("file", name, b"a,b\n1,2\n")], token)
    inputs = sb.root / "a" / "b" / "c" / "inside" / "work" / "inputs"
    for client, url in (
        (sb.ui_editor, "/pipelines/inputs"),
        (sb.app_client, "/api/v1/pipelines/inputs"),
    ):
        answer = client.post(
            url, content=body, headers={"content-type": kind}, follow_redirects=False
        )
        if _stripped_by_the_parser(h):  # kept under its last part, in the inputs folder
            assert answer.status_code in (201, 303), answer.text
            assert [p.name for p in inputs.iterdir()] == ["x"]
            (inputs / "x").unlink()
            continue
        _refused_http(answer)


def s_pipeline_form(sb: Sandbox, h: str) -> None:
    token = csrf_of(sb.ui_editor.get("/pipelines/good_pipeline").text)
    for action in ("train", "run"):
        answer = sb.ui_editor.post(
            f"/pipelines/good_pipeline/{action}",
            data={"csrf_token": token, "input": h},
            follow_redirects=False,
        )
        _refused_http(answer)


def _list_on_remote(sb: Sandbox, path: str) -> None:
    """Make the remote server's store list ``path`` for its run, as a hostile or broken
    server would (written in its database directly: its own API refuses such a record)."""
    with contextlib.closing(sqlite3.connect(sb.remote_db)) as db, db:
        db.execute(
            "UPDATE artifacts SET path = ? WHERE owner_kind = 'run' AND owner_id = ?",
            (path, sb.remote_run),
        )


def s_remote_listing(sb: Sandbox, h: str) -> None:
    export = sb.root / "a" / "b" / "c" / "inside" / "remote-export"
    _list_on_remote(sb, h)
    try:
        _refused(lambda: sb.remote.list_run_artifact(sb.remote_run))
        _refused(lambda: sb.remote.get_run_artifact(sb.remote_run))
        _refused(lambda: sb.remote.export_run_artifact(sb.remote_run, export))
    finally:
        _list_on_remote(sb, "model.txt")


def s_offline_listing(sb: Sandbox, h: str, cwd: Path) -> None:
    """An exported folder someone hands over, its file list edited to name ``h``."""
    bundle = sb.root / "a" / "b" / "c" / "inside" / "bundle"
    listing = bundle / "meta" / "artifacts" / "runs" / f"{sb.run_id}.json"
    original = listing.read_text()
    entries = json.loads(original)
    entries[0]["path"] = h
    listing.write_text(json.dumps(entries))
    try:
        offline = Client(
            store=sb.client.settings.store, cache_dir=bundle, project="traversal", offline=True
        )
        with untouched(sb, cwd, edited=listing):
            _refused(lambda: offline.get_run_artifact(sb.run_id))
            _refused(lambda: offline.list_run_artifact(sb.run_id))
    finally:
        listing.write_text(original)


SURFACES: dict[str, Callable[[Sandbox, str], None]] = {
    "log": s_log,
    "dumper": s_dumper,
    "model-version": s_model_version,
    "list": s_list,
    "get": s_get,
    "place": s_place,
    "export": s_export,
    "cache": s_cache,
    "blob-store": s_blob_store,
    "api-record": s_api_record,
    "api-list": s_api_list,
    "mlflow-upload": s_mlflow_upload,
    "mlflow-download": s_mlflow_download,
    "mlflow-proxy-path": s_mlflow_proxy_path,
    "mlflow-get-artifact": s_mlflow_get_artifact,
    "ui-download": s_ui_download,
    "pipeline-upload": s_pipeline_upload,
    "input-upload": s_input_upload,
    "pipeline-form": s_pipeline_form,
    "remote-listing": s_remote_listing,
    "offline-listing": lambda sb, h: None,  # run with the working folder, see the test
}
CASES = [
    pytest.param(surface, hostile, id=f"{surface}-{hid}")
    for surface in SURFACES
    for hid, hostile in HOSTILE
    if not (hostile == "" and surface in EMPTY_MEANS_DEFAULT)
]


@pytest.mark.parametrize(("surface", "hostile"), CASES)
def test_a_hostile_path_is_refused_and_nothing_is_written(
    sandbox: Sandbox, surface: str, hostile: str, tmp_path: Path
) -> None:
    if surface == "offline-listing":  # edits one file of the sandbox itself
        s_offline_listing(sandbox, hostile, tmp_path)
        return
    with untouched(sandbox, tmp_path):
        SURFACES[surface](sandbox, hostile)


def test_the_table_covers_every_surface_and_every_path() -> None:
    assert len(SURFACES) >= 19 and len(HOSTILE) >= 17
    assert len(CASES) == len(SURFACES) * len(HOSTILE) - len(EMPTY_MEANS_DEFAULT)


# --------------------------------------------------------------------------- the rule itself


@pytest.mark.parametrize(("hid", "hostile"), HOSTILE + ON_DISK)
def test_the_rule_refuses_each_path_with_one_clear_line(hid: str, hostile: str) -> None:
    assert unsafe_reason(hostile) is not None
    with pytest.raises(InvalidInput, match=r"is not allowed|is empty") as caught:
        check_artifact_path(hostile)
    assert "\u202e" not in str(caught.value)


@pytest.mark.parametrize(
    "fine",
    ["model/weights.bin", "a b/c-d_e.f", "データ（１）.csv", "résumé.pdf", "x/ｙ/z", ".hidden/a"],
)
def test_ordinary_names_in_any_script_stay_allowed(fine: str) -> None:
    assert check_relative_path(fine) == fine
    assert check_artifact_path(fine) == fine


# --------------------------------------------------------------------------- folders on disk


@pytest.mark.parametrize(("hid", "name"), ON_DISK)
def test_a_logged_folder_with_a_hostile_file_name_uploads_nothing(
    sandbox: Sandbox, tmp_path: Path, hid: str, name: str
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "fine.txt").write_text("fine")
    (folder / name).write_text("content")
    blobs = sorted(sandbox.store.iter_blobs())
    _refused(lambda: sandbox.client.log_run_artifact(sandbox.run_id, folder, "logged"))
    assert sorted(sandbox.store.iter_blobs()) == blobs  # refused before any upload
    assert all(
        not f.path.startswith("logged") for f in sandbox.client.list_run_artifact(sandbox.run_id)
    )


# --------------------------------------------------------------------------- symbolic links


def test_a_link_out_of_a_logged_folder_is_refused_and_a_link_inside_is_stored(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    secret = sandbox.root / "outside" / "sentinel.txt"
    folder = tmp_path / "with-links"
    (folder / "sub").mkdir(parents=True)
    (folder / "data.csv").write_text("a,b\n1,2\n")
    (folder / "sub" / "same.csv").symlink_to(folder / "data.csv")
    blobs = sorted(sandbox.store.iter_blobs())
    stored = sandbox.client.log_run_artifact(sandbox.run_id, folder, "linked-inside")
    assert {f.path: f.sha256 for f in stored} == {
        "linked-inside/data.csv": hash_file(folder / "data.csv"),
        "linked-inside/sub/same.csv": hash_file(folder / "data.csv"),  # the content, once
    }
    (folder / "leak.txt").symlink_to(secret)
    (folder / "leak-dir").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(InvalidInput, match=r"symbolic link to .* outside the folder"):
        sandbox.client.log_run_artifact(sandbox.run_id, folder, "linked-outside")
    assert sorted(sandbox.store.iter_blobs()) == sorted({*blobs, hash_file(folder / "data.csv")})
    assert secret.read_text() == "never changes"


def test_the_cache_does_not_write_through_a_link_in_its_target(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    target = tmp_path / "tree"
    target.mkdir()
    outside = sandbox.root / "outside"
    (target / "sub").symlink_to(outside, target_is_directory=True)
    with untouched(sandbox, tmp_path / "elsewhere"):
        for rel in ("sub/x.txt", "sub/deeper/x.txt"):
            with pytest.raises(ArtifactError, match="symbolic link leads out"):
                sandbox.cache.materialize(sandbox.store, {rel: sandbox.blob}, target)
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]


def test_an_export_does_not_write_through_a_link_in_its_target(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    (export / "runs" / sandbox.run_id).mkdir(parents=True)
    outside = sandbox.root / "outside"
    (export / "runs" / sandbox.run_id / "artifacts").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactError, match="a symbolic link in it leads out"):
        sandbox.client.export_run_artifact(sandbox.run_id, export)
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel.txt"]


@pytest.mark.parametrize("target", ["out\x00put", "out\u202eput", "out\x1bput", ""])
def test_a_place_or_export_target_with_a_nul_or_invisible_character_is_refused(
    sandbox: Sandbox, tmp_path: Path, target: str
) -> None:
    with untouched(sandbox, tmp_path):
        _refused(lambda: sandbox.client.export_run_artifact(sandbox.run_id, target))
        _refused(lambda: sandbox.client.place_run_artifact(sandbox.run_id, target))
        _refused(lambda: sandbox.client.place_model_artifact(sandbox.version, target))
        _refused(lambda: sandbox.client.export_model_artifact(sandbox.version, target))
