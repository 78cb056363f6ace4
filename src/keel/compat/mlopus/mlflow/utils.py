"""``mlopus.mlflow.utils``: ``get_api``, ``list_api_plugins`` and ``api_conf_schema``.

Settings come from ``conf`` over the environment's ``MLOPUS_MLFLOW_CONF_*`` variables (a
``__`` in the name is a nesting level, as in mlopus), parsed by pydantic; a wrong setting
is a :class:`keel.errors.ConfigError` naming it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi
from keel.errors import ConfigError

ENV_PREFIX = "MLOPUS_MLFLOW_CONF_"


def _plugins() -> dict[str, type[BaseMlflowApi]]:
    from keel.compat.mlopus.mlflow.providers.generic import GenericMlflowApi
    from keel.compat.mlopus.mlflow.providers.mlflow import MlflowApi

    return {"mlflow": MlflowApi, "keel": MlflowApi, "generic": GenericMlflowApi}


def list_api_plugins() -> list[str]:
    """The names ``get_api(plugin=…)`` accepts."""
    return sorted(_plugins())


def get_api(
    plugin: str | None = None,
    cls: type[BaseMlflowApi] | str | None = None,
    conf: Mapping[str, Any] | None = None,
) -> Any:
    """mlopus' MLflow API on keel, built from mlopus' settings.

    Args:
        plugin: ``mlflow`` (default; also ``keel``) or ``generic``.
        cls: an API class, or ``"package.module:Class"``, instead of ``plugin``.
        conf: the settings (``tracking_uri``, ``cache_dir``, ``offline_mode``,
            ``always_pull_artifacts``, ``pull_artifacts_in_offline_mode``,
            ``cache_local_artifacts``, ``temp_artifacts_dir``, ``file_transfer`` …).
    """
    from pydantic import ValidationError

    api_cls = _api_cls(plugin, cls)
    settings = _deep_merge(_env_conf(), dict(conf or {}))
    try:
        return api_cls.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "conf"
        raise ConfigError(
            f"mlopus API setting {where!r}: {first['msg']}; "
            f"see keel.compat.mlopus.mlflow.api_conf_schema() for the settings"
        ) from None


def api_conf_schema(
    plugin: str | None = None, cls: type[BaseMlflowApi] | str | None = None
) -> dict[str, Any]:
    """The JSON schema of an API class's settings."""
    return _api_cls(plugin, cls).model_json_schema()


def _api_cls(plugin: str | None, cls: type[BaseMlflowApi] | str | None) -> type[BaseMlflowApi]:
    if plugin is not None and cls is not None:
        raise ConfigError("get_api: give plugin= or cls=, not both")
    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        found = getattr(importlib.import_module(module), name or "", None)
        if not (isinstance(found, type) and issubclass(found, BaseMlflowApi)):
            raise ConfigError(
                f"get_api(cls={cls!r}): not a BaseMlflowApi class; use 'module:Class'"
            )
        return found
    if cls is not None:
        return cls
    plugins = _plugins()
    if (plugin or "mlflow") not in plugins:
        raise ConfigError(
            f"get_api(plugin={plugin!r}): no such API plugin on keel; "
            f"use one of {', '.join(sorted(plugins))}"
        )
    return plugins[plugin or "mlflow"]


def _env_conf() -> dict[str, Any]:
    conf: dict[str, Any] = {}
    for key, value in os.environ.items():
        if value and key.startswith(ENV_PREFIX):
            node = conf
            parts = key[len(ENV_PREFIX) :].lower().split("__")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
    return conf


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
