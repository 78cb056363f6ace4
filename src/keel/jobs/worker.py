"""The processes of a local job: ``python -m keel.jobs.worker supervise|run JOB_FOLDER``.

``supervise`` is what :class:`~keel.jobs.local.LocalExecutor` starts: it waits for a free
slot, starts ``run`` in a process group of its own, enforces the time limit and cancellation
(stopping the whole group: SIGTERM, then SIGKILL after a grace period), and records the
outcome in ``job.json``. It outlives the web worker that submitted the job, so a job's
state never depends on the server process that started it.

``run`` imports the spec's ``module:function``, calls it with the spec's arguments and
writes what it returned (or raised) to ``result.json``. SIGTERM becomes a
``KeyboardInterrupt`` carrying the reason, so a tracked run the job started is marked
killed instead of being left running. With the spec's ``memory_mb``, ``run`` first caps
its own address space (``RLIMIT_AS``, inherited by what it starts): an allocation beyond
it fails with ``MemoryError`` and the job fails saying it exceeded the limit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from keel.jobs.files import (
    CANCEL_FILE,
    ENV_JOB_DIR,
    ENV_JOB_ID,
    ENV_WATCH_PARENT,
    JOB_FILE,
    PROGRESS_FILE,
    RECORD_ON_RUN,
    RESULT_FILE,
    SLOTS_DIR,
    SPEC_FILE,
    STOP_FILE,
    WORK_DIR,
    read_json,
    touch,
    write_json,
)

POLL_S = 0.1
#: the supervisor's pid, as its runner should see it as its parent
_ENV_SUPERVISOR = "KEEL_JOB_SUPERVISOR_PID"
#: how long the job's processes get to end after SIGTERM before they are killed
KILL_GRACE_S = float(os.environ.get("KEEL_JOB_KILL_GRACE_S", "3"))


def _say(message: str) -> None:
    """A line of the supervisor's own in the job's log."""
    stamp = time.strftime("%H:%M:%S")
    print(f"[keel {stamp}] {message}", flush=True)


def _update(folder: Path, **fields: Any) -> dict[str, Any]:
    job = read_json(folder / JOB_FILE) or {}
    job.update(fields)
    write_json(folder / JOB_FILE, job)
    return job


# --------------------------------------------------------------------------- supervise


class _Stop:
    """Why the supervisor must stop the job (set from signal handlers too)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.status: str | None = None

    def request(self, status: str, reason: str) -> None:
        if self.status is None:
            self.status, self.reason = status, reason


def _take_slot(folder: Path, slots: int, stop: _Stop) -> Any:
    """Hold one of ``slots`` lock files (kept open for the job's life); None if stopped
    while waiting."""
    import fcntl

    lock_dir = folder.parent / SLOTS_DIR
    lock_dir.mkdir(exist_ok=True)
    said = False
    while True:
        for n in range(slots):
            handle = (lock_dir / f"{n}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            return handle
        if not said:
            _say(f"waiting for one of the {slots} job slots to free up")
            said = True
        _check_cancel(folder, stop)
        if stop.status is not None:
            return None
        time.sleep(POLL_S * 2)


def _check_cancel(folder: Path, stop: _Stop) -> None:
    if (folder / CANCEL_FILE).exists():
        stop.request("cancelled", "cancelled")


def supervise(folder: Path, slots: int) -> int:
    job = read_json(folder / JOB_FILE) or {}
    spec = read_json(folder / SPEC_FILE) or {}
    stop = _Stop()
    _update(folder, pid=os.getpid(), host=_host())  # lets readers tell a dead supervisor

    def on_signal(signum: int, _frame: Any) -> None:
        stop.request("cancelled", f"cancelled ({signal.Signals(signum).name} to the supervisor)")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _check_cancel(folder, stop)
    slot = _take_slot(folder, slots, stop) if stop.status is None and slots > 0 else None
    if stop.status is not None:
        _say(f"job {folder.name} {stop.reason} before it started")
        _update(folder, status=stop.status, error=stop.reason, ended_at=time.time())
        return 0
    timeout = spec.get("timeout_s")
    cwd = spec.get("cwd") or str(folder / WORK_DIR)
    Path(cwd).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env[ENV_JOB_ID] = folder.name
    env[ENV_JOB_DIR] = str(folder)
    env.setdefault("PYTHONUNBUFFERED", "1")  # the log shows lines as they are printed
    env[_ENV_SUPERVISOR] = str(os.getpid())
    started = time.time()
    memory_mb = spec.get("memory_mb")
    limit = f", time limit {_seconds(timeout)}" if timeout else ""
    limit += f", memory limit {int(memory_mb)} MB" if memory_mb else ""
    _say(f"job {folder.name} started: {spec.get('target')}{limit}")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "keel.jobs.worker", "run", str(folder)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it reaches its children
        )
    except OSError as exc:
        _update(folder, status="failed", error=f"cannot start the job: {exc}", ended_at=time.time())
        return 1
    # "running" and the runner's pid in one write: a reader that sees the job running can
    # always stop its processes should this supervisor die.
    _update(folder, status="running", started_at=started, runner_pid=proc.pid)
    code = _watch(folder, proc, stop, started, timeout)
    _kill_group(proc.pid, signal.SIGKILL)  # processes the job left behind end with it
    if slot is not None:
        slot.close()
    _finish(folder, job, code, stop, timeout, memory_mb)
    return 0


def _watch(
    folder: Path, proc: subprocess.Popen[bytes], stop: _Stop, started: float, timeout: Any
) -> int:
    stopping_since: float | None = None
    # Started by a process that must stay (a Dask worker's task): the job ends with it.
    parent = os.getppid() if os.environ.get(ENV_WATCH_PARENT) else None
    while True:
        try:
            return proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            pass
        if stopping_since is None:
            _check_cancel(folder, stop)
            if parent is not None and os.getppid() != parent:
                stop.request("failed", "the process that started the job (its worker) is gone")
            if stop.status is None and timeout and time.time() - started > float(timeout):
                stop.request("timed_out", f"stopped after its {_seconds(timeout)} time limit")
            if stop.status is not None:
                _say(f"{stop.reason}: stopping the job's processes")
                touch(folder / STOP_FILE, stop.reason or "")
                _kill_group(proc.pid, signal.SIGTERM)
                stopping_since = time.monotonic()
        elif time.monotonic() - stopping_since > KILL_GRACE_S:
            _say(f"still running {KILL_GRACE_S:g} s after SIGTERM: killing them")
            _kill_group(proc.pid, signal.SIGKILL)
            return proc.wait()


def _finish(
    folder: Path,
    job: dict[str, Any],
    code: int,
    stop: _Stop,
    timeout: Any,
    memory_mb: Any = None,
) -> None:
    result = read_json(folder / RESULT_FILE) or {}
    progress = read_json(folder / PROGRESS_FILE) or {}
    fields: dict[str, Any] = {
        "exit_code": code,
        "ended_at": time.time(),
        "run_id": progress.get("run_id") or result.get("run_id") or job.get("run_id"),
    }
    if stop.status is not None:
        fields.update(status=stop.status, error=stop.reason)
    elif code == 0:
        fields.update(status="finished", result=result.get("value"), error=None)
    else:
        # The traceback is kept for failures only: a stopped job's is the stop itself.
        fields.update(
            status="failed",
            error=result.get("error") or _exit_reason(code, memory_mb),
            traceback=result.get("traceback"),
        )
    if progress.get(RECORD_ON_RUN) and fields["run_id"]:
        # Before the record says done: whoever waits for the job finds the run tagged.
        on_disk = read_json(folder / JOB_FILE) or {}
        _record_on_run(str(fields["run_id"]), folder.name, {**on_disk, **fields})
    _update(folder, **fields)
    _say(
        f"job {folder.name} {fields['status']}"
        + (f": {fields['error']}" if fields.get("error") else "")
    )


def _record_on_run(run_id: str, job_id: str, job: dict[str, Any]) -> None:
    """Tag the keel run the job reported with the job's outcome (``job_status``,
    ``job_exit_code``, ``job_executor``), so the run says how its process ended even when
    the job was stopped. The store is the one the job's environment names (``KEEL_STORE``…):
    jobs ask for this with ``report(run_id=..., record_on_run=True)``."""
    tags = {
        "job": job_id,
        "job_status": job.get("status"),
        "job_exit_code": job.get("exit_code"),
        "job_executor": job.get("executor") or "local",
    }
    try:
        from keel.tracking.client import Client

        client = Client(
            store=os.environ.get("KEEL_STORE"),
            artifacts=os.environ.get("KEEL_ARTIFACTS"),
            project=os.environ.get("KEEL_PROJECT"),
        )
        try:
            client.set_tags_on_run(run_id, {k: v for k, v in tags.items() if v is not None})
        finally:
            client.close()
    except Exception as exc:  # the job's outcome is recorded in job.json regardless
        _say(f"could not record the job's outcome on run {run_id}: {type(exc).__name__}: {exc}")


def _exit_reason(code: int, memory_mb: Any = None) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        if memory_mb and -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
            # native code that cannot allocate often crashes instead of raising MemoryError
            hint = f" (it may have exceeded the memory limit of {int(memory_mb)} MB)"
        return f"the job's process was killed by {name}{hint}"
    return f"the job's process exited with code {code}"


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _seconds(value: Any) -> str:
    return f"{float(value):g} s"


def _host() -> str:
    return socket.gethostname()


# --------------------------------------------------------------------------- run


def run(folder: Path) -> int:
    spec = read_json(folder / SPEC_FILE) or {}
    supervisor = os.environ.get(_ENV_SUPERVISOR)
    if supervisor:
        threading.Thread(target=_end_with_supervisor, args=(int(supervisor),), daemon=True).start()

    def on_term(signum: int, _frame: Any) -> None:
        try:
            reason = (folder / STOP_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            reason = ""
        raise KeyboardInterrupt(reason or f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_term)
    memory_mb = spec.get("memory_mb")
    if memory_mb:
        limit_memory(int(memory_mb))
    try:
        function = _load(str(spec.get("target", "")))
        value = function(**(spec.get("args") or {}))
    except BaseException as exc:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(text)
        sys.stderr.flush()
        error = _one_line(exc)
        if memory_mb and _out_of_memory(exc):
            error = f"the job exceeded the memory limit of {int(memory_mb)} MB ({error})"
        write_json(
            folder / RESULT_FILE,
            {"ok": False, "error": error, "traceback": text, **_run_of(exc)},
        )
        return 1
    write_json(folder / RESULT_FILE, {"ok": True, "value": value})
    return 0


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at ``memory_mb`` MiB (``RLIMIT_AS``, soft and hard,
    so the code it runs cannot raise it; processes it starts inherit it).

    Address space is more than resident memory: libraries that reserve large ranges up
    front (pyarrow's allocator, OpenBLAS's per-thread buffers) count in full, so a limit
    under about 1 GB may keep them from loading. Without ``resource`` (Windows) nothing is
    capped and the log says so.
    """
    try:
        import resource
    except ImportError:
        _say(f"no memory limit on this platform: the {memory_mb} MB limit is not enforced")
        return
    limit = int(memory_mb) * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised from, a ``MemoryError`` (a pipeline's own error
    wraps the one its code raised)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _end_with_supervisor(supervisor_pid: int) -> None:
    """Stop this job's processes when its supervisor is gone (killed before it recorded our
    pid, or before it could stop us): unsupervised, a job has no time limit and no record."""
    while os.getppid() == supervisor_pid:
        time.sleep(0.2)
    sys.stderr.write("keel: the job's supervisor is gone; stopping the job\n")
    sys.stderr.flush()
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _run_of(exc: BaseException) -> dict[str, Any]:
    run_id = getattr(exc, "run_id", None)
    return {"run_id": run_id} if isinstance(run_id, str) else {}


def _load(target: str) -> Any:
    import importlib

    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, attr, None)
    if not callable(function):
        raise LookupError(f"job target {target}: {module_name} has no function {attr!r}")
    return function


def _one_line(exc: BaseException) -> str:
    from keel.errors import KeelError

    lines = str(exc).strip().splitlines()
    text = lines[0][:500] if lines else ""
    if isinstance(exc, KeelError) and text:
        return text  # keel's errors are written for people already
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("supervise", "run"):
        print("usage: python -m keel.jobs.worker supervise|run JOB_FOLDER [SLOTS]", file=sys.stderr)
        return 2
    folder = Path(args[1])
    if args[0] == "supervise":
        slots = int(args[2]) if len(args) > 2 else 0
        return supervise(folder, slots)
    return run(folder)


if __name__ == "__main__":
    sys.exit(main())
