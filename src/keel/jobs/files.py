"""The on-disk layout of a local job, shared by the executor and the worker processes.

::

    <jobs folder>/<job id>/
        job.json        the Job record (written whole, atomically: any process may read it)
        spec.json       the JobSpec (environment values left out)
        log.txt         what the job's processes wrote to stdout and stderr
        progress.json   what the job's code reported while running (its run id …)
        result.json     what the function returned, or what it raised
        stop            present once the job must stop; holds the reason
        cancel          present once someone asked to cancel the job
        work/           the job's working folder when its spec names none
    <jobs folder>/.slots/<n>.lock   one per job allowed to run at once

Kept free of heavy imports: the supervising process imports nothing else of keel.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"
SPEC_FILE = "spec.json"
LOG_FILE = "log.txt"
PROGRESS_FILE = "progress.json"
RESULT_FILE = "result.json"
STOP_FILE = "stop"
CANCEL_FILE = "cancel"
WORK_DIR = "work"
SLOTS_DIR = ".slots"

#: environment variables the job's process finds itself by
ENV_JOB_ID = "KEEL_JOB_ID"
ENV_JOB_DIR = "KEEL_JOB_DIR"
#: set for a supervisor that must stop its job when the process that started it ends
ENV_WATCH_PARENT = "KEEL_JOB_WATCH_PARENT"
#: the progress key a job sets to have its outcome tagged on the run it reported
RECORD_ON_RUN = "record_on_run"


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically (a reader sees the old or the new file,
    never half of one): a temporary file in the same folder, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(value, handle, default=str, allow_nan=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> Any:
    """The JSON in ``path`` (None if the file is missing or unreadable)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def touch(path: Path, text: str = "") -> None:
    """Create a marker file (its content, if any, is a reason for people)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
