"""sessions that can be ended, failed logins counted

Each user gets a random session key (a session cookie counts only while it carries the
current one), and failed logins are counted per user name and per client address so that
every replica slows the same guesser.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (with a default, as SQLite needs for NOT NULL), never a batch copy:
    # copying "users" on SQLite drops the old table, and with foreign keys on that deletes
    # every API token through the ON DELETE CASCADE.
    op.add_column(
        "users",
        sa.Column("session_key", sa.String(length=64), nullable=False, server_default=""),
    )
    users = sa.table("users", sa.column("id", sa.String), sa.column("session_key", sa.String))
    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():
        conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(session_key=secrets.token_urlsafe(32))
        )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_last_failure_at", "login_failures", ["last_failure_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_failure_at", table_name="login_failures")
    op.drop_table("login_failures")
    if op.get_bind().dialect.name == "sqlite":  # in place (SQLite >= 3.35), no table copy
        op.execute("ALTER TABLE users DROP COLUMN session_key")
    else:
        op.drop_column("users", "session_key")
