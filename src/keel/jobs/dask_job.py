"""The two halves of a Dask job (see :mod:`keel.jobs.dask`).

``watch`` runs on the submitting machine (``python -m keel.jobs.dask_job watch FOLDER
ADDRESS CONNECT_TIMEOUT_S``, its stdout and stderr being the job's log): it submits
:func:`run_on_worker` as one Dask task and keeps the job's folder up to date from what the
task says. :func:`run_on_worker` runs on a Dask worker: it writes a job folder of its own
in the worker's local directory and starts keel's job supervisor there
(``python -m keel.jobs.worker supervise``), which enforces the time limit and cancellation
on the job's process group and records the outcome, as for a local job.

Between the two, through the scheduler (small messages only):

* a Dask ``Queue`` ``keel-job-<id>``, task → watcher: ``{"job": {fields}}`` when the
  worker's record changes, ``{"log": text}`` as the job writes, ``{"final": {fields}}``
  once, at the end;
* a Dask ``Event`` ``keel-cancel-<id>``, watcher → task: set when someone cancels the job
  (the watcher sees the job folder's ``cancel`` file);
* a Dask ``Event`` ``keel-started-<id>``: set when the task starts, so a task Dask retries
  after its worker died fails instead of running the job a second time.

A task whose future is released (its watcher died, or ``client.cancel`` on its key) stops
its job, and a supervisor whose worker process died stops the job too: nothing runs on
unwatched.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keel.jobs.files import (
    CANCEL_FILE,
    ENV_WATCH_PARENT,
    JOB_FILE,
    LOG_FILE,
    PROGRESS_FILE,
    SPEC_FILE,
    read_json,
    touch,
    write_json,
)
from keel.jobs.worker import KILL_GRACE_S, _say, _Stop, _update

POLL_S = 0.2
LOG_CHUNK_BYTES = 256 * 1024
#: how long the scheduler may be unreachable before the job counts as lost
LOST_AFTER_S = 60.0
#: how long past its time limit a job may go unreported before the watcher gives up on it
OVERDUE_S = 60.0
#: the fields of the worker's record the watcher copies (never its pids: another machine's)
MIRRORED = (
    "status",
    "started_at",
    "ended_at",
    "exit_code",
    "error",
    "traceback",
    "result",
    "run_id",
    "worker",
)


def names(job_id: str) -> dict[str, str]:
    """The names of a job's Dask objects: its task key, queue and events."""
    return {
        "key": f"keel-job-{job_id}",
        "queue": f"keel-job-{job_id}",
        "cancel": f"keel-cancel-{job_id}",
        "started": f"keel-started-{job_id}",
    }


# --------------------------------------------------------------------------- watcher


def watch(folder: Path, address: str, connect_timeout_s: float) -> int:
    """Submit the job in ``folder`` to the scheduler at ``address`` and mirror it there."""
    from keel.errors import KeelError
    from keel.jobs.dask import connect

    stop = _Stop()
    _update(folder, pid=os.getpid(), host=socket.gethostname())  # lets readers tell it died

    def on_signal(signum: int, _frame: Any) -> None:
        stop.request("cancelled", f"cancelled ({signal.Signals(signum).name} to its watcher)")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    spec = read_json(folder / SPEC_FILE) or {}
    # spec.json names the variables the job gets; their values are in this environment
    env = {k: os.environ[k] for k in spec.get("env") or [] if k in os.environ}
    _check_cancel(folder, stop)
    if stop.status is None:
        _say(f"job {folder.name}: connecting to the Dask scheduler at {address}")
        try:
            client = connect(address, connect_timeout_s)
        except KeelError as exc:
            _say(str(exc))
            _update(folder, status="failed", error=str(exc), ended_at=time.time())
            return 1
        try:
            final, reported = _follow(folder, client, address, spec, env, stop)
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
    else:
        final, reported = {"status": stop.status, "error": stop.reason}, False
    final.setdefault("ended_at", time.time())
    _update(folder, **final)
    if not reported:  # the worker's supervisor says how a job it ran ended
        error = final.get("error")
        _say(f"job {folder.name} {final.get('status')}" + (f": {error}" if error else ""))
    return 0


def _check_cancel(folder: Path, stop: _Stop) -> None:
    if (folder / CANCEL_FILE).exists():
        stop.request("cancelled", "cancelled")


def _follow(
    folder: Path, client: Any, address: str, spec: dict[str, Any], env: dict[str, str], stop: _Stop
) -> tuple[dict[str, Any], bool]:
    """Submit the task and mirror it until it ends: its final fields, and whether they came
    from the worker."""
    from distributed import Event, Queue

    job_id = folder.name
    name = names(job_id)
    queue = Queue(name["queue"], client=client)
    cancel = Event(name["cancel"], client=client)
    started_event = Event(name["started"], client=client)
    future = client.submit(
        run_on_worker,
        job_id,
        spec,
        env,
        key=name["key"],
        pure=False,
        retries=0,
    )
    _say(f"job {job_id} submitted to the Dask cluster at {address} (task {future.key})")
    timeout = spec.get("timeout_s")
    on_worker = False
    asked = False
    started: float | None = None
    lost_since: float | None = None
    try:
        while True:
            try:
                messages = queue.get(batch=True)
                lost_since = None
            except Exception as exc:  # the scheduler may be back in a moment
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > LOST_AFTER_S:
                    error = f"lost the Dask scheduler at {address}: {_one_line(exc)}"
                    return {"status": "failed", "error": error}, False
                time.sleep(1.0)
                continue
            final = None
            for message in messages:
                final = _apply(folder, message) or final
                if "job" in message:
                    on_worker = True
                    if message["job"].get("worker"):
                        _say(f"job {job_id} is on Dask worker {message['job']['worker']}")
                    if message["job"].get("status") == "running" and started is None:
                        started = time.monotonic()
            if final is not None:
                return final, True
            if not asked:
                _check_cancel(folder, stop)
                if stop.status is not None:
                    asked = True
                    _say(f"{stop.reason}: asking the worker to stop the job")
                    cancel.set()
                    if not on_worker:  # not started anywhere yet: drop it from the queue
                        client.cancel(future)
            if future.done():
                # the task puts its final message before it returns: read what is left
                for message in queue.get(batch=True):
                    final = _apply(folder, message) or final
                if final is not None:
                    return final, True
                return _outcome(future, stop), False
            if (
                timeout
                and started is not None
                and time.monotonic() - started > float(timeout) + KILL_GRACE_S + OVERDUE_S
            ):
                client.cancel(future)
                return {
                    "status": "timed_out",
                    "error": f"stopped after its {float(timeout):g} s time limit "
                    "(the worker did not report the job's end)",
                }, False
            time.sleep(POLL_S)
    finally:
        with contextlib.suppress(Exception):
            queue.close()
        for event in (cancel, started_event):
            with contextlib.suppress(Exception):
                event.clear()  # a cleared event with no waiters is forgotten by the scheduler


def _apply(folder: Path, message: dict[str, Any]) -> dict[str, Any] | None:
    """Copy one message of the task into the job's folder; the final fields, if it is the
    last one."""
    if "log" in message:  # this process's stdout is the job's log file
        sys.stdout.write(message["log"])
        sys.stdout.flush()
    if "job" in message:
        fields = {k: v for k, v in message["job"].items() if k in MIRRORED}
        if fields:
            _update(folder, **fields)
    if "final" in message:
        return {k: v for k, v in message["final"].items() if k in MIRRORED}
    return None


def _outcome(future: Any, stop: _Stop) -> dict[str, Any]:
    """The job's outcome from its future alone (the task never reported one)."""
    if future.status == "cancelled":
        if stop.status is not None:
            return {"status": stop.status, "error": stop.reason}
        return {"status": "cancelled", "error": "its Dask task was cancelled on the cluster"}
    if future.status == "error":
        exc = future.exception()
        return {"status": "failed", "error": f"its Dask task failed: {_one_line(exc)}"}
    return {"status": "failed", "error": "its Dask task ended without reporting an outcome"}


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:400]}" if lines else type(exc).__name__


# --------------------------------------------------------------------------- worker


def run_on_worker(job_id: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The Dask task of a job: run it under keel's job supervisor in a subprocess here and
    report to the watcher as it goes. Returns the job's final fields."""
    from distributed import Event, Queue, get_worker

    worker = get_worker()
    name = names(job_id)
    queue = Queue(name["queue"])
    root: Path | None = None

    def send(**message: Any) -> None:
        with contextlib.suppress(Exception):  # a gone watcher must not fail the job
            queue.put(message)

    try:
        started = Event(name["started"])
        if started.is_set():
            final = _ended(
                "failed",
                "the Dask worker running the job died; keel does not start a job twice",
            )
        else:
            started.set()
            send(job={"worker": worker.address})
            root = Path(tempfile.mkdtemp(prefix="keel-job-", dir=worker.local_directory))
            final = _run_here(root, job_id, spec, env, worker, queue, Event(name["cancel"]))
    except Exception as exc:
        final = _ended("failed", f"the job's Dask task failed: {_one_line(exc)}")
    send(final=final)
    with contextlib.suppress(Exception):
        queue.close()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    return final


def _ended(status: str, error: str) -> dict[str, Any]:
    return {"status": status, "error": error, "ended_at": time.time()}


def _run_here(
    root: Path,
    job_id: str,
    spec: dict[str, Any],
    env: dict[str, str],
    worker: Any,
    queue: Any,
    cancel: Any,
) -> dict[str, Any]:
    if cancel.is_set():
        return _ended("cancelled", "cancelled")
    cwd = spec.get("cwd")
    if cwd and not Path(cwd).is_dir():
        return _ended(
            "failed",
            f"the job's working folder {cwd} does not exist on Dask worker {worker.address}: "
            "workers must see the project's files at the same path (a shared folder)",
        )
    folder = root / job_id
    folder.mkdir()
    write_json(folder / SPEC_FILE, spec)
    write_json(
        folder / JOB_FILE,
        {
            "id": job_id,
            "status": "queued",
            "name": spec.get("name") or spec.get("target"),
            "target": spec.get("target"),
            "labels": spec.get("labels") or {},
            "timeout_s": spec.get("timeout_s"),
            "created_at": time.time(),
            "executor": "dask",
        },
    )
    log_path = folder / LOG_FILE
    key = _current_key()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "keel.jobs.worker", "supervise", str(folder), "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, ENV_WATCH_PARENT: "1"},
            cwd=str(folder),
            start_new_session=True,
        )
    reader = _LogReader(log_path)
    seen: dict[str, Any] = {}
    asked = False
    try:
        while True:
            ended = proc.poll() is not None
            text = reader.read()
            if text:
                queue.put({"log": text})
            record = _worker_record(folder)
            changed = {k: v for k, v in record.items() if seen.get(k) != v}
            if changed:
                queue.put({"job": changed})
                seen.update(changed)
            if ended:
                break
            if not asked and (cancel.is_set() or _released(worker, key)):
                asked = True
                touch(folder / CANCEL_FILE, "cancelled")
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:  # this task itself failed: take the job down with it
            touch(folder / CANCEL_FILE, "cancelled")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=KILL_GRACE_S + 5)
    while rest := reader.read():  # what is left, in messages of a bounded size
        queue.put({"log": rest})
    if rest := reader.read(final=True):
        queue.put({"log": rest})
    record = _worker_record(folder)
    if record.get("status") in (None, "queued", "running"):
        code = proc.returncode
        return _ended("failed", f"the job's supervisor ended (code {code}) without an outcome")
    return {k: record.get(k) for k in MIRRORED if k != "worker"}


def _worker_record(folder: Path) -> dict[str, Any]:
    record = read_json(folder / JOB_FILE) or {}
    progress = read_json(folder / PROGRESS_FILE) or {}
    fields = {k: record.get(k) for k in MIRRORED if k != "worker"}
    fields["run_id"] = fields.get("run_id") or progress.get("run_id")
    return fields


def _current_key() -> str | None:
    try:
        from distributed.worker import thread_state
    except ImportError:  # pragma: no cover
        return None
    return getattr(thread_state, "key", None)


def _released(worker: Any, key: str | None) -> bool:
    """Whether the cluster no longer wants this task (its future was released or cancelled)."""
    if key is None:
        return False
    task = worker.state.tasks.get(key)
    return task is None or task.state in ("cancelled", "released", "forgotten")


class _LogReader:
    """The text appended to a log file since the last read (whole characters only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self, final: bool = False) -> str:
        """Up to ``LOG_CHUNK_BYTES`` more (the rest next time: messages stay small);
        ``final``: also the bytes of a character the log ends in the middle of."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(LOG_CHUNK_BYTES)
        except FileNotFoundError:
            data = b""
        self.offset += len(data)
        return self.decoder.decode(data, final=final)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[0] != "watch":
        print(
            "usage: python -m keel.jobs.dask_job watch JOB_FOLDER ADDRESS [CONNECT_TIMEOUT_S]",
            file=sys.stderr,
        )
        return 2
    timeout = float(args[3]) if len(args) > 3 else 10.0
    return watch(Path(args[1]), args[2], timeout)


if __name__ == "__main__":
    sys.exit(main())
