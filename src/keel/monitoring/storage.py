"""Where profiles are kept: as a model version's own files, beside its invocation batches.

- ``monitoring/reference.kprof``: the reference profile (training data and the model's
  outputs on it); computing it again replaces it.
- ``monitoring/live/<window_s>/<window_start_ms>/<writer>.kprof``: the live profile of one
  time window written by one writer (a serving process, or ``update`` for profiles built
  from stored records afterwards). A window's profile is the merge of its writers' files, so
  the replicas of a model each write their own and never overwrite one another.

The bytes live in the artifact store (content-addressed); the metadata store indexes their
paths, so every backend (SQLite, PostgreSQL, a keel server, MLflow) keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keel.errors import NotFound
from keel.monitoring.profiles import Profile

if TYPE_CHECKING:
    from keel.entities import ArtifactFile
    from keel.tracking.client import Client, VersionRef

REFERENCE = "monitoring/reference.kprof"
LIVE = "monitoring/live"
_LIVE_PATH = re.compile(r"^monitoring/live/(\d+)/(\d+)/([A-Za-z0-9_.\-]+)\.kprof$")


@dataclass(frozen=True)
class WindowFile:
    """One stored live profile: which window, which writer, and the file."""

    window_s: int
    start_ms: int
    writer: str
    file: ArtifactFile

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.window_s * 1000


def live_path(window_s: int, start_ms: int, writer: str) -> str:
    return f"{LIVE}/{window_s}/{start_ms}/{writer}.kprof"


def save_reference(client: Client, version: VersionRef, profile: Profile) -> ArtifactFile:
    return client.put_version_file(version, REFERENCE, profile.to_bytes())


def load_reference(client: Client, version: VersionRef) -> Profile:
    """The version's reference profile; NotFound says how to make one."""
    found = [f for f in client.list_version_files(version, "monitoring") if f.path == REFERENCE]
    if not found:
        mv = client.get_model_version(version)
        raise NotFound(
            f"model {mv.model} version {mv.version} has no reference profile: train it with "
            f"monitoring on, or run `keel monitor profile {mv.model}@{mv.version} --source NAME`"
        )
    return Profile.from_bytes(client.read_file_bytes(found[0]))


def has_reference(client: Client, version: VersionRef) -> bool:
    return any(f.path == REFERENCE for f in client.list_version_files(version, "monitoring"))


def save_window(
    client: Client, version: VersionRef, window_s: int, start_ms: int, writer: str, profile: Profile
) -> ArtifactFile:
    return client.put_version_file(
        version, live_path(window_s, start_ms, writer), profile.to_bytes()
    )


def window_files(
    client: Client,
    version: VersionRef,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[WindowFile]:
    """The stored live profiles whose windows overlap ``[since_ms, until_ms)``, oldest first."""
    found = []
    for f in client.list_version_files(version, LIVE):
        match = _LIVE_PATH.match(f.path)
        if match is None:
            continue
        window = WindowFile(int(match[1]), int(match[2]), match[3], f)
        if since_ms is not None and window.end_ms <= since_ms:
            continue
        if until_ms is not None and window.start_ms >= until_ms:
            continue
        found.append(window)
    return sorted(found, key=lambda w: (w.start_ms, w.writer))


def load_windows(client: Client, files: Iterable[WindowFile]) -> list[tuple[WindowFile, Profile]]:
    return [(w, Profile.from_bytes(client.read_file_bytes(w.file))) for w in files]
