"""The platform server (``keel server``): one store shared by a team.

* :mod:`keel.server.settings`: what the server is started with (store, artifacts, access).
* :mod:`keel.server.auth`: users, roles, API tokens and passwords (argon2id).
* :mod:`keel.server.deps`: who is calling and what they may do, for every route.
* :mod:`keel.server.app`: the ASGI app: ``/api/v1/…``, the web UI at ``/``, ``/docs``.

Everything here is a thin caller of :class:`keel.Client` and the stores below it.
"""
