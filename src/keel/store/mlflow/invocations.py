"""Invocation records on an MLflow server, which has no place for them: one index file per
batch (request id, time, latency, status, line in the batch blob) under
``keel/invocations/<version id>/<newest ms>-<oldest ms>-<batch sha256>.json`` in the
server's artifact root, so a time window reads only the batches it overlaps. Functions of
:class:`~keel.store.mlflow.store.MlflowStore`, which delegates to them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from keel.entities import ArtifactFile, InvocationIndex
from keel.store.mlflow import codec as c
from keel.store.mlflow import models

if TYPE_CHECKING:
    from keel.store.mlflow.store import MlflowStore

INVOCATIONS_ROOT = "keel/invocations"


def record_invocations(
    store: MlflowStore, version_id: str, batch: ArtifactFile, rows: Sequence[InvocationIndex]
) -> None:
    models._version_by_id(store, version_id)
    if not rows:
        return
    low = min(r.timestamp for r in rows)
    high = max(r.timestamp for r in rows)
    name = f"{high:015d}-{low:015d}-{batch.sha256}.json"
    data = [
        [r.request_id, r.timestamp, r.latency_ms, r.status, r.batch_sha256, r.batch_offset]
        for r in rows
    ]
    folder = f"{INVOCATIONS_ROOT}/{c.segment(version_id)}"
    store.http.put_artifact(f"{folder}/{name}", json.dumps({"rows": data}).encode())
    store.record_artifacts("model_version", version_id, [batch])


def find_invocations(
    store: MlflowStore,
    version_id: str,
    since: int | None = None,
    until: int | None = None,
    limit: int | None = None,
) -> list[InvocationIndex]:
    folder = f"{INVOCATIONS_ROOT}/{c.segment(version_id)}"
    batches = []
    for entry in store.http.list_artifacts(folder):
        name = str(entry["path"]).rsplit("/", 1)[-1]
        parts = name.removesuffix(".json").split("-")
        if entry.get("is_dir") or len(parts) != 3 or not (parts[0] + parts[1]).isdigit():
            continue
        high, low = int(parts[0]), int(parts[1])
        if (since is not None and high < since) or (until is not None and low > until):
            continue
        batches.append((high, name))
    batches.sort(reverse=True)
    found: list[tuple[int, int, int, InvocationIndex]] = []
    for order, (high, name) in enumerate(batches):
        if limit is not None and len(found) >= limit:
            newest = sorted((f[0] for f in found), reverse=True)
            if high < newest[limit - 1]:
                break
        data = store.http.get_artifact(f"{folder}/{name}")
        if data is None:
            continue
        for request_id, ts, latency, status, sha, offset in json.loads(data)["rows"]:
            if (since is not None and ts < since) or (until is not None and ts > until):
                continue
            row = InvocationIndex(request_id, int(ts), float(latency), status, sha, int(offset))
            found.append((int(ts), -order, int(offset), row))
    found.sort(key=lambda f: (f[0], f[1], f[2]), reverse=True)
    rows = [f[3] for f in found]
    return rows if limit is None else rows[:limit]
