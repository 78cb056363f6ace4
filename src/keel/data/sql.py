"""SQL data sources and sinks (``type: dbms.<connection>``) through SQLAlchemy.

A source runs its ``query`` (or reads its ``table``) with the call's params bound as
``:name`` parameters, never formatted into the SQL; SQL NULLs come back as NaN. A sink
appends to or replaces its ``table`` inside one transaction, so a failed write leaves the
table as it was. Connections are the ``dbms:`` section's entries: one engine each, shared by
every source and sink that names it. Messages show URLs with the password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from keel.data.base import DataContext, DataSink, DataSource, Params, SinkSettings, SourceSettings
from keel.data.registry import register_sink, register_source
from keel.errors import ConfigError, DataError, InvalidInput

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from keel.config.models import DbmsSection


class SqlSourceSettings(SourceSettings):
    query: str | None = None
    table: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SqlSourceSettings:
        if (self.query is None) == (self.table is None):
            raise ValueError("give either query (SQL with :params) or table, not both")
        return self


class SqlSinkSettings(SinkSettings):
    table: str
    if_exists: Literal["append", "replace", "fail"] = "append"


def connection_name(type_name: str) -> str:
    return type_name.split(".", 1)[1] if "." in type_name else ""


def build_url(name: str, section: DbmsSection) -> Any:
    """The SQLAlchemy URL of connection ``name`` (user and password filled in)."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    if section.connection_string is not None:
        try:
            url = make_url(section.connection_string)
        except ArgumentError:
            raise ConfigError(
                f"dbms.{name}.connection_string is not a database URL; "
                "expected dialect+driver://user@host/database"
            ) from None
    else:  # type: oracle, given by parts
        url = URL.create(
            "oracle+oracledb",
            host=section.host,
            port=section.port or 1521,
            query={"service_name": section.service_name or ""},
        )
    if section.user is not None:
        url = url.set(username=section.user)
    if section.password is not None:
        url = url.set(password=section.password)
    return url


def masked(url: Any) -> str:
    return url.render_as_string(hide_password=True)


def engine_for(context: DataContext, name: str, label: str) -> Engine:
    """The engine of connection ``name``, created on first use and then shared."""
    engine = context.engines.get(name)
    if engine is not None:
        return engine
    section = context.dbms.get(name)
    if section is None:
        known = ", ".join(sorted(context.dbms)) or "none configured"
        raise ConfigError(
            f"{label}: no connection {name!r} under dbms: (known: {known}); "
            f"add dbms: {{{name}: {{connection_string: ...}}}}"
        )
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = build_url(name, section)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    kwargs.update(section.engine_kwargs)
    try:
        engine = create_engine(url, connect_args=dict(section.options), **kwargs)
    except NoSuchModuleError as exc:
        raise ConfigError(
            f"dbms.{name}: no SQLAlchemy dialect for {url.drivername}: {exc}; "
            "install the driver package"
        ) from None
    except (TypeError, ArgumentError) as exc:
        raise ConfigError(f"dbms.{name}: bad engine setting: {context.scrub(str(exc))}") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"dbms.{name}: the driver for {url.drivername} is not installed ({exc.name})"
        ) from None
    if _legacy_sqlite_transactions(engine, kwargs, section.options):
        _emit_own_begin(engine)
    return context.engines.setdefault(name, engine)


def _legacy_sqlite_transactions(engine: Engine, kwargs: dict[str, Any], options: Any) -> bool:
    """Whether ``engine`` is pysqlite left in its legacy transaction mode.

    In that mode sqlite3 opens a transaction only before INSERT/UPDATE/DELETE: CREATE and
    DROP TABLE run outside it and are committed at once, so a sink write that fails would
    still leave a replaced table dropped (or a new one created, empty). Left alone when the
    config picks the transaction handling itself (``isolation_level``, ``autocommit``).
    """
    if engine.dialect.name != "sqlite" or engine.dialect.driver != "pysqlite":
        return False
    execution_options = kwargs.get("execution_options") or {}
    chosen = "isolation_level" in kwargs or "isolation_level" in execution_options
    return not (chosen or {"isolation_level", "autocommit"} & set(options))


def _emit_own_begin(engine: Engine) -> None:
    # SQLAlchemy's recipe for transactional DDL on pysqlite: sqlite3 emits no BEGIN of its
    # own, SQLAlchemy emits one when a transaction starts (sqlite3 still commits/rolls back).
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


class _SqlData:
    context: DataContext
    label: str
    type: str

    @property
    def connection(self) -> str:
        return connection_name(self.type)

    def engine(self) -> Engine:
        return engine_for(self.context, self.connection, self.label)

    def failed(self, exc: BaseException, doing: str) -> DataError:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        if not isinstance(exc, DBAPIError) and isinstance(exc.__cause__, DBAPIError):
            exc = exc.__cause__  # pandas wraps the driver's error in its own DatabaseError

        engine = self.context.engines.get(self.connection)
        where = f"'{self.connection}' ({masked(engine.url)})" if engine is not None else ""
        origin = getattr(exc, "orig", None) or exc
        message = str(origin).strip().splitlines()[0] if str(origin).strip() else ""
        message = self.context.scrub(message)
        if isinstance(exc, OperationalError | InterfaceError) and _is_connect_error(exc):
            return DataError(f"{self.label}: cannot connect to database {where}: {message}")
        if isinstance(exc, DBAPIError):
            return DataError(f"{self.label}: {doing} failed on database {where}: {message}")
        return DataError(f"{self.label}: {doing} failed: {type(exc).__name__}: {message}")


def _is_connect_error(exc: Any) -> bool:
    # The driver's connect() failed: SQLAlchemy marks it by the statement being None.
    return getattr(exc, "connection_invalidated", False) or getattr(exc, "statement", "") is None


def split_table(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


@register_source("dbms")
class SqlSource(_SqlData, DataSource):
    """Rows of a query or table as DataFrames."""

    settings_model = SqlSourceSettings
    settings: SqlSourceSettings
    chunked = True

    def target(self) -> str:
        return self.settings.table or " ".join((self.settings.query or "").split())

    def statement(self) -> Any:
        from sqlalchemy import literal_column, select, table, text

        if self.settings.query is not None:
            return text(self.settings.query)
        schema, name = split_table(self.settings.table or "")
        return select(literal_column("*")).select_from(table(name, schema=schema))

    def read_dataframe(
        self, params: Params, chunksize: int | None
    ) -> pd.DataFrame | Iterator[pd.DataFrame]:
        from sqlalchemy.exc import SQLAlchemyError

        statement = self.statement()
        bound = dict(params or {})
        if self.settings.query is not None:
            missing = sorted(set(statement._bindparams) - set(bound))
            if missing:
                raise InvalidInput(
                    f"{self.label}: the query needs params {', '.join(missing)}; "
                    f"pass them, e.g. get_dataframe(params={{{missing[0]!r}: ...}})"
                )
        elif bound:
            raise InvalidInput(f"{self.label}: a table source takes no params, got {bound}")
        if chunksize is not None:
            return self._chunks(statement, bound, chunksize)
        import pandas as pd

        try:
            with self.engine().connect() as conn:
                frame = pd.read_sql(statement, conn, params=bound, **self.settings.options)
        except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise self.failed(exc, "the query") from None
        return nulls_as_nan(frame)

    def _chunks(self, statement: Any, bound: dict[str, Any], size: int) -> Iterator[pd.DataFrame]:
        import pandas as pd
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine().connect() as conn:
                for frame in pd.read_sql(
                    statement, conn, params=bound, chunksize=size, **self.settings.options
                ):
                    yield nulls_as_nan(frame)
        except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise self.failed(exc, "the query") from None


def nulls_as_nan(frame: pd.DataFrame) -> pd.DataFrame:
    """SQL NULLs come back as None in object columns: make every missing value NaN."""
    import numpy as np

    objects = [name for name, dtype in frame.dtypes.items() if dtype == np.dtype(object)]
    if objects:
        frame = frame.copy(deep=False)
        for name in objects:
            frame[name] = frame[name].where(frame[name].notna(), np.nan)
    return frame


@register_sink("dbms")
class SqlSink(_SqlData, DataSink):
    """A DataFrame appended to (or replacing) a table, in one transaction."""

    settings_model = SqlSinkSettings
    settings: SqlSinkSettings

    def target(self) -> str:
        return self.settings.table

    def write_dataframe(self, df: pd.DataFrame, params: Params) -> None:
        self.write_chunks(iter([df]), params)

    def write_chunks(self, chunks: Iterator[pd.DataFrame], params: Params) -> None:
        if params:
            raise InvalidInput(f"{self.label}: a table sink takes no params, got {dict(params)}")
        schema, name = split_table(self.settings.table)
        kwargs: dict[str, Any] = {"index": False, "if_exists": self.settings.if_exists}
        kwargs.update(self.settings.options)
        self._write_frames(chunks, schema, name, kwargs)

    def _write_frames(
        self, frames: Iterator[pd.DataFrame], schema: str | None, name: str, kwargs: dict[str, Any]
    ) -> None:
        """Write frames in one transaction: the first with ``if_exists``, the rest appended."""
        import pandas as pd
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine().begin() as conn:
                for df in frames:
                    df.to_sql(name, conn, schema=schema, **kwargs)
                    kwargs = {**kwargs, "if_exists": "append"}
        except (SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise self.failed(exc, f"writing table {self.settings.table}") from None
        except ValueError as exc:  # pandas: "Table 'x' already exists." with if_exists=fail
            raise DataError(f"{self.label}: {exc}") from None
