"""The client with its artifacts on S3 (a local moto server): upload, cache, verify, offline."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from keel import Client
from s3 import S3Server

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_client(store_url: str, s3_server: S3Server, tmp_path: Path) -> Client:
    return Client(
        store=store_url,
        artifacts=f"s3://{s3_server.bucket}/{uuid.uuid4().hex}",
        storage_options=s3_server.storage_options(),
        cache_dir=tmp_path / "cache",
        project="test",
    )


def test_artifacts_and_models_on_s3(s3_client: Client, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 2048)
    (model / "meta.json").write_text("{}")
    with s3_client.start_run("exp") as run:
        run.log_artifact(model)
        mv = run.log_model_version("clf", model)
        again = run.log_model_version("clf", model)
    assert again.version == mv.version == 1
    store = s3_client.artifact_store
    assert sorted(store.iter_blobs()) == sorted(f.sha256 for f in run.list_artifacts("model"))

    local = s3_client.get_model_artifact("clf@1")
    assert (local / "weights.bin").read_bytes() == b"\x00" * 2048
    mode = (local / "weights.bin").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "cached files are read-only"
    assert os.path.isdir(s3_client.settings.cache_dir / "blobs"), "remote blobs are cached locally"

    export = tmp_path / "bundle"
    s3_client.export_model_artifact(mv, export)
    offline = Client(store=s3_client.settings.store, cache_dir=export, project="test", offline=True)
    assert (offline.get_model_artifact("clf@latest") / "meta.json").read_text() == "{}"


def test_storage_options_come_from_keel_yml_or_the_environment(
    store_url: str, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 endpoint and credentials of keel.yml's ``store.storage_options`` (or env
    ``KEEL_STORAGE_OPTIONS``) reach the client, the server and its pipeline jobs: before, the
    key was accepted and ignored, so a MinIO or moto endpoint could only be passed in code."""
    import json

    from keel.server.settings import ServerSettings

    artifacts = f"s3://{s3_server.bucket}/{uuid.uuid4().hex}"
    options = s3_server.storage_options()
    config = tmp_path / "keel.yml"
    config.write_text(json.dumps({"store": {"url": store_url, "artifacts": artifacts,
                                            "storage_options": options}}))  # fmt: skip
    src = tmp_path / "a.txt"
    src.write_text("to S3 by keel.yml's options")
    client = Client(config=config, project="test")
    assert client.settings.storage_options == options
    with client.start_run("exp") as run:
        (sha,) = [f.sha256 for f in run.log_artifact(src)]
    assert list(client.artifact_store.iter_blobs()) == [sha]
    assert ServerSettings.resolve(config).storage_options == options
    assert "secret" not in repr(client.settings), "credentials stay out of reprs"

    monkeypatch.setenv("KEEL_STORAGE_OPTIONS", json.dumps(options))
    from_env = Client(store=store_url, artifacts=artifacts, cache_dir=tmp_path / "c2")
    assert from_env.get_run_artifact(run, "a.txt").read_text() == "to S3 by keel.yml's options"
    explicit = Client(store=store_url, artifacts=artifacts, storage_options={"anon": True})
    assert explicit.settings.storage_options == {"anon": True}, "an argument wins"
