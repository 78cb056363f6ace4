"""Which store, artifact store, project and cache a client uses.

Each setting comes from the first of: the argument, the environment (``KEEL_STORE``,
``KEEL_ARTIFACTS``, ``KEEL_PROJECT``, ``KEEL_CACHE_DIR``, ``KEEL_STORAGE_OPTIONS``), keel.yml,
the default. The default is an embedded store (SQLite + a local artifact folder and cache
beside it) in the ``.keel`` folder found as git finds ``.git``: in the working directory or
its nearest parent that holds one, up to the top of the enclosing git work tree (outside a
git work tree only the working directory is looked at); where there is none, ``./.keel``.
A keel platform server (``http(s)://…``) or an MLflow server (``mlflow+http(s)://…``) as the
store also keeps the artifacts unless another artifact store is named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    #: how the store was chosen: None when named (argument, env, keel.yml), else the search
    #: for the default ``.keel`` folder (found or not)
    store_search: StoreSearch | None = field(default=None, compare=False)
    #: where the project came from; "default" means nobody chose it
    project_origin: Literal["argument", "env", "config", "default"] = field(
        default="argument", compare=False
    )

    @property
    def store_is_missing(self) -> bool:
        """The store is the default one and no ``.keel`` folder exists yet: using it would
        create an empty store."""
        return self.store_search is not None and self.store_search.found is None


@dataclass(frozen=True)
class StoreSearch:
    """Where the default store was looked for, from the working directory up.

    Attributes:
        start: the working directory.
        top: the last folder looked in: the top of the enclosing git work tree (the folder
            holding ``.git``), or ``start`` outside a git work tree.
        found: the ``.keel`` folder found, or None.
    """

    start: Path
    top: Path
    found: Path | None

    @property
    def folder(self) -> Path:
        """The store folder to use: the one found, else ``.keel`` in the working directory."""
        return self.found or self.start / DEFAULT_STORE_DIR

    def describe(self) -> str:
        """Where it looked, for messages: "in /a/b and its parents up to /a"."""
        if self.top == self.start:
            return f"in {self.start}"
        return f"in {self.start} and its parents up to {self.top}"


def find_default_store(start: str | os.PathLike[str] | None = None) -> StoreSearch:
    """Look for an existing ``.keel`` folder as git looks for ``.git``: in ``start`` (default:
    the working directory) and its parents, up to the top of the enclosing git work tree.

    Outside a git work tree only ``start`` is looked at, so a stray ``.keel`` in a shared
    parent (``/tmp/.keel``) is never picked up.
    """
    here = Path(start if start is not None else os.getcwd()).absolute()
    chain = [here, *here.parents]
    top = next((folder for folder in chain if (folder / ".git").exists()), None)
    candidates = chain[: chain.index(top) + 1] if top is not None else [here]
    found = next(
        (c / DEFAULT_STORE_DIR for c in candidates if (c / DEFAULT_STORE_DIR).is_dir()), None
    )
    return StoreSearch(here, candidates[-1], found)


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
    search = None
    store = store or os.environ.get("KEEL_STORE") or config.store.url
    if not store:
        search = find_default_store()
        store = str(search.folder)
    folder = embedded_folder(store)
    artifacts = (
        artifacts
        or os.environ.get("KEEL_ARTIFACTS")
        or config.store.artifacts
        or (store if is_server_url(store) else None)
        or str((folder or Path(DEFAULT_STORE_DIR).resolve()) / "artifacts")
    )
    origin: Literal["argument", "env", "config", "default"] = "argument"
    if not project:
        project, origin = os.environ.get("KEEL_PROJECT"), "env"
    if not project:
        project, origin = config.project, "config"
    if not project:
        project, origin = DEFAULT_PROJECT, "default"
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
        store,
        artifacts,
        project,
        Path(cache_dir).expanduser().resolve(),
        options,
        store_search=search,
        project_origin=origin,
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
