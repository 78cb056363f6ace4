"""SimpleML's folders: on keel, files live in keel's artifact store and cache."""

from __future__ import annotations

import os
from pathlib import Path

SIMPLEML_DIRECTORY = str(Path(os.environ.get("SIMPLEML_DIRECTORY", "~/.simpleml")).expanduser())
FILESTORE_DIRECTORY = os.path.join(SIMPLEML_DIRECTORY, "filestore")
CONFIG: dict[str, dict[str, str]] = {}
