"""The data catalog: every data source and sink of a config, built and checked once.

Building it imports ``plugins:`` first (so their types are known), then checks each entry
against the settings model of its type, so a typo in any key is reported with the file,
line and key path. Phases (``train``, ``test``, ``predict``, ``dataset``) get the entries
tagged for them plus every untagged one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from keel.config import Config, load_config
from keel.data.base import DataContext, DataSink, DataSource
from keel.data.registry import registry_key, sink_type, source_type
from keel.errors import ConfigError, NotFound


@dataclass(frozen=True)
class CatalogEntry:
    """One line of ``keel data list``."""

    name: str
    kind: str  # "source" or "sink"
    type: str
    tags: list[str]
    target: str
    expires: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "tags": self.tags,
            "target": self.target,
            "expires": self.expires,
        }


class DataCatalog:
    """The data sources and sinks of one config."""

    def __init__(self, config: Config, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        import_plugins(config)
        self.context = DataContext(
            base_dir=config.base_dir,
            dbms=config.settings.dbms,
            clock=clock,
            scrub=config.scrub,
        )
        self.sources: dict[str, DataSource] = {
            name: self._build("datasources", name, raw, source_type)  # type: ignore[misc]
            for name, raw in config.settings.datasources.items()
        }
        self.sinks: dict[str, DataSink] = {
            name: self._build("datasinks", name, raw, sink_type)  # type: ignore[misc]
            for name, raw in config.settings.datasinks.items()
        }

    @classmethod
    def from_config(cls, path: str | None = None, **kwargs: Any) -> DataCatalog:
        """The catalog of keel.yml (found as :func:`keel.config.load_config` finds it)."""
        return cls(load_config(path), **kwargs)

    def _build(
        self, section: str, name: str, raw: Any, lookup: Callable[[str], type]
    ) -> DataSource | DataSink:
        loc = (section, name)
        where = self.config.where(loc)
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: {section}.{name}: expected a mapping with a type: key")
        type_name = raw.get("type")
        if not isinstance(type_name, str) or not type_name:
            raise ConfigError(
                f"{where}: {section}.{name}.type: required, e.g. csv, parquet or dbms.<connection>"
            )
        served_as = type_name
        connection = self.config.settings.dbms.get(type_name.partition(".")[2])
        if (
            type_name.startswith("dbms.")
            and connection
            and connection.type not in ("sql", "oracle")
        ):
            served_as = f"dbms.{connection.type}"  # a plugin for that kind of database
        try:
            cls = lookup(served_as)
            if served_as != type_name and cls is lookup("dbms"):
                raise ConfigError(
                    f"{type_name} is a {connection.type} connection and no plugin serves "  # type: ignore[union-attr]
                    f"{served_as}: list a module that registers it under plugins:"
                )
        except ConfigError as exc:
            at = self.config.where((*loc, "type"))
            raise ConfigError(f"{at}: {section}.{name}.type: {exc}") from None
        if registry_key(type_name) == "dbms" and type_name.split(".", 1)[1:] == [""]:
            raise ConfigError(f"{where}: {section}.{name}.type: name the connection: dbms.<name>")
        from keel.config import validate_section

        settings = validate_section(cls.settings_model, raw, loc, self.config.document)
        return cls(name, settings, self.context)

    # --- lookups ---------------------------------------------------------------------

    def source(self, name: str) -> DataSource:
        return _get(self.sources, name, "data source", "datasources")

    def sink(self, name: str) -> DataSink:
        return _get(self.sinks, name, "data sink", "datasinks")

    def sources_for(self, phase: str | None = None) -> dict[str, DataSource]:
        """The sources given to ``phase``: those tagged with it and the untagged ones."""
        return {n: s for n, s in self.sources.items() if s.serves(phase)}

    def sinks_for(self, phase: str | None = None) -> dict[str, DataSink]:
        """The sinks given to ``phase``: those tagged with it and the untagged ones."""
        return {n: s for n, s in self.sinks.items() if s.serves(phase)}

    def entries(self) -> Iterator[CatalogEntry]:
        for name, source in self.sources.items():
            yield CatalogEntry(
                name, "source", source.type, source.tags, source.target(), source.settings.expires
            )
        for name, sink in self.sinks.items():
            yield CatalogEntry(name, "sink", sink.type, sink.tags, sink.target(), None)

    def clear_caches(self) -> None:
        for source in self.sources.values():
            source.clear_cache()

    def close(self) -> None:
        """Release database connections."""
        for engine in self.context.engines.values():
            engine.dispose()
        self.context.engines.clear()

    def __enter__(self) -> DataCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _get(table: dict[str, Any], name: str, kind: str, section: str) -> Any:
    found = table.get(name)
    if found is None:
        known = ", ".join(sorted(table)) or f"none; add one under {section}: in keel.yml"
        raise NotFound(f"no {kind} named {name!r} (known: {known})")
    return found


def import_plugins(config: Config) -> None:
    """Import the modules under ``plugins:`` (they register their types on import)."""
    import os
    import sys

    if not config.settings.plugins:
        return
    base = str(config.base_dir.resolve())
    if base not in sys.path:
        # Plugins usually sit beside keel.yml, like the model code does.
        sys.path.insert(0, base)
    if "" not in sys.path and "." not in sys.path and os.getcwd() not in sys.path:
        # ML Launchpad also looked in the working folder, last (``plugins: [examples.bogus]``
        # with ``-c examples/tree_cfg.yml`` from the project's root).
        sys.path.append(os.getcwd())
    importlib.invalidate_caches()  # a module written after the folder was first listed
    for i, module in enumerate(config.settings.plugins):
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ConfigError(
                f"{config.where(('plugins', i))}: plugins[{i}]: cannot import {module}: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def sources_and_sinks(
    config: Config, phase: str | None = None
) -> tuple[dict[str, DataSource], dict[str, DataSink]]:
    """The data sources and sinks of ``config`` given to ``phase`` (all when None)."""
    catalog = DataCatalog(config)
    return catalog.sources_for(phase), catalog.sinks_for(phase)
