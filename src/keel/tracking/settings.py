"""Which store, artifact store, project and cache a client uses.

Each setting comes from the first of: the argument, the environment (``KEEL_STORE``,
``KEEL_ARTIFACTS``, ``KEEL_PROJECT``, ``KEEL_CACHE_DIR``, ``KEEL_STORAGE_OPTIONS``), keel.yml,
the default. The default is an embedded store in ``./.keel`` (SQLite + a local artifact
folder beside it).
A keel platform server (``http(s)://…``) or an MLflow server (``mlflow+http(s)://…``) as the
store also keeps the artifacts unless another artifact store is named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.config import load_config
from keel.errors import ConfigError

DEFAULT_STORE_DIR = ".keel"
DEFAULT_PROJECT = "default"
#: JSON object of fsspec options for a remote artifact store (endpoint, credentials…)
STORAGE_OPTIONS_ENV = "KEEL_STORAGE_OPTIONS"


@dataclass(frozen=True)
class ClientSettings:
    """The resolved locations a client works with."""

    store: str
    artifacts: str
    project: str
    cache_dir: Path
    # fsspec options of a remote artifact store; they may hold credentials: never shown
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def embedded_folder(store: str) -> Path | None:
    """The folder of an embedded (SQLite) store, if the URL names one."""
    if "://" not in store:
        return Path(store).expanduser().resolve()
    if store.startswith("sqlite:///"):
        path = store[len("sqlite:///") :]
        if path and path != ":memory:":
            return Path(path).expanduser().resolve().parent
    return None


def is_server_url(url: str) -> bool:
    """Whether a store or artifact URL names a server that also keeps artifacts: a keel
    platform server (``http(s)://``) or an MLflow server (``mlflow+http(s)://``, through its
    artifact proxy)."""
    return url.lower().startswith(("http://", "https://", "mlflow+http://", "mlflow+https://"))


def resolve_settings(
    store: str | None = None,
    artifacts: str | None = None,
    project: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> ClientSettings:
    """Fill in every setting not given, following the order in this module's docstring."""
    config = load_config(config_path)
    store = store or os.environ.get("KEEL_STORE") or config.store.url or DEFAULT_STORE_DIR
    folder = embedded_folder(store)
    artifacts = (
        artifacts
        or os.environ.get("KEEL_ARTIFACTS")
        or config.store.artifacts
        or (store if is_server_url(store) else None)
        or str((folder or Path(DEFAULT_STORE_DIR).resolve()) / "artifacts")
    )
    project = project or os.environ.get("KEEL_PROJECT") or config.project or DEFAULT_PROJECT
    options = _env_storage_options()
    if options is None:
        options = dict(config.store.storage_options)
    if cache_dir is None:
        env_cache = os.environ.get("KEEL_CACHE_DIR")
        if env_cache:
            cache_dir = env_cache
        elif folder is not None:
            cache_dir = folder / "cache"
        else:
            cache_dir = Path.home() / ".cache" / "keel"
    return ClientSettings(
        store, artifacts, project, Path(cache_dir).expanduser().resolve(), options
    )


def _env_storage_options() -> dict[str, Any] | None:
    """``KEEL_STORAGE_OPTIONS`` as a dict (None when unset)."""
    text = os.environ.get(STORAGE_OPTIONS_ENV, "").strip()
    if not text:
        return None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{STORAGE_OPTIONS_ENV} is not valid JSON: {exc.msg}") from None
    if not isinstance(options, dict):
        raise ConfigError(f"{STORAGE_OPTIONS_ENV} must be a JSON object, " + 'e.g. {"anon": false}')
    return options
