"""A model version's files never change once registered, on every backend of the client
suite: a second version from the same run gets a path of its own, a write over a version's
path is refused, and a version holds exactly its own files even where a run artifact was
logged before."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import Client
from keel.errors import Conflict
from keel.hashing import hash_path

NO_WRITE_ONCE = pytest.mark.unsupported_on(
    "mlflow",
    reason="the MLflow backend keeps a run's file list as append-only records in MLflow: "
    "it cannot refuse or replace a write in the same step as the version",
)


def test_two_versions_from_one_run_keep_their_own_files(client: Client, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    with client.start_run("e") as run:
        model.write_bytes(b"first")
        v1 = client.log_model_version("m", run, model)
        model.write_bytes(b"second")
        v2 = client.log_model_version("m", run, model)
        model.write_bytes(b"first")  # identical content: the existing version
        assert client.log_model_version("m", run, model).version == v1.version
    assert (v1.version, v1.path_in_run) == (1, "m")
    assert v2.path_in_run == f"{v2.content_hash[:16]}/m"  # beside it, same file name
    # before the fix, version 1 pointed to the second file: an IntegrityError on load
    assert client.get_model_artifact(("m", 1)).read_bytes() == b"first"
    assert client.get_model_artifact(("m", 2)).read_bytes() == b"second"
    assert client.get_model_artifact(("m", 2)).name == "m"


@NO_WRITE_ONCE
def test_a_path_holding_a_version_is_write_once(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    with client.start_run("e") as run:
        v1 = client.log_model_version("m", run, folder, path_in_run="model")
        with pytest.raises(Conflict, match="holds model 'm' version 1"):
            run.log_artifact(other, "model/w.bin")  # would change the version's file
        with pytest.raises(Conflict, match="another path_in_run"):
            run.log_artifact(other, "model/extra.bin")  # would add one to it
        with pytest.raises(Conflict, match="holds model 'm' version 1"):
            client.log_model_version("m2", run, other, path_in_run="model")
        run.log_artifact(folder / "w.bin", "model/w.bin")  # the same bytes again: a no-op
        run.log_artifact(other, "elsewhere.bin")  # the rest of the run is free
    assert hash_path(client.get_model_artifact(v1)) == v1.content_hash
    assert [f.path for f in client.list_model_artifact(v1)] == ["model/w.bin"]


@NO_WRITE_ONCE
def test_a_version_holds_exactly_its_files(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    (folder / "b.bin").write_bytes(b"b")
    with client.start_run("e") as run:
        run.log_artifact(folder, "model")  # a draft logged as a plain run artifact
        (folder / "b.bin").unlink()
        mv = client.log_model_version("m", run, folder, path_in_run="model")
    # before the fix, the draft's b.bin stayed under the version's path: it never verified
    assert [f.path for f in client.list_model_artifact(mv)] == ["model/a.bin"]
    assert hash_path(client.get_model_artifact(mv)) == mv.content_hash == hash_path(folder)


def test_a_record_rewritten_behind_keels_back_is_refused_on_load(
    store_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from keel.errors import IntegrityError
    from keel.store import schema
    from keel.store.engine import write_transaction
    from keel.store.sql import SqlStore

    client = Client(store=store_url, artifacts=str(tmp_path / "artifacts"), project="test")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"pickled-model")
    with client.start_run("e") as run:
        mv = client.log_model_version("clf", run, model)
    evil = client.artifact_store.put_bytes(b"evil")  # a blob that is stored and intact
    store = client.store
    assert isinstance(store, SqlStore)
    a = schema.artifacts
    with write_transaction(store.engine) as conn:  # what keel itself now refuses to do
        conn.execute(
            update(a)
            .where(a.c.owner_kind == "run", a.c.owner_id == run.id, a.c.path == "clf")
            .values(sha256=evil.sha256, size=evil.size)
        )
    with pytest.raises(IntegrityError, match="content hash"):
        client.get_model_artifact(mv)
