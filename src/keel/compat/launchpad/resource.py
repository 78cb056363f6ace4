"""ML Launchpad's ``mllaunchpad.resource``: data source and sink plugins, and value helpers.

A plugin module (listed under ``plugins:``) subclasses :class:`DataSource` or
:class:`DataSink` and lists the ``type:`` strings it serves::

    from keel.compat.launchpad.resource import DataSource

    class BogusDataSource(DataSource):
        serves = ["bogus"]

        def get_dataframe(self, params=None, chunksize=None):
            return pd.DataFrame({"a": [3, 4, 5]}, **self.options)

        def get_raw(self, params=None, chunksize=None):
            raise NotImplementedError("no raw bogus")

Defining the class registers those types in keel's data registry
(:func:`keel.data.register_source` / :func:`~keel.data.register_sink`) through an adapter
(:class:`PluginSource`, :class:`PluginSink`) that builds the plugin with its ML Launchpad
constructor ``(identifier, datasource_config[, dbms_config])`` and lets keel apply
``expires`` / ``cache_size`` caching. A plugin built directly (in its own tests) caches its
``get_*`` results by the same rules, as ML Launchpad's did.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict

from keel.data.base import DataContext, DataSettings, SinkSettings, SourceSettings
from keel.data.base import DataSink as KeelDataSink
from keel.data.base import DataSource as KeelDataSource
from keel.data.helpers import order_columns, to_plain_python
from keel.data.registry import register_sink, register_source
from keel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from keel.data.base import Params
    from keel.data.cache import ReadCache

__all__ = [
    "DataSink",
    "DataSource",
    "ModelStore",
    "PluginSink",
    "PluginSource",
    "Raw",
    "create_data_sources_and_sinks",
    "get_user_pw",
    "order_columns",
    "to_plain_python_obj",
]

log = logging.getLogger("keel.compat.launchpad")

Raw = str | bytes

# Marks the built-in classes of keel.compat.launchpad.datasources: keel serves their types
# itself, so defining them registers nothing.
_BUILTIN = "__keel_builtin__"


def _serves(cls: type) -> list[str]:
    """The types ``cls`` itself declares (not inherited), checked."""
    if "serves" not in vars(cls) or vars(cls).get(_BUILTIN):
        return []
    serves = cls.serves  # type: ignore[attr-defined]
    if isinstance(serves, str) or not all(isinstance(s, str) and s for s in serves):
        raise ConfigError(
            f"{cls.__module__}.{cls.__qualname__}.serves: expected a list of type names "
            f'such as ["bogus"], got {serves!r}'
        )
    return list(serves)


class _Plugin:
    """What ML Launchpad's sources and sinks share: id, config, options and tags."""

    serves: ClassVar[list[str]] = []

    def __init__(
        self,
        identifier: str,
        datasource_config: dict[str, Any],
        sub_config: dict[str, Any] | None = None,
    ) -> None:
        self.id = identifier
        self.config = datasource_config
        self.options: dict[str, Any] = dict(datasource_config.get("options") or {})
        tags = datasource_config.get("tags") or []
        self.tags: list[str] = [tags] if isinstance(tags, str) else list(tags)
        self.dbms_config = sub_config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"


class DataSource(_Plugin):
    """A source the ML Launchpad way: implement ``get_dataframe`` and ``get_raw``.

    ``self.expires`` (0 never, -1 forever, N seconds) and ``self.cache_size`` come from the
    config; keel caches what the ``get_*`` methods return accordingly.
    """

    def __init__(
        self,
        identifier: str,
        datasource_config: dict[str, Any],
        sub_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(identifier, datasource_config, sub_config)
        self.expires: int = int(datasource_config.get("expires", 0))
        self.cache_size: int = int(datasource_config.get("cache_size", 32))
        self._read_cache: ReadCache | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ML Launchpad cached get_* by a metaclass; here the methods a class defines are
        # wrapped once, and keel's catalog calls the originals (it caches them itself).
        # (The built-ins of .datasources read through keel's own types, which cache.)
        for name in ("get_dataframe", "get_raw"):
            method = vars(cls).get(name)
            if vars(cls).get(_BUILTIN):
                break
            if callable(method) and not hasattr(method, "__keel_uncached__"):
                setattr(cls, name, _cached(method))
        types = _serves(cls)
        if types:
            register_source(*types)(_source_adapter(cls))

    def get_dataframe(
        self, params: dict[str, Any] | None = None, chunksize: int | None = None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_dataframe")

    def get_raw(self, params: dict[str, Any] | None = None, chunksize: int | None = None) -> Raw:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_raw")


def _cached(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` answering from the instance's cache as ``expires`` says."""

    @functools.wraps(method)
    def get(self: DataSource, params: Any = None, chunksize: int | None = None) -> Any:
        if self.expires == 0:
            return method(self, params, chunksize)
        if chunksize is not None:
            raise ConfigError(
                f"data source {self.id!r}: chunksize cannot be combined with caching "
                f"(expires: {self.expires}); set expires: 0 to read in chunks"
            )
        if self._read_cache is None:
            from keel.data.cache import ReadCache

            self._read_cache = ReadCache(self.expires, self.cache_size)
        from keel.data.cache import cache_key

        key = cache_key(method.__name__, params)
        return self._read_cache.get_or_load(key, lambda: method(self, params, chunksize))

    get.__keel_uncached__ = method  # type: ignore[attr-defined]
    return get


def _uncached(plugin: DataSource, name: str) -> Callable[..., Any]:
    bound = getattr(plugin, name)
    original = getattr(bound, "__keel_uncached__", None)
    return functools.partial(original, plugin) if original is not None else bound


class DataSink(_Plugin):
    """A sink the ML Launchpad way: implement ``put_dataframe`` and ``put_raw``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        types = _serves(cls)
        if types:
            register_sink(*types)(_sink_adapter(cls))

    def put_dataframe(
        self, dataframe: pd.DataFrame, params: dict[str, Any] | None = None, chunksize: Any = None
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement put_dataframe")

    def put_raw(
        self, raw_data: Raw, params: dict[str, Any] | None = None, chunksize: Any = None
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement put_raw")


# --- keel's side: the adapters its catalog builds ------------------------------------------


class PluginSourceSettings(SourceSettings):
    """A plugin's keys: keel's own plus whatever the plugin reads from ``self.config``."""

    model_config = ConfigDict(extra="allow")


class PluginSinkSettings(SinkSettings):
    model_config = ConfigDict(extra="allow")


def _plugin_config(settings: DataSettings) -> dict[str, Any]:
    """The entry as written in the config (keys keel filled in by default left out)."""
    return settings.model_dump(exclude_unset=True)


def _build(plugin_cls: type[_Plugin], name: str, settings: DataSettings, ctx: DataContext) -> Any:
    conf = _plugin_config(settings)
    type_name = settings.type
    if type_name.startswith("dbms."):
        connection = type_name.split(".", 1)[1]
        dbms = ctx.dbms.get(connection)
        if dbms is None:
            raise ConfigError(
                f"{name}.type {type_name}: no dbms connection {connection!r}; "
                f"add dbms: {{{connection}: {{...}}}}"
            )
        return plugin_cls(name, conf, dbms.model_dump())
    return plugin_cls(name, conf)


class PluginSource(KeelDataSource):
    """keel's data source over an ML Launchpad-style plugin class."""

    settings_model: ClassVar[type[DataSettings]] = PluginSourceSettings
    plugin_class: ClassVar[type[DataSource]]

    def __init__(self, name: str, settings: DataSettings, context: DataContext) -> None:
        super().__init__(name, settings, context)
        self.plugin: DataSource = _build(self.plugin_class, name, settings, context)

    @property
    def chunked(self) -> bool:  # type: ignore[override]
        """Whether keel may ask for chunks: many ML Launchpad plugins refuse ``chunksize``
        (its own example raises NotImplementedError), so only when the class says
        ``chunked = True``."""
        return bool(getattr(self.plugin_class, "chunked", False))

    def read_dataframe(
        self, params: Params, chunksize: int | None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        get = _uncached(self.plugin, "get_dataframe")
        return get(dict(params) if params is not None else None, chunksize)  # type: ignore[no-any-return]

    def read_raw(self, params: Params) -> str | bytes:
        get = _uncached(self.plugin, "get_raw")
        return get(dict(params) if params is not None else None, None)  # type: ignore[no-any-return]

    def target(self) -> str:
        return f"plugin {self.plugin_class.__module__}.{self.plugin_class.__qualname__}"


class PluginSink(KeelDataSink):
    """keel's data sink over an ML Launchpad-style plugin class."""

    settings_model: ClassVar[type[DataSettings]] = PluginSinkSettings
    plugin_class: ClassVar[type[DataSink]]

    def __init__(self, name: str, settings: DataSettings, context: DataContext) -> None:
        super().__init__(name, settings, context)
        self.plugin: DataSink = _build(self.plugin_class, name, settings, context)

    def write_dataframe(self, df: pd.DataFrame, params: Params) -> None:
        self.plugin.put_dataframe(df, dict(params) if params is not None else None)

    def write_raw(self, data: str | bytes, params: Params) -> None:
        self.plugin.put_raw(data, dict(params) if params is not None else None)

    def target(self) -> str:
        return f"plugin {self.plugin_class.__module__}.{self.plugin_class.__qualname__}"


def _source_adapter(cls: type[DataSource]) -> type[PluginSource]:
    return type(cls.__name__, (PluginSource,), {"plugin_class": cls, "__module__": cls.__module__})


def _sink_adapter(cls: type[DataSink]) -> type[PluginSink]:
    return type(cls.__name__, (PluginSink,), {"plugin_class": cls, "__module__": cls.__module__})


# --- the rest of mllaunchpad.resource that user code imports -------------------------------


def to_plain_python_obj(obj: Any) -> Any:
    """``obj`` as plain JSON-able Python, as ML Launchpad made predictions and metrics.

    keel's :func:`keel.data.to_plain_python`, except that a DataFrame becomes a dict of
    columns (``DataFrame.to_dict()``), the shape ML Launchpad gave.
    """
    import sys

    pandas = sys.modules.get("pandas")  # not imported: obj cannot be a DataFrame
    if isinstance(obj, dict):
        return {str(k): to_plain_python_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain_python_obj(v) for v in obj]
    if pandas is not None and isinstance(obj, pandas.DataFrame):
        return to_plain_python(obj.to_dict())
    return to_plain_python(obj)


def get_user_pw(user_var: str, password_var: str) -> tuple[str, str | None]:
    """The user name and password held in the environment variables named."""
    user = os.environ.get(user_var)
    password = os.environ.get(password_var)
    if user is None:
        raise ConfigError(f"environment variable {user_var} (the user name) is not set; set it")
    if password is None:
        log.warning("password environment variable %s is not set", password_var)
    return user, password


def create_data_sources_and_sinks(
    config: dict[str, Any], tags: str | list[str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data sources and sinks of an ML Launchpad config dict (keel's objects), by tag.

    Untagged entries are always included, as in ML Launchpad.
    """
    from keel.compat.launchpad.config import keel_config
    from keel.data.catalog import DataCatalog

    wanted = [tags] if isinstance(tags, str) else list(tags or [])
    catalog = DataCatalog(keel_config(config))

    def keep(item: Any) -> bool:
        return not wanted or not item.tags or bool(set(wanted) & set(item.tags))

    sources = {n: s for n, s in catalog.sources.items() if keep(s)}
    sinks = {n: s for n, s in catalog.sinks.items() if keep(s)}
    return sources, sinks


class ModelStore:
    """``mllaunchpad.resource.ModelStore``: here only ``list_models`` (keel's store holds the
    models; see :func:`keel.compat.launchpad.list_models`)."""

    def __init__(self, config: dict[str, Any] | str | os.PathLike[str]) -> None:
        self.config = config

    def list_models(self) -> dict[str, Any]:
        from keel.compat.launchpad.model_actions import list_models

        return list_models(self.config)
