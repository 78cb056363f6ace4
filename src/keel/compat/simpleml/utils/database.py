"""``Database(...).initialize(upgrade=)``: SimpleML's database connection, as keel's store.

With no arguments it is keel's store as keel's settings say (``KEEL_STORE``, keel.yml,
else ``./.keel``); ``uri=`` (``sqlite:///…``, ``postgresql://…``, a keel server
``http(s)://…`` or a folder) or SimpleML's separate credentials (``drivername``,
``username``, ``password``, ``host``, ``port``, ``database``) name another store.
``initialize(upgrade=True)`` migrates an older store to keel's schema.
"""

from __future__ import annotations

import logging
from typing import Any

from keel.compat.simpleml.utils.errors import SimpleMLError

log = logging.getLogger("keel.compat.simpleml")


class Database:
    """Where persistables are saved: a keel metadata store (and its artifact store)."""

    def __init__(
        self,
        configuration_section: str | None = None,
        uri: str | None = None,
        database: str | None = None,
        username: str | None = None,
        password: str | None = None,
        drivername: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        query: dict[str, Any] | None = None,
        artifacts: str | None = None,
        project: str | None = None,
        allow_duplication: bool = False,
        **kwargs: Any,
    ) -> None:
        if configuration_section is not None:
            raise SimpleMLError(
                f"Database(configuration_section={configuration_section!r}): keel reads its "
                "store from KEEL_STORE or keel.yml (store:); pass uri= for another one"
            )
        unknown = sorted(k for k in kwargs if k not in ("use_ssh_tunnel", "sshtunnel_params"))
        if unknown or kwargs.get("use_ssh_tunnel"):
            raise SimpleMLError(
                f"Database(): {', '.join(unknown) or 'use_ssh_tunnel'} is not supported on "
                "keel: open the tunnel yourself and pass uri="
            )
        if uri is None and drivername is not None:
            from sqlalchemy.engine import URL

            uri = URL.create(
                drivername=drivername,
                username=username,
                password=password,
                host=host,
                port=int(port) if port is not None else None,
                database=database,
                query=query or {},
            ).render_as_string(hide_password=False)
        self.uri = uri
        self.artifacts = artifacts
        self.project = project
        self.allow_duplication = allow_duplication

    def initialize(self, base_list: Any = None, upgrade: bool = False, **kwargs: Any) -> Database:
        """Connect persistables to this store; ``upgrade=True`` migrates an older schema."""
        from keel.compat.simpleml import records
        from keel.tracking.client import Client

        client = Client(store=self.uri, artifacts=self.artifacts, project=self.project)
        engine = getattr(_raw_store(client), "engine", None) if upgrade else None
        if engine is not None:
            from keel.store.engine import upgrade as migrate

            before, after = migrate(engine)
            if before != after:
                log.info("migrated the store from %s to %s", before, after)
        records.connect(client, self.allow_duplication)
        self.client = client
        return self

    def __repr__(self) -> str:
        from keel.store.engine import mask_url

        return f"Database({mask_url(self.uri) if self.uri else 'keel default store'})"


def _raw_store(client: Any) -> Any:
    """The store object without opening it (opening refuses an out-of-date schema)."""
    from keel.store.registry import open_store

    return open_store(client.settings.store)
