"""Running lifecycle work inside a tracked run, and what a failure leaves behind."""

from __future__ import annotations

import json
import shutil
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.lifecycle.project import Project
    from keel.tracking.handles import RunApi

FAILURE_ARTIFACT = "failure/traceback.txt"


class RunFailed(KeelError):
    """A lifecycle command failed inside its tracked run (the run is marked failed)."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


@contextmanager
def tracked_run(
    project: Project, kind: str, name: str, tags: Mapping[str, Any]
) -> Iterator[RunApi]:
    """Start a run of ``kind`` in the model's experiment; on an exception, mark it failed,
    save the traceback as its ``failure`` artifact and raise :class:`RunFailed`."""
    run = project.client.start_run(project.name, name=name, kind=kind, tags=dict(tags))
    try:
        yield run
    except BaseException as exc:
        status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        text = project.config.scrub(text)
        try:
            run.log_artifact(_writer(text), FAILURE_ARTIFACT)
        finally:
            run.end(status, error=text)  # the masked text, not the exception's own
        if isinstance(exc, Exception):
            what = f"{type(exc).__name__}: {project.config.scrub(str(exc))}"
            raise RunFailed(
                f"{kind} failed: {what} (run {run.id} marked failed; traceback: "
                f"keel runs show {run.id}, artifact {FAILURE_ARTIFACT})",
                run.id,
            ) from exc
        raise
    else:
        run.end("finished")


def _writer(text: str) -> Any:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def json_writer(value: Any) -> Any:
    """A dumper for ``log_artifact`` writing ``value`` as JSON."""

    def write(path: Path) -> None:
        path.write_text(
            json.dumps(value, indent=2, sort_keys=True, default=str, allow_nan=True),
            encoding="utf-8",
        )

    return write


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"keel-{prefix}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
