"""A writer for ``test_crash_safety.py`` to SIGKILL: it logs runs, large artifacts and model
versions in a loop until it is killed.

Usage: ``python crash_worker.py STORE ARTIFACTS CACHE STATUS JOURNAL BASELINE PAUSE``.

- STATUS: a small file holding where the worker is *now* (``ready``, ``version:upload``,
  ``version:register``, ``artifact:upload``, ``other`` …), rewritten in place as it goes,
  so the test can tell where a kill landed.
- JOURNAL: lines appended as it goes: ``intent SHA`` before registering content whose
  hash is SHA, ``registered N SHA`` once version N of the model ``crash`` is returned.
- BASELINE: a file already stored before the kills; every run logs it again (its blob
  exists, so this exercises the path that must never rewrite an existing blob).
- PAUSE: ``-`` to run freely (the test kills at a random moment), or a point to stop at
  and wait to be killed, with ``paused:POINT`` in STATUS:
  ``upload`` (half of a version's blob copied into its temporary file),
  ``published`` (a version's blob published under its hash, its record not yet written) or
  ``register`` (inside the transaction that records the version's files and inserts it,
  just before the version row's INSERT).

The instrumentation is test code: it wraps keel's functions in this process only (keel has
no hook for it). Not collected by pytest; run as a script by the test.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keel.artifacts.local as local_store
import keel.tracking.client as client_module
from keel import Client
from keel.store.sql import SqlStore
from keel.tracking.environment import capture_environment, installed_distributions

#: cycles of full logging before the worker only logs metrics (bounds the disk it fills)
MAX_CYCLES = 8
VERSION_FILES = 3
VERSION_FILE_BYTES = 512 << 10
ARTIFACT_BYTES = 1 << 20

_status_fd = -1
_context = ["other"]


def status(text: str) -> None:
    """Overwrite the status file in place (one pwrite: cheap enough to call on every step)."""
    os.pwrite(_status_fd, text.ljust(40).encode(), 0)


def pause(point: str) -> None:
    status(f"paused:{point}")
    time.sleep(3600)  # until the test kills this process
    raise SystemExit(f"not killed at {point}")


def traced(step: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark the status with ``<context>:<step>`` while the wrapped call runs."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            status(f"{_context[0]}:{step}")
            try:
                return fn(*args, **kwargs)
            finally:
                status(f"{_context[0]}:between")

        return inner

    return wrap


def in_context(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            _context[0] = name
            try:
                return fn(*args, **kwargs)
            finally:
                _context[0] = "other"
                status("other")

        return inner

    return wrap


def instrument(pause_at: str) -> None:
    """Wrap keel's steps to report them, and stop at ``pause_at``."""
    client_module.Client.log_model_version = in_context("version")(  # type: ignore[method-assign]
        client_module.Client.log_model_version
    )
    client_module.Client.log_run_artifact = in_context("artifact")(  # type: ignore[method-assign]
        client_module.Client.log_run_artifact
    )
    client_module._content_hash = traced("hash")(client_module._content_hash)
    local_store.LocalArtifactStore.put_file = traced("upload")(  # type: ignore[method-assign]
        local_store.LocalArtifactStore.put_file
    )
    SqlStore.register_model_version = traced("register")(  # type: ignore[method-assign]
        SqlStore.register_model_version
    )
    SqlStore.record_artifacts = traced("record")(SqlStore.record_artifacts)  # type: ignore[method-assign]

    if pause_at == "upload":
        copy = local_store._copy_and_hash

        def half_then_pause(src: Any, out: Any) -> tuple[str, int]:
            if _context[0] == "version":
                out.write(src.read(VERSION_FILE_BYTES // 2))
                out.flush()
                pause("upload")
            return copy(src, out)

        local_store._copy_and_hash = half_then_pause
    elif pause_at == "published":
        publish = local_store.LocalArtifactStore._publish

        def publish_then_pause(self: Any, tmp: Path, sha256: str, size: int) -> Any:
            info = publish(self, tmp, sha256, size)
            if _context[0] == "version":
                pause("published")
            return info

        local_store.LocalArtifactStore._publish = publish_then_pause  # type: ignore[method-assign]


def pause_in_register(client: Client) -> None:
    """Stop inside the registration transaction, before the version row's INSERT."""
    from sqlalchemy import event

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MODEL_VERSIONS"):
            pause("register")

    store = client.store
    assert isinstance(store, SqlStore)
    event.listen(store.engine, "before_cursor_execute", before)


def main(argv: list[str]) -> None:
    global _status_fd
    store, artifacts, cache, status_path, journal_path, baseline, pause_at = argv
    _status_fd = os.open(status_path, os.O_RDWR | os.O_CREAT, 0o644)
    journal = os.open(journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    instrument(pause_at)
    client = Client(store=store, artifacts=artifacts, cache_dir=cache, project="test")
    exp = client.get_or_create_exp("crash")
    # What a long-running writer has done before: read the installed distributions (each
    # run records them; the first read takes most of a second), so kills land on writes.
    capture_environment()
    installed_distributions()
    if pause_at == "register":
        pause_in_register(client)
    work = Path(cache) / f"work-{os.getpid()}"
    work.mkdir(parents=True)
    status("ready")
    cycle = 0
    while True:
        cycle += 1
        status("other")
        with client.start_run(exp, name=f"pid{os.getpid()}-{cycle}") as run:
            run.log_params({"cycle": cycle})
            for step in range(50):
                run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            if cycle > MAX_CYCLES:
                continue
            run.log_artifact(baseline, "baseline.bin")
            big = work / "big.bin"
            big.write_bytes(os.urandom(ARTIFACT_BYTES))
            run.log_artifact(big, "data/big.bin")
            folder = work / "model"
            folder.mkdir(exist_ok=True)
            for i in range(VERSION_FILES):
                (folder / f"part{i}.bin").write_bytes(os.urandom(VERSION_FILE_BYTES))
            register(client, run, folder, journal)
            single = work / "model.bin"
            single.write_bytes(os.urandom(VERSION_FILE_BYTES))
            register(client, run, single, journal)  # same run: goes to a path of its own


def register(client: Client, run: Any, source: Path, journal: int) -> None:
    from keel.hashing import hash_path

    sha = hash_path(source)
    os.write(journal, f"intent {sha}\n".encode())
    mv = client.log_model_version("crash", run, source)
    os.write(journal, f"registered {mv.version} {mv.content_hash}\n".encode())


if __name__ == "__main__":
    main(sys.argv[1:])
