"""The metadata schema: every table keel keeps, as SQLAlchemy Core tables.

Key/value facts (params, tags) live in narrow tables so that queries can join and index
them; a value is kept as text plus its JSON type and, for numbers, a float copy so that
``params.lr > 0.01`` compares numbers, not strings. Times are integer milliseconds.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

ID = String(32)
NAME = String(256)
KEY = String(250)
# SQLite only autoincrements INTEGER PRIMARY KEY, so the big integer is INTEGER there.
BIGID = BigInteger().with_variant(Integer(), "sqlite")


def _kv_table(name: str, owner_column: str, owner_table: str) -> Table:
    """A (owner, key) → value table: params or tags of one kind of record."""
    return Table(
        name,
        metadata,
        Column(
            owner_column,
            ID,
            ForeignKey(f"{owner_table}.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("key", KEY, primary_key=True),
        Column("value", Text, nullable=False),
        Column("value_type", String(8), nullable=False),
        Column("value_num", Float, nullable=True),
        Index(f"ix_{name}_key_value_num", "key", "value_num"),
    )


projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("lifecycle", String(16), nullable=False, default="active"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)
experiment_tags = _kv_table("experiment_tags", "experiment_id", "experiments")

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False, index=True),
    Column("name", NAME, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_id", ID, ForeignKey("runs.id"), nullable=True, index=True),
    Column("author", NAME, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("failure", Text, nullable=True),
    Column("lifecycle", String(16), nullable=False, default="active"),
    Column("created_at", BigInteger, nullable=False, index=True),
)
run_params = _kv_table("run_params", "run_id", "runs")
run_tags = _kv_table("run_tags", "run_id", "runs")

metrics = Table(
    "metrics",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", KEY, nullable=False),
    # NaN is kept as NULL + is_nan because SQLite turns a NaN REAL into NULL.
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

# Per-bucket summaries of long histories, for charts (see keel.store.buckets).
metric_buckets = Table(
    "metric_buckets",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),
    Column("points", BigInteger, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("first_timestamp", BigInteger, nullable=False),
    # NULL: every point of the bucket is a NaN
    Column("min_value", Float, nullable=True),
    Column("min_step", BigInteger, nullable=True),
    Column("min_timestamp", BigInteger, nullable=True),
    Column("max_value", Float, nullable=True),
    Column("max_step", BigInteger, nullable=True),
    Column("max_timestamp", BigInteger, nullable=True),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Float, nullable=True),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", ID, nullable=False),
    Column("path", String(1024), nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("owner_kind", "owner_id", "path"),
)

version_counters = Table(
    "version_counters",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("owner", String(600), primary_key=True),
    Column("last_version", Integer, nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)
model_tags = _kv_table("model_tags", "model_id", "registered_models")

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("label", String(64), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True, index=True),
    Column("path_in_run", String(1024), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("library_versions", JSON, nullable=False),
    Column("author", NAME, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version"),
    Index("ix_model_versions_model_id_content_hash", "model_id", "content_hash"),
)
model_version_tags = _kv_table("model_version_tags", "model_version_id", "model_versions")

model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id",
        ID,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("author", NAME, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", "version"),
    Index("ix_datasets_project_id_name_content_hash", "project_id", "name", "content_hash"),
)
dataset_tags = _kv_table("dataset_tags", "dataset_id", "datasets")

dataset_usage = Table(
    "dataset_usage",
    metadata,
    Column("dataset_id", ID, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("run_id", ID, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), primary_key=True),
)

invocation_records = Table(
    "invocation_records",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("model_version_id", ID, ForeignKey("model_versions.id"), nullable=False),
    Column("request_id", String(96), nullable=False, unique=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status", String(16), nullable=False),
    # Records are batched into files in the artifact store; the index says where.
    Column("batch_sha256", String(64), nullable=False),
    Column("batch_offset", Integer, nullable=False),
    Index("ix_invocation_records_model_version_id_timestamp", "model_version_id", "timestamp"),
)

# --- accounts of the platform server (users, roles, API tokens) -----------------------------

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    # argon2id, in the PHC string format (algorithm, parameters and salt travel with it)
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # random, replaced on logout, password and role change: a session cookie carries it and
    # counts only while it matches (an empty one matches no cookie)
    Column("session_key", String(64), nullable=False, server_default=""),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    # sha256 of the secret: tokens are 256 random bits, so a fast hash is enough and lets
    # every request be checked with one indexed lookup
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    UniqueConstraint("user_id", "name"),
)

# failed logins per user name and per client address (each as the sha256 of its kind and
# value: names people mistype, passwords among them, are never kept in clear); see
# keel.server.throttle for the policy
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", BigInteger, nullable=False),
    Index("ix_login_failures_last_failure_at", "last_failure_at"),
)
