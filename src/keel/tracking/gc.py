"""Garbage collection: purge deleted runs, then remove artifact files nothing refers to.

Blobs are content-addressed and shared, so a blob is removed only when no artifact row of
any run, dataset or invocation batch refers to it, and only when it is older than a grace
period: an upload in flight writes its blob before its record is committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.tracking.client import Client


@dataclass
class GcReport:
    """What a collection removed (or, in a dry run, would remove)."""

    purged_runs: list[str] = field(default_factory=list)
    kept_runs: list[str] = field(default_factory=list)
    removed_blobs: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    removed_partials: int = 0
    dry_run: bool = False


def collect_garbage(client: Client, dry_run: bool = False, grace_seconds: float = 3600) -> GcReport:
    """Purge deleted runs and unreferenced blobs of the client's stores."""
    report = GcReport(dry_run=dry_run)
    store = client.store
    if dry_run:
        deleted = store.find_runs(None, {"lifecycle": "deleted"}, include_deleted=True)
        report.purged_runs = [r.id for r in deleted]
    else:
        report.purged_runs, report.kept_runs = store.purge_deleted_runs()
    report.removed_blobs, report.freed_bytes = sweep_blobs(client, dry_run, grace_seconds)
    if not dry_run:
        report.removed_partials = client.artifact_store.remove_partials(grace_seconds)
    return report


def sweep_blobs(client: Client, dry_run: bool, grace_seconds: float) -> tuple[list[str], int]:
    """Remove (or, in a dry run, list) the blobs no record refers to that are older than
    the grace period; returns (their sha256, bytes freed)."""
    referenced = client.store.referenced_blobs()
    blobs = client.artifact_store
    cutoff = time.time() - grace_seconds
    removed: list[str] = []
    freed = 0
    for sha in list(blobs.iter_blobs()):
        if sha in referenced:
            continue
        modified = blobs.modified(sha)
        if modified is not None and modified > cutoff:
            continue
        removed.append(sha)
        freed += blobs.size(sha)
        if not dry_run:
            blobs.delete(sha)
    return removed, freed
