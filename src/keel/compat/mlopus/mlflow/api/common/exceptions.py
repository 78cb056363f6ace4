"""``mlopus.mlflow.api.common.exceptions``: the error of a failed artifact upload."""

from __future__ import annotations

from pathlib import Path

from keel.errors import ArtifactError


class FailedToPublishArtifact(ArtifactError):
    """Storing an artifact failed; ``source`` is the file or folder that was being stored
    (a dumper's output is kept there). The cause is chained."""

    def __init__(self, source: Path) -> None:
        super().__init__(str(source))
        self.source = source
