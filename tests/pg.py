"""A throwaway PostgreSQL server for the test suite (one per pytest session).

``PostgresServer.start()`` creates a fresh cluster in a temporary folder with the system
binaries (``initdb`` + ``pg_ctl``), listening on 127.0.0.1 on a port picked by the OS, with
trust authentication for the ``postgres`` role and durability switched off (fsync,
full_page_writes, synchronous_commit) since nothing here needs to survive a crash.
``new_database()`` hands out a fresh, empty database per test as a SQLAlchemy URL.

The binaries are looked up, first match wins:

1. env ``KEEL_PG_BIN`` (a folder holding ``initdb``). When set it is authoritative: a wrong
   value makes ``start()`` fail instead of silently falling back to another installation;
2. ``pg_config --bindir``;
3. the newest ``/usr/lib/postgresql/<major>/bin`` (Debian/Ubuntu layout);
4. ``initdb`` on ``PATH``.

``initdb`` refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user (created by the Debian package), which owns the temporary folder.

The server is stopped (``pg_ctl stop -m immediate``) and its folder removed by ``stop()``, at
interpreter exit (atexit) and on SIGTERM, so an interrupted or crashed test run leaves
neither a running server nor a data folder behind. ``scripts/ensure-postgres.sh`` repeats
the same search to install the binaries when none are found.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "PostgresStartError", "PostgresUnavailable", "find_bindir"]

#: System user the server runs as when the tests run as root (initdb refuses root).
ROOT_RUN_AS = "postgres"
SUPERUSER = "postgres"
DEBIAN_ROOT = Path("/usr/lib/postgresql")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl) cannot be found or cannot be used."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PostgresStartError(RuntimeError):
    """The binaries exist but the throwaway cluster could not be created or started."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _major(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bindir() -> Path:
    """Return the folder holding ``initdb``/``pg_ctl``/``postgres``, or raise PostgresUnavailable."""
    explicit = os.environ.get("KEEL_PG_BIN")
    if explicit:
        bindir = Path(explicit).expanduser()
        if _has_server_binaries(bindir):
            return bindir
        raise PostgresUnavailable(
            f"KEEL_PG_BIN={explicit} does not hold executable initdb, pg_ctl and postgres"
        )

    tried: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            if _has_server_binaries(Path(out)):
                return Path(out)
            tried.append(f"{out} (pg_config --bindir)")

    debian = sorted(DEBIAN_ROOT.glob("*/bin"), key=_major, reverse=True)
    for bindir in debian:
        if _has_server_binaries(bindir):
            return bindir
    tried.append(f"{DEBIAN_ROOT}/*/bin")

    initdb = shutil.which("initdb")
    if initdb:
        bindir = Path(initdb).resolve().parent
        if _has_server_binaries(bindir):
            return bindir
    tried.append("initdb on PATH")
    raise PostgresUnavailable("no initdb/pg_ctl/postgres found in " + ", ".join(tried))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One throwaway PostgreSQL cluster; see the module docstring."""

    def __init__(self, *, bindir: str | os.PathLike[str] | None = None) -> None:
        self._bindir_arg = Path(bindir) if bindir is not None else None
        self.bindir: Path | None = None
        self.port: int | None = None
        self.folder: Path | None = None
        self.start_seconds: float | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._owner_pid: int | None = None
        self._counter = 0
        self._lock = threading.Lock()
        self._running = False
        self._options = ""  # the postgres options it was started with (resume() reuses them)

    # ------------------------------------------------------------------ lifecycle

    @property
    def datadir(self) -> Path:
        assert self.folder is not None, "server not started"
        return self.folder / "data"

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> PostgresServer:
        """Create and start the cluster; raise PostgresUnavailable if there are no binaries."""
        if self._running:
            return self
        began = time.perf_counter()
        self.bindir = self._bindir_arg if self._bindir_arg is not None else find_bindir()
        if not _has_server_binaries(self.bindir):
            raise PostgresUnavailable(f"{self.bindir} does not hold initdb, pg_ctl and postgres")
        self._run_as = self._pick_user()

        self._owner_pid = os.getpid()
        self.folder = Path(tempfile.mkdtemp(prefix="keel-pg-"))
        atexit.register(self.stop)
        _install_sigterm_handler()
        _LIVE.add(self)
        try:
            if self._run_as is not None:
                os.chown(self.folder, self._run_as.pw_uid, self._run_as.pw_gid)
            self._run(
                "initdb", "-D", str(self.datadir), "--auth=trust", "-U", SUPERUSER,
                "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
            self._start_server()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - began
        return self

    def _pick_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(ROOT_RUN_AS)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root, and initdb refuses root, but there is no {ROOT_RUN_AS!r} "
                "user to run the server as (the postgresql package creates it)"
            ) from None

    def _start_server(self, attempts: int = 3) -> None:
        assert self.folder is not None
        log = self.folder / "server.log"
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {self.folder}",  # unix socket next to the data, not in /var/run
                    "-c fsync=off",
                    "-c full_page_writes=off",
                    "-c synchronous_commit=off",
                    "-c max_connections=300",
                ]
            )
            self._options = options
            try:
                self._run(
                    "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
                    "-l", str(log), "-o", options,
                )  # fmt: skip
            except PostgresStartError:
                # Another process may have grabbed the port between probe and bind: retry.
                if attempt == attempts or "could not bind" not in _tail(log):
                    raise
                continue
            self._running = True
            return

    def stop(self) -> None:
        """Stop the server (immediate mode) and delete its folder. Safe to call repeatedly."""
        if self._owner_pid is not None and os.getpid() != self._owner_pid:
            return  # a forked child must not tear down its parent's server
        _LIVE.discard(self)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self._running:
            self._running = False
            with contextlib.suppress(PostgresStartError, OSError, subprocess.SubprocessError):
                self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.datadir))
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def halt(self, mode: str = "fast") -> None:
        """Stop the server process but keep the cluster (``pg_ctl stop -m MODE``), to test an
        outage; :meth:`resume` starts it again on the same port. Never on a shared server."""
        assert self._running, "server not started"
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.datadir))

    def resume(self) -> None:
        """Start a halted server again, on the same port with the same options."""
        assert self.folder is not None, "server not started"
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
            "-l", str(self.folder / "server.log"), "-o", self._options,
        )  # fmt: skip

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases

    def url(self, db: str = "postgres") -> str:
        """SQLAlchemy URL of database ``db`` on this server."""
        if not self._running:
            raise RuntimeError("PostgresServer is not running; call start() first")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def conninfo(self, db: str = "postgres") -> str:
        """libpq connection string (for psycopg.connect) of database ``db``."""
        if not self._running:
            raise RuntimeError("PostgresServer is not running; call start() first")
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={db}"

    def new_database(self) -> str:
        """CREATE DATABASE keel_test_<n> and return its SQLAlchemy URL."""
        import psycopg

        with self._lock:
            self._counter += 1
            name = f"keel_test_{self._counter}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    # ------------------------------------------------------------------ helpers

    def _run(self, program: str, *args: str) -> None:
        assert self.bindir is not None and self.folder is not None
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
            env["HOME"] = str(self.folder)
            env["USER"] = env["LOGNAME"] = self._run_as.pw_name
        proc = subprocess.run(
            [str(self.bindir / program), *args],
            cwd=self.folder,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            **kwargs,
        )
        if proc.returncode != 0:
            log = self.folder / "server.log"
            raise PostgresStartError(
                f"{program} {' '.join(args)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}{_tail(log)}"
            )


# ---------------------------------------------------------------------- crash safety

_LIVE: set[PostgresServer] = set()
_sigterm_installed = False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "server log:\n" + "\n".join(text.splitlines()[-lines:]) + "\n"


def _on_sigterm(signum: int, frame: object) -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()
    # Then die of SIGTERM as if we had never been here.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_handler() -> None:
    """atexit does not run on SIGTERM's default action: stop the servers first, then die."""
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True


if __name__ == "__main__":  # manual check: python tests/pg.py
    with PostgresServer() as server:
        print(f"bindir {server.bindir}, started in {server.start_seconds:.2f}s")
        t = time.perf_counter()
        print(server.new_database(), f"{time.perf_counter() - t:.3f}s")
