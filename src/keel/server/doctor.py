"""``keel doctor``: check a deployment's settings, connections and schema; say what is wrong.

:func:`diagnose` runs every check and returns a :class:`Diagnosis`, one :class:`Check` per
row: ``ok``, ``warning``, ``error`` or ``skipped`` (the check could not run, or does not
apply), what was found, and for anything not ok one line saying what to do. A check that
fails never raises: an unreachable database is an ``error`` row, not a traceback.

Nothing is changed: the metadata store is never created or migrated (an empty one is
reported, not filled). The only writes are probes: a small object put into the artifact
store, read back and deleted, and a file made and removed in the cache and work folders
(which are made when missing, as keel would on first use).

The checks, in order: the config parses; the metadata store answers (and how fast); its
schema revision against this keel's; at least one admin user; the artifact store is
reachable and writable; the cache, the server's work folder and the jobs folder are
writable (and, with replicas, set to a shared place); no partial upload is left in the work
folder's ``uploads/`` (files no upload holds, see :mod:`keel.server.uploads`); the secret
that signs sessions is set where replicas must share it; the Dask scheduler answers when
jobs run on Dask.

Example:
    >>> from keel.server.doctor import diagnose  # doctest: +SKIP
    >>> diagnosis = diagnose(replicas=3)
    >>> [c.name for c in diagnosis.checks if c.status == "error"]
    []
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.config import Config
    from keel.server.settings import ServerSettings
    from keel.server.uploads import PartialUpload
    from keel.tracking.settings import ClientSettings

__all__ = [
    "ERROR",
    "OK",
    "SKIPPED",
    "STATUSES",
    "WARNING",
    "Check",
    "Diagnosis",
    "UploadsSweep",
    "diagnose",
    "sweep_partial_uploads",
]

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"
STATUSES = (OK, WARNING, ERROR, SKIPPED)
#: the environment variable naming the Dask scheduler (read before keel.yml's jobs.scheduler)
DASK_SCHEDULER_ENV = "KEEL_DASK_SCHEDULER"
#: shorter session secrets are guessable
MIN_SECRET_CHARS = 32
#: less free space than this in the cache or work folder is a warning
LOW_DISK_BYTES = 1 << 30
_TOKEN = re.compile(r"keel_[A-Za-z0-9_\-]{20,}")
NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True)
class Check:
    """One row of the diagnosis.

    Attributes:
        name: what was checked (``metadata store``).
        status: ``ok``, ``warning``, ``error`` or ``skipped``.
        detail: what was found, in one line.
        fix: what to do about it (empty when nothing needs doing).
        ms: how long the check took, for the checks that time a connection.
    """

    name: str
    status: str
    detail: str
    fix: str = ""
    ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Diagnosis:
    """Every check of one :func:`diagnose` call, in the order they ran."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether no check is an error (warnings are allowed)."""
        return not any(c.status == ERROR for c in self.checks)

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    def summary(self) -> str:
        """``2 errors, 1 warning`` (or ``all checks passed``)."""
        parts = [
            f"{n} {word}{'s' if n != 1 else ''}"
            for word, n in ((ERROR, self.count(ERROR)), (WARNING, self.count(WARNING)))
            if n
        ]
        return ", ".join(parts) if parts else "all checks passed"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "checks": [c.to_json() for c in self.checks],
        }


def diagnose(
    config_path: str | os.PathLike[str] | None = None,
    *,
    store: str | None = None,
    artifacts: str | None = None,
    replicas: int | None = None,
    timeout_s: float = 10.0,
) -> Diagnosis:
    """Check the deployment these settings describe (see the module docstring).

    Args:
        config_path: keel.yml (default: env ``KEEL_CONFIG``, else ``./keel.yml`` if any).
        store: the metadata store (default: env ``KEEL_STORE``, keel.yml, ``./.keel``).
        artifacts: the artifact store (default: env ``KEEL_ARTIFACTS``, keel.yml, beside
            an embedded store).
        replicas: how many ``keel server`` processes will share the store; with more than
            one, a missing session secret is an error rather than a warning.
        timeout_s: how long to wait for each connection.

    Returns:
        The diagnosis; ``diagnosis.ok`` is False when any check is an error.
    """
    return _Doctor(config_path, store, artifacts, replicas, timeout_s).run()


# --------------------------------------------------------------------------- the checks


@dataclass
class _Doctor:
    config_path: str | os.PathLike[str] | None
    store_arg: str | None
    artifacts_arg: str | None
    replicas: int | None
    timeout_s: float
    config: Config | None = None
    client: ClientSettings | None = None
    server: ServerSettings | None = None
    revision: str | None = None
    schema_ok: bool = False
    # why the schema cannot be checked (None: it can)
    store_missing: str | None = "not checked: the metadata store was not reached"
    rows: list[Check] = field(default_factory=list)

    def run(self) -> Diagnosis:
        steps: list[tuple[str, Callable[[], Check]]] = [
            ("config", self.check_config),
            ("metadata store", self.check_store),
            ("schema", self.check_schema),
            ("admin user", self.check_admins),
            ("artifact store", self.check_artifacts),
            ("cache folder", self.check_cache),
            ("server work folder", self.check_work_dir),
            ("partial uploads", self.check_partial_uploads),
            ("jobs folder", self.check_jobs_dir),
            ("session secret", self.check_secret),
            ("dask scheduler", self.check_dask),
        ]
        for name, step in steps:
            if self.config is None and name != "config":
                self.rows.append(Check(name, SKIPPED, "not checked: the config does not load"))
                continue
            self.rows.append(_guarded(name, step))
        return Diagnosis(tuple(self.rows))

    # --- config ---------------------------------------------------------------------------

    def check_config(self) -> Check:
        from keel.config import load_config
        from keel.errors import ConfigError
        from keel.server.settings import ServerSettings
        from keel.tracking.settings import resolve_settings

        try:
            config = load_config(self.config_path)
            self.client = resolve_settings(
                self.store_arg, self.artifacts_arg, config_path=self.config_path
            )
            self.server = ServerSettings.resolve(
                self.config_path, store=self.store_arg, artifacts=self.artifacts_arg
            )
        except ConfigError as exc:
            return Check("config", ERROR, _reason(exc), "fix the file or variable it names")
        self.config = config
        return Check("config", OK, config.describe())

    @property
    def shared(self) -> bool:
        """Whether this looks like a team deployment: a store on a database server, a server
        listening beyond loopback, or more than one replica."""
        from keel.tracking.settings import embedded_folder, is_server_url

        assert self.client is not None and self.server is not None
        store = self.client.store
        return (
            (embedded_folder(store) is None and not is_server_url(store))
            or not self.server.loopback_only
            or (self.replicas or 1) > 1
        )

    # --- metadata store -------------------------------------------------------------------

    def check_store(self) -> Check:
        from keel.store.engine import mask_url, normalize_url
        from keel.tracking.settings import is_server_url

        assert self.client is not None
        if is_server_url(self.client.store):
            return self._check_server_store()
        url = normalize_url(self.client.store)
        shown = mask_url(url)
        if url.startswith("sqlite:///"):
            path = url[len("sqlite:///") :]
            if path != ":memory:" and not Path(path).is_file():
                self.store_missing = "not checked: there is no store yet"
                return Check(
                    "metadata store",
                    WARNING,
                    f"{shown}: no store there yet",
                    "it is made on first use; `keel db upgrade` makes it now",
                )
        engine = _engine(url, self.timeout_s)
        began = time.perf_counter()
        try:
            from sqlalchemy import text

            from keel.store.engine import current_revision

            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                version = ".".join(str(p) for p in conn.dialect.server_version_info or ())
                self.revision = current_revision(conn)
        except Exception as exc:
            return Check(
                "metadata store",
                ERROR,
                f"{shown}: cannot connect: {_reason(exc)}",
                "check the URL (host, port, database, user, password), that the database "
                "server runs and that this machine may reach it",
            )
        finally:
            engine.dispose()
        ms = (time.perf_counter() - began) * 1000
        self.store_missing = None
        kind = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(engine.dialect.name, "")
        found = f"{shown} ({kind} {version}) answered in {ms:.0f} ms".replace(" )", ")")
        if engine.dialect.name == "sqlite" and self.shared:
            return Check(
                "metadata store",
                WARNING,
                found,
                "SQLite suits one machine: replicas need PostgreSQL (postgresql://…)",
                ms,
            )
        return Check("metadata store", OK, found, ms=ms)

    def _check_server_store(self) -> Check:
        from keel.store.http import mask_secrets, message_of, new_http_client

        assert self.client is not None
        self.store_missing = "the keel server's own store: run keel doctor where it runs"
        url = mask_secrets(self.client.store)
        token = os.environ.get("KEEL_TOKEN") or None
        began = time.perf_counter()
        http = new_http_client(self.client.store, token, self.timeout_s)
        try:
            resp = http.get("/me")
        except Exception as exc:
            return Check(
                "metadata store",
                ERROR,
                f"keel server {url} is unreachable: {_reason(exc)}",
                "check the URL and that the server runs",
            )
        finally:
            http.close()
        ms = (time.perf_counter() - began) * 1000
        if resp.status_code != 200:
            return Check(
                "metadata store",
                ERROR,
                f"keel server {url} answered {resp.status_code}: "
                f"{message_of(resp.content, resp.reason_phrase)}",
                "set KEEL_TOKEN to a valid token (keel tokens create)",
                ms,
            )
        me = resp.json()
        return Check(
            "metadata store",
            OK,
            f"keel server {url} answered in {ms:.0f} ms; the token is {me.get('name')}'s "
            f"({me.get('role')})",
            ms=ms,
        )

    def check_schema(self) -> Check:
        from keel.store.engine import head_revision, known_revisions

        if self.store_missing is not None:
            return Check("schema", SKIPPED, self.store_missing)
        head = head_revision()
        if self.revision is None:
            return Check(
                "schema",
                WARNING,
                f"no keel tables yet (this keel's schema is {head})",
                "run `keel db upgrade` once before starting servers",
            )
        if self.revision == head:
            self.schema_ok = True
            return Check("schema", OK, f"at revision {head}, the newest this keel knows")
        if self.revision in known_revisions():
            return Check(
                "schema",
                ERROR,
                f"at revision {self.revision}, this keel needs {head}",
                "run `keel db upgrade` (once, before starting the new servers)",
            )
        return Check(
            "schema",
            ERROR,
            f"at revision {self.revision}, which this keel does not know (it needs {head}): "
            "a newer keel migrated it",
            "upgrade keel here to the version that migrated the store",
        )

    def check_admins(self) -> Check:
        from keel.store.accounts import AccountStore

        assert self.client is not None and self.server is not None
        if not self.schema_ok:
            reason = self.store_missing or "not checked: the schema is not current"
            return Check("admin user", SKIPPED, reason)
        admins = AccountStore(self.client.store).count_admins()
        if admins:
            return Check("admin user", OK, f"{admins} admin user{'s' if admins > 1 else ''}")
        fix = "create one: keel users add NAME --role admin"
        if self.shared:
            where = f"on {self.server.host}" if not self.server.loopback_only else "for a team"
            return Check(
                "admin user", ERROR, f"no admin user: a server {where} refuses to start", fix
            )
        return Check(
            "admin user",
            WARNING,
            "no admin user yet: `keel server` on 127.0.0.1 makes one at its first start",
            fix,
        )

    # --- artifacts and folders ------------------------------------------------------------

    def check_artifacts(self) -> Check:
        from keel.artifacts import open_artifact_store
        from keel.artifacts.base import redact_url
        from keel.tracking.settings import is_server_url

        assert self.client is not None
        url = self.client.artifacts
        shown = redact_url(url)
        if is_server_url(url):
            return Check(
                "artifact store",
                SKIPPED,
                f"{shown}: the keel server's artifact store: run keel doctor there",
            )
        fix = (
            "check the URL, that the bucket exists and that the credentials may write "
            "(AWS_* variables, KEEL_STORAGE_OPTIONS or store.storage_options)"
            if "://" in url
            else "check that the folder exists and this user may write to it"
        )
        began = time.perf_counter()
        try:
            store = open_artifact_store(url, dict(self.client.storage_options) or None)
            probe = f"keel doctor probe {uuid.uuid4()} {time.time()}".encode()
            began = time.perf_counter()  # the requests, not the import of s3fs
            info = store.put_bytes(probe)
            try:
                with store.open(info.sha256) as handle:
                    back = handle.read()
            finally:
                store.delete(info.sha256)
        except Exception as exc:
            return Check("artifact store", ERROR, f"{shown}: cannot write: {_reason(exc)}", fix)
        ms = (time.perf_counter() - began) * 1000
        if back != probe:
            return Check(
                "artifact store", ERROR, f"{shown}: a probe read back differently", fix, ms
            )
        detail = f"{shown}: wrote, read and deleted a probe in {ms:.0f} ms"
        if "://" not in url and self.shared:
            return Check(
                "artifact store",
                WARNING,
                detail,
                "a local folder: every replica must see the same one (a shared mount), "
                "or use s3://…",
                ms,
            )
        return Check("artifact store", OK, detail, ms=ms)

    def check_cache(self) -> Check:
        assert self.client is not None
        return _writable_folder("cache folder", self.client.cache_dir, "KEEL_CACHE_DIR")

    def check_work_dir(self) -> Check:
        assert self.config is not None and self.server is not None
        if self.server.work_dir is None:
            return Check("server work folder", SKIPPED, "none configured")
        configured = self.config.settings.server.work_dir
        return self._shared_folder(
            "server work folder", self.server.work_dir, "server.work_dir", bool(configured)
        )

    def check_partial_uploads(self) -> Check:
        """Files of the uploads folder no upload holds: left by a server killed mid-upload."""
        from keel.server.uploads import find_partial_uploads, uploads_dir
        from keel.tracking.settings import is_server_url

        assert self.client is not None and self.server is not None
        name = "partial uploads"
        if is_server_url(self.client.store):
            return Check(name, SKIPPED, "the store is a server: `keel gc` clears its leftovers")
        if self.server.work_dir is None:
            return Check(name, SKIPPED, "no server work folder")
        folder = uploads_dir(self.server.work_dir)
        found = find_partial_uploads(folder)
        left = [p for p in found if p.left_over]
        live = len(found) - len(left)
        in_flight = f"; {live} upload{'s' * (live != 1)} in flight" if live else ""
        if not left:
            return Check(name, OK, f"{folder}: none left over{in_flight}")
        size = sum(p.size for p in left)
        return Check(
            name,
            WARNING,
            f"{folder}: {len(left)} file{'s' * (len(left) != 1)} ({_bytes(size)}) no upload "
            f"holds, left by a server stopped mid-upload{in_flight}",
            "run `keel doctor --repair` (or `keel gc`): it removes those older than --grace "
            "(default 3600 s)",
        )

    def check_jobs_dir(self) -> Check:
        assert self.config is not None and self.server is not None
        folder = getattr(self.server, "jobs_dir", None)
        if folder is None:
            return Check("jobs folder", SKIPPED, "none configured")
        configured = getattr(self.config.settings.jobs, "jobs_dir", None)
        return self._shared_folder("jobs folder", Path(folder), "jobs.jobs_dir", bool(configured))

    def _shared_folder(self, name: str, folder: Path, key: str, configured: bool) -> Check:
        """A folder every replica must see: writable, and named in keel.yml when there are
        replicas (the default is in each machine's own cache)."""
        found = _writable_folder(name, folder, f"{key} (keel.yml)")
        if found.status == OK and (self.replicas or 1) > 1 and not configured:
            return Check(
                name,
                WARNING,
                f"{found.detail}; the default, in this machine's cache",
                f"replicas must share it: set {key} in keel.yml to a shared mount",
            )
        return found

    # --- server and jobs ------------------------------------------------------------------

    def check_secret(self) -> Check:
        assert self.config is not None
        section = self.config.settings.server
        var = section.secret_key_var
        value = os.environ.get(var) or ""
        if section.secret_key:  # keel.yml's secret_key_var named another variable
            var, value = "the variable server.secret_key_var names", section.secret_key
        fix = f"set {var} to the same long random value on every replica: {NEW_SECRET}"
        if value:
            if len(value) < MIN_SECRET_CHARS:
                return Check(
                    "session secret",
                    WARNING,
                    f"{var} has only {len(value)} characters",
                    fix,
                )
            return Check("session secret", OK, f"{var} is set ({len(value)} characters)")
        if (self.replicas or 1) > 1:
            return Check(
                "session secret",
                ERROR,
                f"{var} is not set: each of the {self.replicas} replicas would sign sessions "
                "with a key of its own, so a login holds only on the replica that made it",
                fix,
            )
        if self.shared:
            return Check(
                "session secret",
                WARNING,
                f"{var} is not set: every restart logs everyone out, and replicas cannot "
                "share sessions",
                fix,
            )
        return Check(
            "session secret",
            OK,
            f"{var} is not set: fine for one local server (sessions end when it restarts)",
        )

    def check_dask(self) -> Check:
        assert self.config is not None
        jobs = self.config.settings.jobs
        executor = getattr(jobs, "executor", None) or "local"
        if executor != "dask":
            return Check("dask scheduler", SKIPPED, f"not used (jobs.executor: {executor})")
        extra = getattr(jobs, "model_extra", None) or {}
        address = (
            os.environ.get(DASK_SCHEDULER_ENV)
            or getattr(jobs, "scheduler", None)
            or extra.get("scheduler")
        )
        if not address:
            return Check(
                "dask scheduler",
                ERROR,
                "jobs.executor is dask, but no scheduler is named",
                f"set jobs.scheduler in keel.yml or {DASK_SCHEDULER_ENV} (tcp://HOST:8786)",
            )
        try:
            from distributed import Client as DaskClient
        except ImportError:
            return Check(
                "dask scheduler",
                ERROR,
                "jobs.executor is dask, but dask.distributed is not installed",
                "pip install 'dask[distributed]' (the same version as the cluster's)",
            )
        began = time.perf_counter()
        try:
            with DaskClient(
                address, timeout=f"{self.timeout_s}s", set_as_default=False
            ) as dask_client:
                workers = len(dask_client.nthreads())
        except Exception as exc:
            return Check(
                "dask scheduler",
                ERROR,
                f"{address}: cannot connect: {_reason(exc)}",
                "check the address and that the scheduler runs and this machine may reach it",
            )
        ms = (time.perf_counter() - began) * 1000
        found = f"{address} answered in {ms:.0f} ms; {workers} worker{'s' * (workers != 1)}"
        if not workers:
            return Check(
                "dask scheduler", WARNING, found, "start workers: dask worker " + address, ms
            )
        return Check("dask scheduler", OK, found, ms=ms)


# --------------------------------------------------------------------------- helpers


def _guarded(name: str, step: Callable[[], Check]) -> Check:
    """Run a check; anything it raises becomes an error row (never a traceback)."""
    try:
        return step()
    except Exception as exc:
        return Check(name, ERROR, f"{type(exc).__name__}: {_reason(exc)}", "see the message")


def _engine(url: str, timeout_s: float) -> Any:
    """An engine that keeps no connection and gives up connecting after ``timeout_s``."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        args["connect_timeout"] = max(1, round(timeout_s))
    elif url.startswith("sqlite"):
        args["timeout"] = timeout_s
    return create_engine(url, poolclass=NullPool, connect_args=args)


def _writable_folder(name: str, folder: Path, setting: str) -> Check:
    fix = f"make it writable for this user, or point {setting} elsewhere"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".keel-doctor-"):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Check(name, ERROR, f"{folder}: not writable: {exc.strerror or exc}", fix)
    detail = f"{folder}: writable, {free / (1 << 30):.1f} GiB free"
    if free < LOW_DISK_BYTES:
        return Check(name, WARNING, detail, "free some space or move it to a larger disk")
    return Check(name, OK, detail)


def _bytes(size: int) -> str:
    """``512 bytes``, ``3.0 MiB``."""
    if size < 1024:
        return f"{size} byte{'s' * (size != 1)}"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


@dataclass(frozen=True)
class UploadsSweep:
    """What :func:`sweep_partial_uploads` found in a server's uploads folder.

    Attributes:
        folder: the folder (None: nothing to sweep here, the store is a keel server).
        left_over: the files no upload holds, of any age.
        removed: those of them older than the grace period: removed, or in a dry run, the
            ones that would be.
        dry_run: nothing was removed.
    """

    folder: Path | None
    left_over: tuple[PartialUpload, ...] = ()
    removed: tuple[PartialUpload, ...] = ()
    dry_run: bool = False


def sweep_partial_uploads(
    config_path: str | os.PathLike[str] | None = None,
    *,
    store: str | None = None,
    artifacts: str | None = None,
    grace_seconds: float = 3600,
    dry_run: bool = False,
) -> UploadsSweep:
    """Find, and unless ``dry_run`` remove, what uploads killed midway left in the uploads
    folder of the server keel.yml (and ``store``) describe (``keel doctor --repair`` and
    ``keel gc`` call this). A file an upload holds is never removed; a leftover only once
    older than ``grace_seconds``. Against a store that is a keel server nothing is swept
    here: ``keel gc`` asks that server (``POST /api/v1/gc/remove-partials``)."""
    from keel.server.settings import ServerSettings
    from keel.server.uploads import find_partial_uploads, remove_partial_uploads, uploads_dir
    from keel.tracking.settings import is_server_url

    server = ServerSettings.resolve(config_path, store=store, artifacts=artifacts)
    if is_server_url(server.store) or server.work_dir is None:
        return UploadsSweep(None, dry_run=dry_run)
    folder = uploads_dir(server.work_dir)
    left = tuple(p for p in find_partial_uploads(folder) if p.left_over)
    removed = tuple(remove_partial_uploads(folder, grace_seconds, dry_run=dry_run))
    return UploadsSweep(folder, left, removed, dry_run)


def _reason(exc: BaseException) -> str:
    """The first line of an error (the driver's own, under SQLAlchemy's), passwords and
    tokens masked."""
    from keel.store.engine import mask_url

    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    if not lines:
        return type(cause).__name__
    return _TOKEN.sub("keel_***", mask_url(lines[0][:300]))
