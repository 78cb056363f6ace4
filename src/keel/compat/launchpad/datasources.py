"""ML Launchpad's ``mllaunchpad.datasources``: its built-in source and sink classes, served by keel.

In a config, ML Launchpad's built-in types (``csv``, ``euro_csv``, ``text_file``,
``binary_file``, ``dbms.<connection>`` of type ``sql`` or ``oracle``) are keel's own types
of the same names (:mod:`keel.data.files`, :mod:`keel.data.sql`); nothing here is needed
for them. These classes are for code that names them: building one directly
(``FileDataSource("petals", {"type": "csv", "path": "iris.csv"})``) or subclassing one in
a plugin. Each instance reads and writes through the keel type of its config; defining
these classes registers nothing (keel serves the types already), while a subclass with
its own ``serves`` registers like any plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from keel.compat.launchpad.resource import DataSink, DataSource, Raw
from keel.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SUPPORTED_FILE_TYPES",
    "FileDataSink",
    "FileDataSource",
    "OracleDataSink",
    "OracleDataSource",
    "SqlDataSink",
    "SqlDataSource",
]

SUPPORTED_FILE_TYPES = ["csv", "euro_csv", "text_file", "binary_file"]


def _keel_object(kind: str, identifier: str, config: dict[str, Any], sub: Any) -> Any:
    """The keel source or sink serving ``config['type']``, read relative to the working folder."""
    from keel.config import validate_section
    from keel.config.models import DbmsSection
    from keel.data.base import DataContext
    from keel.data.registry import sink_type, source_type

    type_name = config.get("type")
    if not isinstance(type_name, str):
        raise ConfigError(f"{kind} {identifier!r}: type is required, e.g. csv")
    cls = (source_type if kind == "datasources" else sink_type)(type_name)
    settings = validate_section(cls.settings_model, config, (kind, identifier), None)
    dbms: dict[str, DbmsSection] = {}
    if type_name.startswith("dbms."):
        if sub is None:
            raise ConfigError(f"{kind} {identifier!r}: type {type_name} needs its dbms config")
        dbms[type_name.split(".", 1)[1]] = DbmsSection.model_validate(sub)
    return cls(identifier, settings, DataContext(base_dir=Path.cwd(), dbms=dbms))


class _KeelSource(DataSource):
    __keel_builtin__ = True

    def __init__(
        self,
        identifier: str,
        datasource_config: dict[str, Any],
        sub_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(identifier, datasource_config, sub_config)
        self.keel = _keel_object("datasources", identifier, datasource_config, sub_config)

    def get_dataframe(
        self, params: dict[str, Any] | None = None, chunksize: int | None = None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        return self.keel.get_dataframe(params, chunksize)  # type: ignore[no-any-return]

    def get_raw(self, params: dict[str, Any] | None = None, chunksize: int | None = None) -> Raw:
        return self.keel.get_raw(params, chunksize)  # type: ignore[no-any-return]


class _KeelSink(DataSink):
    __keel_builtin__ = True

    def __init__(
        self,
        identifier: str,
        datasink_config: dict[str, Any],
        sub_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(identifier, datasink_config, sub_config)
        self.keel = _keel_object("datasinks", identifier, datasink_config, sub_config)

    def put_dataframe(
        self, dataframe: pd.DataFrame, params: dict[str, Any] | None = None, chunksize: Any = None
    ) -> None:
        self.keel.put_dataframe(dataframe, params)

    def put_raw(
        self, raw_data: Raw, params: dict[str, Any] | None = None, chunksize: Any = None
    ) -> None:
        self.keel.put_raw(raw_data, params)


class FileDataSource(_KeelSource):
    """Files: ``csv``, ``euro_csv``, ``text_file``, ``binary_file`` (keel's file types)."""

    __keel_builtin__ = True
    serves: ClassVar[list[str]] = SUPPORTED_FILE_TYPES


class FileDataSink(_KeelSink):
    """Files: ``csv``, ``euro_csv``, ``text_file``, ``binary_file`` (keel's file types)."""

    __keel_builtin__ = True
    serves: ClassVar[list[str]] = SUPPORTED_FILE_TYPES


class SqlDataSource(_KeelSource):
    """A query on a ``dbms`` connection of type ``sql`` (keel's ``dbms.<connection>``)."""

    __keel_builtin__ = True
    serves: ClassVar[list[str]] = ["dbms.sql"]


class SqlDataSink(_KeelSink):
    """A table on a ``dbms`` connection of type ``sql`` (keel's ``dbms.<connection>``)."""

    __keel_builtin__ = True
    serves: ClassVar[list[str]] = ["dbms.sql"]


class OracleDataSource(SqlDataSource):
    """A query on a ``dbms`` connection of type ``oracle`` (keel's ``dbms.<connection>``)."""

    __keel_builtin__ = True
    serves: ClassVar[list[str]] = ["dbms.oracle"]


class OracleDataSink(SqlDataSink):
    """A table on a ``dbms`` connection of type ``oracle`` (keel's ``dbms.<connection>``)."""

    __keel_builtin__ = True
    serves: ClassVar[list[str]] = ["dbms.oracle"]
