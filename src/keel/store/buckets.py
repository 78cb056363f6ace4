"""Summaries of long metric histories, kept as points are logged: what a chart of a
million points reads instead of the million points.

A history's points from step ``BUCKET_STEPS`` on are summarised per bucket of
``BUCKET_STEPS`` steps (bucket ``step // BUCKET_STEPS``): how many points it holds, its
first step, and its lowest and highest value with their step and time. A chart draws min and
max per bucket (see :mod:`keel.server.ui.downsample`), so a history of 1,000,000 points
read as ~15,600 bucket rows draws the same extremes as when read whole, in a fiftieth of the
time (SQLite hands a million rows to Python in about 0.8 s).

Points below step ``BUCKET_STEPS`` (a metric logged once at step 0, a run of a few epochs)
are never summarised: most metrics cost nothing more to log, and a chart reads those points
as they are. Logging pays one upsert statement per batch for the buckets it touches, like
the latest-value upsert beside it.

:func:`summarise` builds the rows of one batch of points; :func:`write` upserts them with
:data:`SQLITE_UPSERT` or :data:`PG_UPSERT`, both merging a bucket's rows the way
:func:`summarise` merges points (lower value wins, an equal one at an earlier step).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: steps per bucket; histories spanning over ~32,000 steps fill enough buckets for a chart
BUCKET_STEPS = 64

#: columns of ``metric_buckets`` in the order :func:`summarise` gives them
COLUMNS = (
    "run_id",
    "key",
    "bucket",
    "points",
    "first_step",
    "first_timestamp",
    "min_value",
    "min_step",
    "min_timestamp",
    "max_value",
    "max_step",
    "max_timestamp",
)


def summarise(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Bucket rows (``COLUMNS``) of metric points ``(run_id, key, value, is_nan, step,
    timestamp)`` in the order they were logged; a NaN is a point without a value. Sorted by
    (run, key, bucket): concurrent writers lock buckets in the same order."""
    found: dict[tuple[str, str, int], list[Any]] = {}
    for run_id, key, value, is_nan, step, timestamp in rows:
        if step < BUCKET_STEPS:
            continue
        bucket = step // BUCKET_STEPS
        plain = None if is_nan or value is None else float(value)
        s = found.get((run_id, key, bucket))
        if s is None:
            found[(run_id, key, bucket)] = (
                [1, step, timestamp, None, None, None, None, None, None]
                if plain is None
                else [1, step, timestamp, plain, step, timestamp, plain, step, timestamp]
            )
            continue
        s[0] += 1
        if step < s[1]:
            s[1], s[2] = step, timestamp
        if plain is None:
            continue
        if s[3] is None or plain < s[3] or (plain == s[3] and step < s[4]):
            s[3], s[4], s[5] = plain, step, timestamp
        if s[6] is None or plain > s[6] or (plain == s[6] and step < s[7]):
            s[6], s[7], s[8] = plain, step, timestamp
    return [(*name, *s) for name, s in sorted(found.items())]


def _merged(side: str, better: str) -> str:
    """SET clauses that take the new bucket's lowest (``<``) or highest (``>``) point when it
    beats the stored one; an equal value wins at an earlier step, a NULL (NaN only) never."""
    old, new = f"metric_buckets.{side}_value", f"excluded.{side}_value"
    wins = (
        f"({new} {better} {old} OR ({new} = {old} AND excluded.{side}_step < "
        f"metric_buckets.{side}_step) OR ({old} IS NULL AND {new} IS NOT NULL))"
    )
    return ", ".join(
        f"{side}_{c} = CASE WHEN {wins} THEN excluded.{side}_{c} ELSE metric_buckets.{side}_{c} END"
        for c in ("value", "step", "timestamp")
    )


_ON_CONFLICT = (
    ' ON CONFLICT (run_id, "key", bucket) DO UPDATE SET '
    "points = metric_buckets.points + excluded.points, "
    "first_timestamp = CASE WHEN excluded.first_step < metric_buckets.first_step "
    "THEN excluded.first_timestamp ELSE metric_buckets.first_timestamp END, "
    "first_step = CASE WHEN excluded.first_step < metric_buckets.first_step "
    "THEN excluded.first_step ELSE metric_buckets.first_step END, "
    + _merged("min", "<")
    + ", "
    + _merged("max", ">")
)
_INSERT = 'INSERT INTO metric_buckets (run_id, "key", ' + ", ".join(COLUMNS[2:]) + ") "

#: executemany over :func:`summarise`'s rows (SQLite's ``?`` marks)
SQLITE_UPSERT = _INSERT + "VALUES (" + ", ".join(["?"] * len(COLUMNS)) + ")" + _ON_CONFLICT

#: one statement over twelve arrays, one per column (PostgreSQL: one round trip per batch)
PG_UPSERT = (
    _INSERT + "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[], %s::bigint[], "
    "%s::bigint[], %s::bigint[], %s::float8[], %s::bigint[], %s::bigint[], %s::float8[], "
    "%s::bigint[], %s::bigint[])" + _ON_CONFLICT
)


def write(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Upsert :func:`summarise`'s rows in the transaction of ``conn`` (one statement over
    arrays on PostgreSQL, the driver's executemany on SQLite)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        conn.exec_driver_sql(PG_UPSERT, columns)
    else:
        conn.exec_driver_sql(SQLITE_UPSERT, rows)
