"""Connections to the metadata store: URL rules, engine set-up per backend, migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock instead of failing with
"database is locked" when a read transaction tries to upgrade. PostgreSQL uses psycopg 3.
A store with no tables at all is migrated to the newest schema on first use; an older
schema is never changed silently: ``keel db upgrade`` does that.

A database that cannot be reached (stopped, restarting, unreachable network) raises
:class:`DatabaseUnreachable`, a :class:`~keel.errors.StoreUnavailable` that names the
database without credentials. Nothing has to be reset when it returns: the pool tests each
connection before handing it out (``pool_pre_ping``) and SQLAlchemy drops the whole pool on
the first disconnect error, so the next call connects afresh.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError, InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Connection, Engine
    from sqlalchemy.exc import DataError as DBAPIDataError

SQLITE_CACHE_KIB = 64 * 1024
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
SQLITE_BUSY_TIMEOUT_MS = 60_000
# Without a limit, connecting to a host that drops packets waits for the OS (minutes) and
# every request with it; PGCONNECT_TIMEOUT or ?connect_timeout= in the URL win over this.
PG_CONNECT_TIMEOUT_S = 10
_MIGRATIONS = Path(__file__).parent / "migrations"
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """Turn a store location (URL or folder path) into a SQLAlchemy URL.

    A plain path names a folder holding an embedded SQLite store (``keel.db``);
    ``postgresql://`` and ``postgres://`` get the psycopg 3 driver.
    """
    if "://" not in url:
        folder = Path(url).expanduser()
        return f"sqlite:///{(folder / 'keel.db').resolve()}"
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme.startswith(("sqlite", "postgresql+")):
        return url
    raise ConfigError(
        f"unsupported store URL scheme {scheme!r} in {mask_url(url)}: "
        "use a folder path, sqlite:///FILE or postgresql://USER@HOST:PORT/DB"
    )


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def get_engine(url: str) -> Engine:
    """The process-wide engine for a store URL, created and migrated on first use."""
    url = normalize_url(url)
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            ensure_schema(engine)
            _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests and forked workers call this)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create_engine(url: str) -> Engine:
    from sqlalchemy import create_engine, event

    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            if Path(path).parent.is_file():
                raise StoreUnavailable(
                    f"the embedded store {Path(path).parent} is a file, not a folder: "
                    "give a folder path or a sqlite:///FILE URL"
                )
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the embedded store folder {Path(path).parent}: "
                    f"{exc.strerror or exc}"
                ) from None
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event, not the driver, open transactions.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # A page cache that holds the hot indexes of a 100k-run store, and reads through
            # mmap instead of a copy per page: together they halve a run search.
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("keel_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    from sqlalchemy.engine import make_url

    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in make_url(url).query and not os.environ.get("PGCONNECT_TIMEOUT"):
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
    )


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on success."""
    from sqlalchemy.exc import DataError as DBAPIDataError
    from sqlalchemy.exc import InterfaceError, OperationalError

    try:
        with engine.connect().execution_options(keel_write=True) as conn, conn.begin():
            yield conn
    except (OperationalError, InterfaceError) as exc:  # the database is out of reach
        raise unavailable(engine, exc) from exc
    except (OverflowError, DBAPIDataError) as exc:
        if not out_of_range(exc):
            raise
        raise InvalidInput(OUT_OF_RANGE) from exc


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a read transaction."""
    from sqlalchemy.exc import DataError as DBAPIDataError
    from sqlalchemy.exc import InterfaceError, OperationalError

    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except (OperationalError, InterfaceError) as exc:  # the database is out of reach
        raise unavailable(engine, exc) from exc
    except (OverflowError, DBAPIDataError) as exc:
        if not out_of_range(exc):
            raise
        raise InvalidInput(OUT_OF_RANGE) from exc


#: SQLSTATE numeric_value_out_of_range (PostgreSQL: "bigint out of range")
_OUT_OF_RANGE_STATE = "22003"
OUT_OF_RANGE = (
    "a number is out of range: the metadata store keeps integers (steps, timestamps, sizes, "
    f"versions, limits) between {-(2**63)} and {2**63 - 1}"
)


def out_of_range(exc: OverflowError | DBAPIDataError) -> bool:
    """Whether ``exc`` says an integer is too large for the store's 64-bit columns (the
    caller's mistake): SQLite's driver raises OverflowError, PostgreSQL SQLSTATE 22003."""
    return isinstance(exc, OverflowError) or (
        getattr(exc.orig, "sqlstate", None) == _OUT_OF_RANGE_STATE
    )


class DatabaseUnreachable(StoreUnavailable):
    """The metadata store's database cannot be reached, or dropped the connection.

    Attributes:
        location: the database as ``postgresql://host:port/db`` (no user, no password).
        reason: why, in a few words, e.g. ``connection refused``.
    """

    def __init__(self, message: str, location: str, reason: str) -> None:
        super().__init__(message)
        self.location = location
        self.reason = reason


def ping(url: str) -> None:
    """Check that the metadata store at ``url`` answers (``SELECT 1``); raises
    :class:`~keel.errors.StoreUnavailable` saying why when it does not."""
    from sqlalchemy import text

    with read_connection(get_engine(url)) as conn:
        conn.execute(text("SELECT 1"))


def unavailable(engine: Engine, exc: BaseException) -> StoreUnavailable:
    """One line that says which store cannot be reached and why."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else repr(exc)
    url = mask_url(engine.url.render_as_string(hide_password=True))
    message = f"cannot use the metadata store at {url}: {reason}"
    if engine.dialect.name == "sqlite":  # a local file: nothing to wait for
        return StoreUnavailable(message)
    u = engine.url
    port = f":{u.port}" if u.port else ""
    location = f"{u.get_backend_name()}://{u.host or 'localhost'}{port}/{u.database or ''}"
    return DatabaseUnreachable(message, location, _short_reason(reason))


def _short_reason(reason: str) -> str:
    """libpq's ``connection failed: connection to server at "h", port p failed: Connection
    refused`` without what the location already says: ``connection refused``."""
    tail = reason.rsplit(" failed: ", 1)[-1].strip()
    return tail[:1].lower() + tail[1:] if tail else reason


# --- migrations -------------------------------------------------------------------------


def _alembic_config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest schema revision this keel knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def known_revisions() -> list[str]:
    """Every schema revision this keel knows, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(conn: Connection) -> str | None:
    """The schema revision a store is at, None when it has no keel tables."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate a store to the newest schema; returns (revision before, revision after)."""
    from alembic import command

    with write_transaction(engine) as conn:
        _lock_for_migration(conn)
        before = current_revision(conn)
        if before is not None and before not in known_revisions():
            url = mask_url(engine.url.render_as_string(hide_password=True))
            raise ConfigError(
                f"the metadata store at {url} is at schema revision {before}, which this keel "
                "does not know: a newer keel migrated it; upgrade keel here"
            )
        command.upgrade(_alembic_config(conn), "head")
        after = current_revision(conn) or ""
    return before, after


def ensure_schema(engine: Engine) -> None:
    """Create a new store's tables; refuse an out-of-date one with the command that fixes it."""
    from sqlalchemy.exc import OperationalError

    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
    except OperationalError as exc:
        raise unavailable(engine, exc) from exc
    head = head_revision()
    if revision == head:
        return
    if revision is None:
        upgrade(engine)
        return
    url = mask_url(engine.url.render_as_string(hide_password=True))
    if revision not in known_revisions():
        raise ConfigError(
            f"the metadata store at {url} is at schema revision {revision}, which this keel "
            f"does not know (it needs {head}): a newer keel migrated it; upgrade keel here"
        )
    raise ConfigError(
        f"the metadata store at {url} is at schema revision {revision}, this keel needs "
        f"{head}: run `keel db upgrade`"
    )


def _lock_for_migration(conn: Connection) -> None:
    """Serialise concurrent first uses of a new store (SQLite holds BEGIN IMMEDIATE already)."""
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
