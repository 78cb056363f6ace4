"""Which store, artifact store, project and cache a client uses.

Each setting comes from the first of: the argument, the environment (``KEEL_STORE``,
``KEEL_ARTIFACTS``, ``KEEL_PROJECT``, ``KEEL_CACHE_DIR``), keel.yml, the default. The
default is an embedded store in ``./.keel`` (SQLite + a local artifact folder beside it).
A keel platform server (``http(s)://…``) as the store also keeps the artifacts unless
another artifact store is named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from keel.config import load_config

DEFAULT_STORE_DIR = ".keel"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class ClientSettings:
    """The resolved locations a client works with."""

    store: str
    artifacts: str
    project: str
    cache_dir: Path


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
    """Whether a store or artifact URL names a keel platform server (http:// or https://)."""
    return url.lower().startswith(("http://", "https://"))


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
    if cache_dir is None:
        env_cache = os.environ.get("KEEL_CACHE_DIR")
        if env_cache:
            cache_dir = env_cache
        elif folder is not None:
            cache_dir = folder / "cache"
        else:
            cache_dir = Path.home() / ".cache" / "keel"
    return ClientSettings(store, artifacts, project, Path(cache_dir).expanduser().resolve())
