"""metric buckets: per-bucket summaries of long metric histories, for charts

Every point from step 64 on is summarised in its bucket of 64 steps (see
keel.store.buckets); the points already logged are summarised here, read in id order in
chunks so that memory stays flat on a large store (about a second per million points).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keel.store import buckets

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHUNK = 50_000


def upgrade() -> None:
    op.create_table(
        "metric_buckets",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("first_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("min_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("max_timestamp", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_buckets_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", "bucket", name=op.f("pk_metric_buckets")),
    )
    conn = op.get_bind()
    # yield_per for this statement only: set on the connection it would stay for alembic's
    # own statements (a server-side cursor cannot run its UPDATE on PostgreSQL)
    points = conn.execute(
        sa.text(
            'SELECT run_id, "key", "value", is_nan, step, "timestamp" FROM metrics '
            "WHERE step >= :first ORDER BY id"
        ),
        {"first": buckets.BUCKET_STEPS},
        execution_options={"yield_per": CHUNK},
    )
    for chunk in points.partitions():
        buckets.write(conn, buckets.summarise(tuple(row) for row in chunk))


def downgrade() -> None:
    op.drop_table("metric_buckets")
