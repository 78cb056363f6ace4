"""Run artifacts, model versions, aliases, datasets, cache and offline mode."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from keel import Client
from keel.errors import (
    ArtifactError,
    Conflict,
    InvalidInput,
    NotFound,
    NotSupported,
    Offline,
)
from keel.hashing import hash_file, hash_path


def _model_dir(root: Path, content: str = "weights") -> Path:
    folder = root / "model"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_text(content)
    (folder / "sub" / "config.json").write_text(json.dumps({"c": 1}))
    return folder


def _blob_count(client: Client) -> int:
    """Blobs where the backend keeps them (a folder, S3, or the server's store)."""
    return sum(1 for _ in client.artifact_store.iter_blobs())


def test_log_file_folder_and_dumper(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_text("hello")
    with client.start_run("exp") as run:
        files = run.log_artifact(src)
        assert [(f.path, f.size, f.sha256) for f in files] == [("report.txt", 5, hash_file(src))]
        run.log_artifact(_model_dir(tmp_path), "models/m1")
        run.log_artifact(lambda p: p.write_text("dumped"), "notes/n.txt")
    paths = [f.path for f in client.list_run_artifact(run)]
    assert paths == [
        "models/m1/sub/config.json",
        "models/m1/weights.bin",
        "notes/n.txt",
        "report.txt",
    ]
    assert [f.path for f in client.list_run_artifact(run, "models")] == paths[:2]
    local = client.get_run_artifact(run, "notes/n.txt")
    assert local.read_text() == "dumped"
    assert not os.access(local, os.W_OK) or os.geteuid() == 0
    assert not local.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    folder = client.get_run_artifact(run, "models/m1")
    assert (folder / "sub" / "config.json").read_text() == '{"c": 1}'
    assert client.load_run_artifact(run, lambda p: p.read_text(), "report.txt") == "hello"


def test_identical_content_is_stored_once(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("same bytes")
    with client.start_run("exp") as r1:
        r1.log_artifact(src)
    with client.start_run("exp") as r2:
        r2.log_artifact(src, "copy.txt")
    assert _blob_count(client) == 1


def test_failed_upload_keeps_dumped_files(store_url: str, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "occupied"
    not_a_folder.write_text("a file where the artifact folder should be")
    client = Client(store=store_url, artifacts=str(not_a_folder), cache_dir=tmp_path / "cache")
    with client.start_run("exp") as run, pytest.raises(ArtifactError, match="kept at") as info:
        run.log_artifact(lambda p: p.write_text("precious"), "out.txt")
    kept = Path(str(info.value).rsplit("kept at ", 1)[1])
    assert (kept / "out.txt").read_text() == "precious"
    assert client.list_run_artifact(run) == []


def test_artifact_paths_are_checked(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x")
    with client.start_run("exp") as run:
        for bad in ["../x", "/etc/passwd", "a/../../b", "a\\b", "a\x00b", "a//b"]:
            with pytest.raises(InvalidInput):
                run.log_artifact(src, bad)
        with pytest.raises(InvalidInput, match="path_in_run"):
            client.log_run_artifact(run, lambda p: p.write_text("x"))
        with pytest.raises(NotFound):
            run.log_artifact(tmp_path / "missing.txt")


def test_place_and_export_then_read_offline(client: Client, tmp_path: Path) -> None:
    with client.start_run("exp") as run:
        run.log_artifact(_model_dir(tmp_path), "model")
    linked = client.place_run_artifact(run, tmp_path / "placed", "model")
    assert not linked.is_symlink() and (linked / "weights.bin").is_symlink()
    assert (linked / "weights.bin").read_text() == "weights"
    with pytest.raises(Conflict, match="overwrite"):
        client.place_run_artifact(run, tmp_path / "placed", "model")
    copied = client.place_run_artifact(
        run, tmp_path / "placed", "model", overwrite=True, link=False
    )
    assert not copied.is_symlink() and (copied / "sub" / "config.json").is_file()

    export = tmp_path / "export"
    client.export_run_artifact(run, export, "model")
    offline = Client(
        store=client.settings.store, cache_dir=export, project=client.project, offline=True
    )
    assert offline.get_run(run.id).status == "finished"
    assert (offline.get_run_artifact(run.id, "model") / "weights.bin").read_text() == "weights"
    with pytest.raises(Offline, match="find_runs"):
        offline.find_runs()
    with pytest.raises(Offline, match="start_run"):
        offline.start_run("exp")


def test_in_offline_mode_serves_cached_metadata(client: Client) -> None:
    with client.start_run("exp") as run:
        run.log_metrics({"acc": 0.5})
    client.get_run(run.id)  # caches the metadata
    offline = client.in_offline_mode
    assert offline.get_run(run.id).metrics == {"acc": 0.5}
    with pytest.raises(Offline, match="get_run"):
        offline.get_run("f" * 32)
    with pytest.raises(Offline, match="log_metrics"):
        offline.log_metrics(run.id, {"acc": 1.0})


def test_model_versions_autoincrement_and_dedupe(client: Client, tmp_path: Path) -> None:
    folder = _model_dir(tmp_path)
    with client.start_run("exp") as run:
        v1 = client.log_model_version("iris", run, folder, label="1.0.0")
        same = client.log_model_version("iris", run, folder)
        dup = client.log_model_version("iris", run, folder, allow_duplication=True)
        (folder / "weights.bin").write_text("retrained")
        v3 = run.log_model_version("iris", folder, tags={"note": "better"})
    assert (v1.version, same.version, dup.version, v3.version) == (1, 1, 2, 3)
    assert v1.content_hash == hash_path(_model_dir(tmp_path / "again"))
    assert v3.tags == {"note": "better"} and v1.label == "1.0.0"
    assert v1.path_in_run == "iris"
    model = client.get_model("iris")
    assert model.latest_version == 3
    assert [v.version for v in model.find_versions()] == [1, 2, 3]


def test_aliases_labels_and_refs(client: Client, tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    with client.start_run("exp") as run:
        for i in range(3):
            f.write_bytes(bytes([i]))
            client.log_model_version("m", run, f, label=f"1.{i}.0")
    client.get_model_version(("m", 2)).set_alias("production")
    assert client.get_model_version("m@production").version == 2
    assert client.get_model_version("m@1.0.0").version == 1
    assert client.get_model_version("m").version == 3
    assert client.get_model_version("m@latest").version == 3
    client.get_model_version("m@3").set_alias("production")  # moves the alias
    assert client.get_model_version("m@production").version == 3
    assert client.get_model_version(("m", 2)).aliases == ()
    assert client.get_model("m").aliases == {"production": 3}
    with pytest.raises(InvalidInput, match="reserved"):
        client.set_alias(("m", 1), "latest")
    with pytest.raises(NotFound, match="'nope'"):
        client.get_model_version("m@nope")
    client.delete_alias("m", "production")
    with pytest.raises(NotFound):
        client.get_model_version("m@production")


def test_model_artifact_roundtrip_and_tamper_detection(client: Client, tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"pickled-model")
    with client.start_run("exp") as run:
        mv = client.log_model_version("clf", run, f)
    path = client.get_model_artifact(mv)
    assert path.read_bytes() == b"pickled-model"
    assert client.load_model_artifact("clf@1", lambda p: p.read_bytes()) == b"pickled-model"
    placed = client.place_model_artifact(mv, tmp_path / "deploy" / "model.pkl", link=False)
    assert placed.read_bytes() == b"pickled-model"
    # Rewriting the version's files is refused (test_version_files.py), and a record
    # rewritten behind keel's back is refused on load (test_version_files.py too).


def test_export_model_for_offline_use(client: Client, tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"m")
    with client.start_run("exp") as run:
        client.log_model_version("clf", run, f).set_alias("production")
    export = tmp_path / "bundle"
    client.export_model_artifact("clf@production", export)
    offline = Client(
        store=client.settings.store, cache_dir=export, project=client.project, offline=True
    )
    mv = offline.get_model_version("clf@production")
    assert mv.version == 1
    assert offline.get_model_artifact(mv).read_bytes() == b"m"


def test_datasets_are_versioned_by_content(client: Client, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n1,2\n")
    with client.start_run("exp", kind="dataset") as run:
        d1 = run.log_dataset("iris", data)
    with client.start_run("exp") as reader:
        d1_again = client.log_dataset("iris", data)
        reader.use_dataset(d1_again)
    (data / "test.csv").write_text("a,b\n3,4\n")
    d2 = client.log_dataset("iris", data, description="with test split")
    assert (d1.version, d1_again.version, d2.version) == (1, 1, 2)
    assert d1.content_hash == hash_path(data.parent / "data") or d2.content_hash == hash_path(data)
    assert client.get_dataset("iris").version == 2
    assert client.get_dataset("iris", 1).id == d1.id
    assert sorted(p.name for p in client.get_dataset("iris", 2).get_files().iterdir()) == [
        "test.csv",
        "train.csv",
    ]
    assert sorted(client.get_dataset("iris", 1).runs) == sorted(
        [(run.id, "output"), (reader.id, "input")]
    )
    assert [d.version for d in client.find_datasets({"name": "iris"}, sort=[("version", -1)])] == [
        2,
        1,
    ]
    with pytest.raises(NotFound):
        client.get_dataset("iris", 9)


def test_registered_model_verbs_and_tags(client: Client, tmp_path: Path) -> None:
    created = client.create_model("ranker", tags={"team": "search"})
    assert created.tags == {"team": "search"} and created.latest_version is None
    with pytest.raises(Conflict, match="ranker"):
        client.create_model("ranker")
    assert client.get_or_create_model("ranker").id == created.id
    assert client.get_or_create_model("fresh").name == "fresh"
    client.set_tags_on_model("ranker", {"owner": "ana"})
    assert client.get_model("ranker").tags == {"team": "search", "owner": "ana"}
    f = tmp_path / "m.bin"
    f.write_bytes(b"m")
    with client.start_run("exp") as run:
        mv = client.get_model("ranker").log_version(run, f)
    client.set_tags_on_model_version(("ranker", 1), {"validated": True})
    assert client.get_model_version("ranker@1").tags == {"validated": True}
    assert mv.set_tags(stage="qa").tags == {"validated": True, "stage": "qa"}
    assert [m.name for m in client.find_models({"tags.team": "search"})] == ["ranker"]
    assert [v.version for v in client.find_model_versions({"tags.validated": True})] == [1]
    assert mv.run.id == run.id
    with pytest.raises(NotFound, match="no model named 'nope'"):
        client.get_model("nope")


@pytest.mark.unsupported_on(
    "mlflow",
    reason="keel gc cannot list what every run of an MLflow server refers to; MLflow purges "
    "its deleted runs with `mlflow gc`",
    raises=NotSupported,
)
def test_gc_purges_deleted_runs_and_unreferenced_blobs(client: Client, tmp_path: Path) -> None:
    from keel.tracking.gc import collect_garbage

    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1000)
    keep = tmp_path / "keep.bin"
    keep.write_bytes(b"keep")
    with client.start_run("exp") as run:
        run.log_artifact(big)
    with client.start_run("exp") as kept:
        kept.log_artifact(keep)
    client.delete_run(run)
    report = collect_garbage(client, grace_seconds=0)
    assert report.purged_runs == [run.id]
    assert report.removed_blobs == [hash_file(big)] and report.freed_bytes == 1000
    assert client.get_run_artifact(kept, "keep.bin").read_bytes() == b"keep"
    with pytest.raises(NotFound):
        client.get_run(run.id)
