"""``keel doctor --repair``: find and clear what writers killed midway leave behind.

A process killed while it logs (SIGKILL, an out-of-memory kill, a lost machine) cannot leave
a half-registered model version: a version's files are stored first and its row is
committed in one transaction after them. What it can leave, and what :func:`repair` clears:

- **partial uploads**: temporary files of a blob write that never finished (or finished but
  was not tidied); removed when older than the grace period.
- **unreferenced blobs**: complete blobs whose record was never committed; removed when older
  than the grace period (as ``keel gc`` does), since an upload in flight writes its blob
  before its record.
- **runs left running**: a run still ``running`` whose process, on this host, is gone (or
  its pid now belongs to a process started after the run); marked ``killed`` with a failure
  that says so. Runs of other hosts (or of another PID namespace: another container with the
  same host name) are never touched: their processes cannot be seen here.

It also checks, and reports without changing, every model version: its files are recorded,
each blob is stored with the recorded size, and together they hash to the version's content
hash. A version failing that cannot be repaired here: it is reported, and the report is not
``ok``. Running :func:`repair` twice in a row finds nothing the second time.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.entities import ModelVersion, Run
    from keel.tracking.client import Client

__all__ = ["RepairReport", "process_gone", "repair", "run_process_gone"]

#: a process that started this long after its run did cannot be the one that started it
PID_REUSE_SLACK_S = 2.0


@dataclass
class RepairReport:
    """What :func:`repair` found, and what it cleared (nothing in a dry run).

    Attributes:
        partial_uploads: temporary files of interrupted blob writes (all ages).
        removed_partials: how many of them were removed (those older than the grace).
        unreferenced_blobs: sha256 of blobs no record refers to, older than the grace.
        freed_bytes: their total size.
        dead_runs: ids of runs left ``running`` by a process of this host that is gone.
        broken_versions: ``model@N: why`` for each version whose files are incomplete.
        versions_checked: how many model versions were checked.
        dry_run: nothing was changed.
    """

    partial_uploads: list[str] = field(default_factory=list)
    removed_partials: int = 0
    unreferenced_blobs: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    dead_runs: list[str] = field(default_factory=list)
    broken_versions: list[str] = field(default_factory=list)
    versions_checked: int = 0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """Whether nothing is left that needs a person: every version is complete."""
        return not self.broken_versions

    @property
    def found(self) -> int:
        """How many leftovers were found (broken versions included)."""
        return (
            len(self.partial_uploads)
            + len(self.unreferenced_blobs)
            + len(self.dead_runs)
            + len(self.broken_versions)
        )

    def rows(self) -> list[tuple[str, int, int, str]]:
        """(what, found, cleared, note) per kind of leftover, for a table."""
        cleared = 0 if self.dry_run else 1
        return [
            (
                "partial uploads",
                len(self.partial_uploads),
                self.removed_partials,
                "temporary files of blob writes that never finished",
            ),
            (
                "unreferenced blobs",
                len(self.unreferenced_blobs),
                len(self.unreferenced_blobs) * cleared,
                f"{self.freed_bytes} bytes no record refers to",
            ),
            (
                "runs left running",
                len(self.dead_runs),
                len(self.dead_runs) * cleared,
                "their process on this host is gone: marked killed",
            ),
            (
                "incomplete model versions",
                len(self.broken_versions),
                0,
                "; ".join(self.broken_versions) or f"{self.versions_checked} checked, all complete",
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "found": self.found}


def repair(client: Client, grace_seconds: float = 3600, dry_run: bool = False) -> RepairReport:
    """Find and clear the leftovers of killed writers in the client's stores.

    Args:
        client: whose metadata and artifact stores to repair.
        grace_seconds: spare partial uploads and unreferenced blobs younger than this
            (a write may still be in flight).
        dry_run: only find, change nothing.

    Returns:
        What was found and cleared.
    """
    from keel.tracking.gc import sweep_blobs

    report = RepairReport(dry_run=dry_run)
    blobs = client.artifact_store
    report.partial_uploads = sorted(blobs.iter_partials())
    if not dry_run:
        report.removed_partials = blobs.remove_partials(grace_seconds)
    report.unreferenced_blobs, report.freed_bytes = sweep_blobs(client, dry_run, grace_seconds)
    for run in client.store.find_runs(None, {"status": "running"}, include_deleted=True):
        if run_process_gone(run):
            report.dead_runs.append(run.id)
            if not dry_run:
                _mark_killed(client, run)
    versions = client.store.find_model_versions(None)
    report.versions_checked = len(versions)
    for mv in versions:
        why = _incomplete(client, mv)
        if why:
            report.broken_versions.append(f"{mv.model}@{mv.version}: {why}")
    return report


def run_process_gone(run: Run) -> bool:
    """Whether the process that started a running run is known to be gone: only for runs
    of this host and, where recorded, this PID namespace (another container's pids are not
    visible here)."""
    from keel.tracking.environment import pid_namespace

    env = run.environment or {}
    pid = env.get("pid")
    if env.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    if "pid_namespace" in env and env["pid_namespace"] != pid_namespace():
        return False
    since = run.start_time or run.created_at
    return process_gone(pid, since / 1000 if since else None)


def process_gone(pid: int, since: float | None = None) -> bool:
    """Whether no process ``pid`` of this host that started before ``since`` (POSIX time)
    is alive: it is absent, a zombie, or the pid now belongs to a newer process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    except OSError:  # no signals on this platform: cannot tell
        return False
    state, started = _proc_stat(pid)
    if state == "Z":
        return True
    return since is not None and started is not None and started > since + PID_REUSE_SLACK_S


def _proc_stat(pid: int) -> tuple[str | None, float | None]:
    """(state letter, start as POSIX time) from Linux's /proc; (None, None) elsewhere."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        fields = text.rsplit(")", 1)[1].split()  # the name in (…) may hold spaces
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None, None
    # fields[0] is field 3 of proc(5) (state); field 22 is the start time in clock ticks
    return fields[0], boot + int(fields[19]) / ticks


def _mark_killed(client: Client, run: Run) -> None:
    env = run.environment or {}
    client.store.update_run(
        run.id,
        status="killed",
        end_time=int(time.time() * 1000),
        failure=(
            f"the process that ran it (pid {env.get('pid')} on {env.get('host')}) ended "
            "without closing it; marked killed by keel doctor --repair"
        ),
    )


def _incomplete(client: Client, mv: ModelVersion) -> str:
    """Why a version's files are incomplete, or "" when they are all there."""
    from keel.tracking.client import _files_hash

    if mv.run_id is None:
        return ""  # registered without files (through the API): nothing to check
    files = client.store.list_artifacts("run", mv.run_id, mv.path_in_run)
    if not files:
        return f"run {mv.run_id} has no files at {mv.path_in_run!r}"
    blobs = client.artifact_store
    for f in files:
        if not blobs.exists(f.sha256):
            return f"blob {f.sha256[:12]}… of {f.path!r} is missing"
        if blobs.size(f.sha256) != f.size:
            return f"blob {f.sha256[:12]}… of {f.path!r} has the wrong size"
    if _files_hash(files, mv.path_in_run) != mv.content_hash:
        return "its files do not hash to its content hash"
    return ""
