"""Running the prediction API under uvicorn: one process, or N worker processes.

With one worker the model is loaded in this process. With several, each worker process
calls :func:`keel.serving.app.create_app`, which loads the model from the ``KEEL_SERVE_*``
environment this function sets: the config path and the exact version (resolved once here,
so every worker serves the same version even if an alias moves meanwhile). SIGTERM and
SIGINT stop accepting connections, finish requests in flight, then flush the invocation
records and run the model's ``teardown`` (uvicorn's graceful shutdown and the app's lifespan).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False
    graceful_timeout: float = 30.0
    # overrides api.timeout_s (0: no limit); None: as keel.yml says
    timeout_s: float | None = None
    # uvicorn's HTTP protocol, a class or a name (keel serve: keel.server.protocol's, with
    # deadlines for slow clients); None: httptools if installed, else h11
    http: Any = None


#: headers on every answer: a browser never sniffs an answer into a script or page, nor
#: shows one in a frame (the API is JSON; its /docs page is not meant to be embedded)
RESPONSE_HEADERS = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY")]


def resolve_version(ref: str | None, config: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``("iris@3", "iris version 3 (label 1.0.0)")``: the exact version ``ref`` means now.

    Checks keel.yml (its ``api:`` section included) and that the version exists, so a
    mistake is one line before any worker starts.
    """
    from keel.lifecycle.project import Project
    from keel.serving.service import api_spec

    project = Project.open(config)
    api_spec(project.config)
    mv = project.client.get_model_version(project.resolve_ref(ref))
    label = f" (label {mv.label})" if mv.label else ""
    return f"{mv.model}@{mv.version}", f"{mv.model} version {mv.version}{label}"


def serve(
    ref: str,
    config: str | os.PathLike[str] | None,
    options: ServeOptions,
) -> None:
    """Serve ``ref`` (an exact ``name@version``) until SIGTERM/SIGINT."""
    import uvicorn

    if options.workers < 1:
        raise InvalidInput("--workers must be at least 1")
    if config is not None:
        os.environ["KEEL_SERVE_CONFIG"] = str(Path(config).resolve())
    os.environ["KEEL_SERVE_REF"] = ref
    if options.timeout_s is not None:
        os.environ["KEEL_SERVE_TIMEOUT"] = str(options.timeout_s)
    kwargs = {
        "host": options.host,
        "port": options.port,
        "log_level": options.log_level,
        "access_log": options.access_log,
        "http": options.http or _best("httptools", "h11"),
        "headers": RESPONSE_HEADERS,
        "loop": _best("uvloop", "asyncio"),
        "timeout_graceful_shutdown": options.graceful_timeout,
    }
    if options.workers == 1:
        from keel.serving.app import create_app

        uvicorn.run(create_app(), **kwargs)  # type: ignore[arg-type]
        return
    metrics_dir = tempfile.mkdtemp(prefix="keel-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "keel.serving.app:create_app",
            factory=True,
            workers=options.workers,
            **kwargs,  # type: ignore[arg-type]
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _best(preferred: str, fallback: str) -> str:
    import importlib.util

    return preferred if importlib.util.find_spec(preferred) is not None else fallback
