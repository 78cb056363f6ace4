"""Reading keel.yml: where it is, and the settings the store and client need.

The file is found by an explicit path, then env ``KEEL_CONFIG``, then ``./keel.yml``.
This module holds the sections the tracking layer needs now (``project`` and ``store``);
the data, model, api and jobs sections are validated by the parts that own them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import ConfigError

DEFAULT_CONFIG_NAME = "keel.yml"


@dataclass(frozen=True)
class StoreSettings:
    """Where the metadata and the artifacts live."""

    url: str | None = None
    artifacts: str | None = None


@dataclass(frozen=True)
class Config:
    """The parsed config file (only what the tracking layer reads)."""

    path: Path | None
    project: str | None
    store: StoreSettings
    raw: dict[str, Any]


def find_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use, or None when there is none (explicit paths must exist)."""
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise ConfigError(f"config file {found} not found")
        return found
    env = os.environ.get("KEEL_CONFIG")
    if env:
        found = Path(env)
        if not found.is_file():
            raise ConfigError(f"config file {found} (from KEEL_CONFIG) not found")
        return found
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the ``project`` and ``store`` sections of the config file."""
    found = find_config(path)
    if found is None:
        return Config(None, None, StoreSettings(), {})
    import yaml

    try:
        raw = yaml.safe_load(found.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{found}{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{found}: expected a mapping of sections, got {type(raw).__name__}")
    project = raw.get("project")
    if project is not None and not isinstance(project, str):
        raise ConfigError(f"{found}: project: expected a name, got {project!r}")
    store = raw.get("store")
    if store is None:
        settings = StoreSettings()
    elif isinstance(store, str):
        settings = StoreSettings(url=store)
    elif isinstance(store, dict):
        unknown = set(store) - {"url", "artifacts"}
        if unknown:
            raise ConfigError(
                f"{found}: store: unknown key(s) {', '.join(sorted(unknown))}: "
                "use url and artifacts"
            )
        settings = StoreSettings(url=store.get("url"), artifacts=store.get("artifacts"))
    else:
        raise ConfigError(f"{found}: store: expected a URL or {{url, artifacts}}, got {store!r}")
    return Config(found, project, settings, raw)
