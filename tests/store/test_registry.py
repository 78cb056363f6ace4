"""keel.store.registry: backends by URL scheme, built-ins through the same table, plugins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keel.errors import ConfigError, InvalidInput
from keel.store import open_store, register_store
from keel.store import registry as r


def test_builtin_schemes(tmp_path: Path) -> None:
    from keel.store.http import HttpStore
    from keel.store.mlflow import MlflowStore
    from keel.store.sql import SqlStore

    assert isinstance(open_store(str(tmp_path)), SqlStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/k.db"), SqlStore)
    assert isinstance(open_store("postgresql+psycopg://u@h/db"), SqlStore)  # driver suffix
    assert isinstance(open_store("postgres://u@h/db"), SqlStore)
    assert isinstance(open_store("https://keel.example.com", token="t"), HttpStore)
    store = open_store("MLflow+HTTPS://ml.example.com/prefix", token="t")
    assert isinstance(store, MlflowStore)
    assert store.http.base == "https://ml.example.com/prefix"


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unsupported store URL scheme 'mysql'.*mlflow\+http://"):
        open_store("mysql://root@h/db")
    with pytest.raises(ConfigError, match="non-empty"):
        open_store("")


def test_registered_backend_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, Any]] = []

    def factory(url: str, token: str | None) -> Any:
        made.append((url, token))
        return "a store"

    monkeypatch.setattr(r, "_registry", dict(r._registry))
    register_store("MyStore", factory)
    assert open_store("mystore://x", token="t") == "a store"
    assert made == [("mystore://x", "t")]
    assert "mystore" in r.known_schemes()
    with pytest.raises(InvalidInput, match="not a URL scheme"):
        register_store("not a scheme", factory)
    with pytest.raises(InvalidInput, match="callable"):
        register_store("ok", "nope")  # type: ignore[arg-type]


def test_entry_points_extend_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    class Entry:
        name = "Plug"
        value = "plug:factory"
        group = r.ENTRY_POINT_GROUP

        def load(self) -> Any:
            return lambda url, token: ("plugged", url)

    import importlib.metadata

    monkeypatch.setattr(r, "_registry", dict(r._registry))
    monkeypatch.setattr(r, "_entry_points_read", False)
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group=None: [Entry()] if group == r.ENTRY_POINT_GROUP else [],
    )
    assert open_store("plug://here") == ("plugged", "plug://here")


def test_artifact_stores_follow_the_store_scheme(tmp_path: Path) -> None:
    from keel.artifacts import LocalArtifactStore, open_artifact_store
    from keel.artifacts.http import HttpArtifactStore
    from keel.artifacts.mlflow import MlflowArtifactStore

    assert isinstance(open_artifact_store(str(tmp_path)), LocalArtifactStore)
    assert isinstance(open_artifact_store("http://k:8080", token="t"), HttpArtifactStore)
    mlflow = open_artifact_store("mlflow+http://m:5000", {"root": "team/blobs"}, token="t")
    assert isinstance(mlflow, MlflowArtifactStore) and mlflow.root == "team/blobs"
    with pytest.raises(InvalidInput, match="invalid root"):
        open_artifact_store("mlflow+http://m:5000", {"root": "../x"})


def test_client_defaults_artifacts_to_the_mlflow_server(tmp_path: Path) -> None:
    from keel import Client

    client = Client(store="mlflow+http://127.0.0.1:9", cache_dir=tmp_path / "c")
    assert client.settings.artifacts == "mlflow+http://127.0.0.1:9"
    assert type(client.artifact_store).__name__ == "MlflowArtifactStore"


def test_import_keel_stays_light() -> None:
    code = (
        "import sys, keel, keel.store; keel.store.open_store('mlflow+http://h:1');"
        "print(sorted(m for m in ('httpx2', 'sqlalchemy', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
