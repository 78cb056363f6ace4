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

A database that refuses a statement as too big or too deep (SQLite's "parser stack
overflow", "Expression tree is too large", "at most 64 tables in a join", "too many SQL
variables"; PostgreSQL's SQLSTATE class 54, "program limit exceeded", such as "stack depth
limit exceeded") is answering, not out of reach: that is the caller's
:class:`~keel.errors.QueryTooComplex`.

A read may run with a time budget (:func:`read_connection`'s ``timeout_s``; the server's
``server.query_timeout_s``). PostgreSQL stops it itself (``statement_timeout``, set on the
connection only when the budget changes, so a read costs no extra round trip). SQLite runs
a progress handler every :data:`SQLITE_PROGRESS_STEPS` virtual machine steps that stops the
statement once the budget is spent. Its ``REGEXP`` (keel's ``$regex``) runs in the
``regex`` engine with the budget left as its timeout and without the GIL, so a pattern that
backtracks for ever neither outlives the budget nor stalls the process's other threads.
Either way the caller gets :class:`~keel.errors.QueryTimeout`.
"""

from __future__ import annotations

import enum
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import (
    ConfigError,
    InvalidInput,
    QueryTimeout,
    QueryTooComplex,
    StoreUnavailable,
)

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
# Connections a process keeps open to PostgreSQL. A server runs each request in one of
# anyio's 40 threads: with SQLAlchemy's default 5 kept (+10 overflow), 20 concurrent clients
# made the pool close an overflow connection on nearly every return and open a new one on the
# next checkout (a PostgreSQL backend forked, authenticated, `SET jit` sent): 12% of a
# log_batch's time. 20 kept + 20 overflow covers the 40 threads; idle ones cost a few MB each.
PG_POOL_SIZE = 20
PG_POOL_OVERFLOW = 20
#: SQLite virtual machine steps between two looks at the clock (a few hundred µs of work)
SQLITE_PROGRESS_STEPS = 20_000
#: the setting that holds the budget of a server's queries (named in refusals)
QUERY_TIMEOUT_SETTING = "server.query_timeout_s"
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


#: tables a new store fills by itself (the schema revision, project names, version counters)
_BOOKKEEPING_TABLES = {"alembic_version", "projects", "version_counters"}


def holds_records(folder: str | os.PathLike[str]) -> bool:
    """Whether an embedded store folder holds anything made by a user: a row in a table
    other than the bookkeeping a new store fills by itself, or an artifact file. Read
    without creating or migrating anything (a store that cannot be read counts as holding
    records: it is never taken for empty)."""
    import sqlite3

    root = Path(folder)
    artifacts = root / "artifacts"
    if artifacts.is_dir() and any(p.is_file() for p in artifacts.rglob("*")):
        return True
    db = root / "keel.db"
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return True
    try:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in _BOOKKEEPING_TABLES and not name.startswith("sqlite_")
        ]
        # names come from the database's own catalogue, quoted: no outside input here
        return any(conn.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() for name in tables)
    except sqlite3.Error:
        return True
    finally:
        conn.close()


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
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            # Let SQLAlchemy's "begin" event, not the driver, open transactions.
            dbapi_connection.isolation_level = None
            clock = _Clock()
            record.info[_CLOCK] = clock
            # replaces SQLAlchemy's REGEXP (Python's re, which holds the GIL however long a
            # pattern backtracks); registered after it, so this one is called
            dbapi_connection.create_function("regexp", 2, clock.regexp, deterministic=True)
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
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=PG_POOL_SIZE,
        max_overflow=PG_POOL_OVERFLOW,
        connect_args=connect_args,
    )

    @event.listens_for(engine, "connect")
    def _on_connect_pg(dbapi_connection: Any, _record: Any) -> None:
        # keel's queries are index lookups over at most a few 100,000 rows, which JIT never
        # speeds up; but a query with many conditions looks costly enough to PostgreSQL to
        # be compiled first: 20 conditions on params took 4.8 s to compile, 1 ms to run
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET jit = off")
            dbapi_connection.commit()
        except Exception:  # a server without the setting (before PostgreSQL 11)
            dbapi_connection.rollback()

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction, committed on success."""
    from sqlalchemy.exc import DataError as DBAPIDataError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    try:
        with engine.connect().execution_options(keel_write=True) as conn, conn.begin():
            yield conn
    except (OperationalError, InterfaceError) as exc:  # the database is out of reach
        raise (
            _refused(engine, exc) or _write_stopped(engine, exc) or unavailable(engine, exc)
        ) from exc
    except (OverflowError, DBAPIDataError) as exc:
        if out_of_range(exc):
            raise InvalidInput(OUT_OF_RANGE) from exc
        _raise_if_refused(engine, exc)
        raise
    except DBAPIError as exc:
        _raise_if_refused(engine, exc)
        raise


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"


#: ``read_connection(timeout_s=UNCHANGED)``: whatever budget the pooled connection has
UNCHANGED = _Unchanged.UNCHANGED


@contextmanager
def read_connection(
    engine: Engine, timeout_s: float | _Unchanged | None = UNCHANGED
) -> Iterator[Connection]:
    """A connection inside a read transaction.

    Args:
        engine: the store's engine.
        timeout_s: stop any statement of the transaction that runs longer than this
            (:class:`~keel.errors.QueryTimeout`); None: no limit (a PostgreSQL role's own
            ``statement_timeout`` stays in force); :data:`UNCHANGED` (small reads such as an
            account's): on SQLite no limit, on PostgreSQL whatever the pooled connection
            last had, which saves a round trip where stores with and without a budget
            share the engine (a server).
    """
    from sqlalchemy.exc import DataError as DBAPIDataError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    budget = _Budget(timeout_s)
    try:
        with engine.connect() as conn:
            budget.arm(conn)
            try:
                with conn.begin():
                    budget.apply(conn)
                    yield conn
                budget.applied(conn)
            finally:
                budget.disarm()
    except (OperationalError, InterfaceError) as exc:  # the database is out of reach
        raise budget.refused(exc) or _refused(engine, exc) or unavailable(engine, exc) from exc
    except (OverflowError, DBAPIDataError) as exc:
        if out_of_range(exc):
            raise InvalidInput(OUT_OF_RANGE) from exc
        _raise_if_refused(engine, exc, budget)
        raise
    except DBAPIError as exc:
        _raise_if_refused(engine, exc, budget)
        raise
    except RecursionError:  # SQLAlchemy compiles nested expressions recursively
        raise QueryTooComplex(_TOO_DEEP) from None


# --- refusals that are the caller's: too complex, too slow --------------------------------

_TOO_DEEP = (
    "the query nests too deep for the database: simplify it (fewer nested $and, $or, $nor, "
    "$not and $elemMatch, fewer conditions)"
)
#: what SQLite says when a statement is beyond its compile-time limits
_SQLITE_TOO_COMPLEX = (
    "parser stack overflow",
    "expression tree is too large",
    "tables in a join",
    "too many from clause terms",
    "too many sql variables",
    "too many terms in compound select",
    "too many columns",
    "too many arguments on function",
    "string or blob too big",
    "pattern too complex",
    "statement too long",
)
#: SQLSTATE class 54 (program_limit_exceeded): 54000, 54001 statement_too_complex (also
#: "stack depth limit exceeded"), 54011 too_many_columns, 54023 too_many_arguments
_PG_TOO_COMPLEX_CLASS = "54"
#: psycopg's own refusal of a statement with more bound values than the protocol carries
_PG_TOO_MANY_PARAMETERS = "number of parameters must be between"
#: PostgreSQL's parser out of stack: a syntax_error saying "memory exhausted"
_PG_SYNTAX_ERROR = "42601"
#: SQLSTATE query_canceled: statement_timeout (or a cancel request) stopped the statement
_PG_QUERY_CANCELED = "57014"


def _raise_if_refused(engine: Engine, exc: BaseException, budget: _Budget | None = None) -> None:
    """Raise the caller's error when the database refused the statement as too slow or too
    complex (otherwise return: the failure is another one)."""
    refusal = (budget.refused(exc) if budget is not None else None) or _refused(engine, exc)
    if refusal is not None:
        raise refusal from exc


def _refused(engine: Engine, exc: BaseException) -> QueryTooComplex | None:
    """The caller's :class:`~keel.errors.QueryTooComplex` when the database refused the
    statement as beyond its limits (None: another failure)."""
    orig = getattr(exc, "orig", exc)
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = reason.lower()
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if engine.dialect.name == "sqlite":
        beyond = any(marker in lowered for marker in _SQLITE_TOO_COMPLEX)
    else:
        beyond = (
            sqlstate.startswith(_PG_TOO_COMPLEX_CLASS)
            or _PG_TOO_MANY_PARAMETERS in lowered
            or (sqlstate == _PG_SYNTAX_ERROR and "memory exhausted" in lowered)
        )
    if not beyond:
        return None
    return QueryTooComplex(
        f"the query is too complex for the database ({engine.dialect.name}: {reason}): "
        "simplify it (fewer nested $and, $or, $nor, $not and $elemMatch, fewer conditions "
        "or values)"
    )


def _write_stopped(engine: Engine, exc: BaseException) -> StoreUnavailable | None:
    """A write PostgreSQL stopped at the connection's ``statement_timeout`` (a server's
    budget outlives its reads on a pooled connection): it waited on a lock, most likely; the
    database answers, so this is no :class:`DatabaseUnreachable`."""
    if getattr(getattr(exc, "orig", exc), "sqlstate", None) != _PG_QUERY_CANCELED:
        return None
    url = mask_url(engine.url.render_as_string(hide_password=True))
    return StoreUnavailable(
        f"the metadata store at {url} stopped a write that ran past its statement_timeout "
        "(waiting for another transaction's lock, most likely): retry"
    )


def timeout_message(timeout_s: float) -> str:
    """The line a query stopped by its budget answers."""
    return (
        f"the query ran past {timeout_s:g} s ({QUERY_TIMEOUT_SETTING}) and was stopped: narrow "
        "it (fewer records, a simpler $regex, fewer conditions on params and tags)"
    )


_CLOCK = "keel_clock"
_PG_TIMEOUT = "keel_statement_timeout_ms"


@dataclass
class _Clock:
    """A SQLite connection's deadline (None: none), read by its progress handler and its
    REGEXP function; ``expired`` says that either stopped the statement."""

    deadline: float | None = None
    expired: bool = False

    def progress(self) -> int:
        """Nonzero stops the statement (sqlite3: "interrupted")."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.expired = True
            return 1
        return 0

    def regexp(self, pattern: str, text: str | None) -> bool | None:
        """SQLite's ``text REGEXP pattern``: ``regex``'s search, without the GIL, within
        the budget left."""
        if text is None:
            return None
        compiled = _compiled(pattern)
        if self.deadline is None:
            return compiled.search(text, concurrent=True) is not None
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError("regex timed out")
            return compiled.search(text, concurrent=True, timeout=left) is not None
        except TimeoutError:  # sqlite3 turns it into "user-defined function raised …"
            self.expired = True
            raise


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    import regex

    return regex.compile(pattern)


class _Budget:
    """The time budget of one read transaction, on whichever database it runs."""

    def __init__(self, timeout_s: float | _Unchanged | None) -> None:
        self.unchanged = timeout_s is UNCHANGED
        self.seconds = None if isinstance(timeout_s, _Unchanged) else timeout_s
        self.clock: _Clock | None = None
        self.dbapi: Any = None
        self.changed = False  # PostgreSQL: this transaction set statement_timeout
        self.wanted_ms: int | None = None

    def arm(self, conn: Connection) -> None:
        """SQLite: start the clock (the budget counts from here) and the progress handler."""
        if conn.dialect.name != "sqlite":
            return
        clock = conn.connection.info.get(_CLOCK)
        if clock is None:  # a connection made before this keel set up its engine
            return
        self.clock = clock
        clock.expired = False
        if self.seconds is None:
            clock.deadline = None
            return
        clock.deadline = time.monotonic() + self.seconds
        self.dbapi = conn.connection.dbapi_connection
        self.dbapi.set_progress_handler(clock.progress, SQLITE_PROGRESS_STEPS)

    def disarm(self) -> None:
        if self.dbapi is not None:
            self.dbapi.set_progress_handler(None, SQLITE_PROGRESS_STEPS)
            self.dbapi = None
        if self.clock is not None:
            self.clock.deadline = None

    def apply(self, conn: Connection) -> None:
        """PostgreSQL: set ``statement_timeout`` inside the transaction when the connection
        has another (committed with the transaction, kept for the next one)."""
        if conn.dialect.name != "postgresql" or self.unchanged:
            return
        from sqlalchemy import text

        wanted = None if self.seconds is None else max(1, round(self.seconds * 1000))
        if conn.connection.info.get(_PG_TIMEOUT) == wanted:
            return
        if wanted is None:
            conn.execute(text("RESET statement_timeout"))  # the role's or database's own
        else:
            conn.execute(
                text("SELECT set_config('statement_timeout', :ms, false)"), {"ms": str(wanted)}
            )
        self.changed, self.wanted_ms = True, wanted

    def applied(self, conn: Connection) -> None:
        """The transaction committed: remember the connection's timeout (a rollback undoes
        a SET, so it is remembered only now)."""
        if not self.changed:
            return
        if self.wanted_ms is None:
            conn.connection.info.pop(_PG_TIMEOUT, None)
        else:
            conn.connection.info[_PG_TIMEOUT] = self.wanted_ms

    def refused(self, exc: BaseException) -> QueryTimeout | None:
        """The caller's :class:`~keel.errors.QueryTimeout` when the budget stopped the
        statement (None: another failure)."""
        if self.clock is not None and self.clock.expired and self.seconds is not None:
            return QueryTimeout(timeout_message(self.seconds))
        orig = getattr(exc, "orig", exc)
        if getattr(orig, "sqlstate", None) == _PG_QUERY_CANCELED:
            if self.seconds is not None:
                return QueryTimeout(timeout_message(self.seconds))
            return QueryTimeout(
                "the database cancelled the query (its statement_timeout, or an "
                "administrator): narrow it"
            )
        return None


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


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([\w-]*)", re.M)


@lru_cache(maxsize=1)
def quick_head_revision() -> str | None:
    """:func:`head_revision` read from the migration files' ``revision =`` lines, without
    importing alembic (a second on every command that opens a store); None when the files do
    not name exactly one head (then ask alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(m.groups() for m in _REVISION_LINE.finditer(path.read_text("utf-8")))
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


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
    if revision is not None and revision == quick_head_revision():
        return  # current: alembic is not needed
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
