"""Alembic environment: migrations always run on a connection keel hands over."""

from __future__ import annotations

from alembic import context

from keel.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - keel always passes a connection
    raise RuntimeError("keel migrations run through `keel db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
context.run_migrations()
