"""ML Launchpad's ``mllaunchpad.wsgi``: the ``application`` object a production server imports.

``application`` is an ASGI app (keel's prediction API, FastAPI), built on first access from
the config named by ``LAUNCHPAD_CFG`` (default ``./LAUNCHPAD_CFG.yml``): the stored version of
the config's ``model.name`` and ``model.version`` label, served as the ``api:`` section
(and its RAML) says. Serve it with an ASGI server::

    export LAUNCHPAD_CFG=addition_cfg.yml
    uvicorn keel.compat.launchpad.wsgi:application --port 5000
    gunicorn -w 4 -k uvicorn.workers.UvicornWorker -b 127.0.0.1:5000 \\
        keel.compat.launchpad.wsgi:application

A plain WSGI server (``gunicorn`` without an ASGI worker, mod_wsgi, waitress) cannot run
it: keel's API is ASGI only. ``keel serve`` does the same with keel's own options.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["application", "create_application"]

application: Any  # built on first access (module __getattr__)

_lock = threading.Lock()


def create_application(conf: Any = None) -> Any:
    """A new ASGI app serving the config ``conf`` (a dict from get_validated_config or a
    file path; default: ``LAUNCHPAD_CFG`` or ``./LAUNCHPAD_CFG.yml``)."""
    from keel.compat.launchpad.config import client_for, get_validated_config, keel_config
    from keel.serving.app import build_app
    from keel.serving.service import open_service

    config = keel_config(conf if conf is not None else get_validated_config())
    return build_app(open_service(None, config, client=client_for(config)))


def __getattr__(name: str) -> Any:
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        app = globals().get("application")
        if app is None:
            app = globals()["application"] = create_application()
    return app
