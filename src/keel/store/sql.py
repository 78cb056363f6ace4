"""The SQL metadata store (SQLite or PostgreSQL): every read and write of keel's records.

One write path per kind of fact: params, metrics and tags of a run are all written by
:meth:`SqlStore.log_batch`. Versions of models and datasets are numbered by one counter row
per name, incremented with a single ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` inside
the transaction that inserts the version, so numbers are unique and gapless under
concurrent writers on both backends.

A model version is its run's files under ``path_in_run``; those files never change once a
version claims them (a write that would change them is a :class:`Conflict`), and
:meth:`SqlStore.register_model_version` records them and inserts the version in one
transaction, so a writer killed midway leaves either both or neither.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from itertools import chain
from typing import Any

from sqlalchemy import (
    Connection,
    FromClause,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from keel.entities import (
    ArtifactFile,
    Dataset,
    Experiment,
    InvocationIndex,
    Metric,
    ModelVersion,
    Project,
    RegisteredModel,
    Run,
)
from keel.errors import Conflict, InvalidInput, NotFound
from keel.store import buckets
from keel.store import schema as t
from keel.store.base import MetadataStore, MetricArrays, MetricOverview
from keel.store.engine import get_engine, mask_url, read_connection, write_transaction
from keel.store.query import KeyValue, QueryBuilder, Sort, Target, decode_value, encode_value
from keel.store.validation import (
    check_alias,
    check_artifact_files,
    check_artifact_prefix,
    check_experiment_name,
    check_id,
    check_key,
    check_label,
    check_name,
    check_run_kind,
    check_run_name,
    check_run_status,
    check_value_text,
)

_METRIC_COLUMNS_SQL = (
    'SELECT step, "timestamp", "value" FROM metrics WHERE run_id = ? AND "key" = ? '
    "ORDER BY step, id"
)


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def new_id() -> str:
    """A fresh record id (uuid4, 32 hex characters)."""
    return uuid.uuid4().hex


def _upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    update_columns: Sequence[str] | None = None,
) -> None:
    """INSERT rows; on a key conflict update the given columns (or do nothing)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    if update_columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: stmt.excluded[c] for c in update_columns},
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, rows)


_SQLITE_INDEX_INVOCATIONS = (
    "INSERT INTO invocation_records (model_version_id, request_id, timestamp, latency_ms, "
    "status, batch_sha256, batch_offset) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (request_id) DO NOTHING"
)


class SqlStore(MetadataStore):
    """The metadata store over SQLAlchemy, for SQLite and PostgreSQL URLs.

    Args:
        url: a SQLAlchemy URL, ``postgresql://…`` or a folder path for an embedded store.
        query_timeout_s: stop a read that runs longer (:class:`~keel.errors.QueryTimeout`);
            None: no limit. The server sets it from ``server.query_timeout_s``.
    """

    def __init__(self, url: str, query_timeout_s: float | None = None) -> None:
        self.url = url
        self.query_timeout_s = query_timeout_s
        self._engine = None

    def __repr__(self) -> str:
        return f"SqlStore({mask_url(self.url)!r})"

    @property
    def engine(self) -> Any:
        if self._engine is None:
            self._engine = get_engine(self.url)
        return self._engine

    def _write(self) -> Any:
        return write_transaction(self.engine)

    def _read(self) -> Any:
        return read_connection(self.engine, self.query_timeout_s)

    # --- projects -----------------------------------------------------------------------

    def get_or_create_project(self, name: str) -> Project:
        check_name(name, "project")
        with self._read() as conn:
            row = conn.execute(select(t.projects).where(t.projects.c.name == name)).first()
        if row is None:
            with self._write() as conn:
                _upsert(
                    conn,
                    t.projects,
                    [{"id": new_id(), "name": name, "created_at": now_ms()}],
                    ["name"],
                )
                row = conn.execute(select(t.projects).where(t.projects.c.name == name)).one()
        return Project(row.id, row.name, row.created_at)

    def _project_id(self, conn: Connection, name: str) -> str | None:
        return conn.execute(select(t.projects.c.id).where(t.projects.c.name == name)).scalar()

    def _ensure_project_id(self, conn: Connection, name: str) -> str:
        check_name(name, "project")
        _upsert(
            conn, t.projects, [{"id": new_id(), "name": name, "created_at": now_ms()}], ["name"]
        )
        return conn.execute(select(t.projects.c.id).where(t.projects.c.name == name)).scalar_one()

    # --- key/value facts ----------------------------------------------------------------

    @staticmethod
    def _kv_rows(
        owner_column: str, owner: str, values: Mapping[str, Any], what: str
    ) -> list[dict[str, Any]]:
        rows = []
        for key, value in values.items():
            check_key(key, what)
            text, kind, number = encode_value(value)
            check_value_text(key, text, what)
            rows.append(
                {
                    owner_column: owner,
                    "key": key,
                    "value": text,
                    "value_type": kind,
                    "value_num": number,
                }
            )
        return rows

    @staticmethod
    def _kv_read(
        conn: Connection, table: Table, owner_column: str, owners: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {o: {} for o in owners}
        owner = table.c[owner_column]
        # Plain tuples and only the columns needed: loading the params of 100 runs is
        # thousands of rows, where per-row attribute access costs more than SQLite does.
        stmt = select(owner, table.c.key, table.c.value, table.c.value_type)
        for where in _id_filters(conn, owner, owners):
            for owner_id, key, value, kind in _plain_rows(conn, stmt.where(where)):
                out[owner_id][key] = value if kind == "str" else decode_value(value, kind)
        return out

    def _set_tags(
        self, table: Table, owner_column: str, owner: str, tags: Mapping[str, Any], check: Any
    ) -> None:
        rows = self._kv_rows(owner_column, owner, tags, "tag")
        with self._write() as conn:
            check(conn)
            _upsert(conn, table, rows, [owner_column, "key"], ["value", "value_type", "value_num"])

    def _delete_tags(
        self, table: Table, owner_column: str, owner: str, keys: Iterable[str]
    ) -> None:
        with self._write() as conn:
            conn.execute(
                delete(table).where(table.c[owner_column] == owner, table.c.key.in_(list(keys)))
            )

    # --- experiments --------------------------------------------------------------------

    def create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        check_experiment_name(name)
        exp_id, now = new_id(), now_ms()
        rows = self._kv_rows("experiment_id", exp_id, tags or {}, "tag")
        try:
            with self._write() as conn:
                project_id = self._ensure_project_id(conn, project)
                exists = conn.execute(
                    select(t.experiments.c.id).where(
                        t.experiments.c.project_id == project_id, t.experiments.c.name == name
                    )
                ).first()
                if exists is not None:
                    raise Conflict(
                        f"experiment {name!r} already exists in project {project!r} "
                        f"(id {exists.id}): use get_or_create_exp to reuse it"
                    )
                conn.execute(
                    insert(t.experiments).values(
                        id=exp_id,
                        project_id=project_id,
                        name=name,
                        lifecycle="active",
                        created_at=now,
                        updated_at=now,
                    )
                )
                _upsert(conn, t.experiment_tags, rows, ["experiment_id", "key"])
        except IntegrityError:
            # another writer created it between the check above and the insert (PostgreSQL
            # reads committed rows only): the same answer as when the check sees it
            raise Conflict(
                f"experiment {name!r} already exists in project {project!r}: "
                "use get_or_create_exp to reuse it"
            ) from None
        return self.get_experiment(exp_id)

    def get_or_create_experiment(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        found = self.find_experiments(project, {"name": name}, limit=1)
        if found:
            return found[0]
        try:
            return self.create_experiment(project, name, tags)
        except Conflict:
            return self.find_experiments(project, {"name": name}, limit=1)[0]

    def get_experiment(self, experiment_id: str) -> Experiment:
        check_id(experiment_id, "experiment")
        with self._read() as conn:
            found = self._experiments(conn, [experiment_id])
        if not found:
            raise NotFound(f"no experiment with id {experiment_id!r}")
        return found[0]

    def _experiments(self, conn: Connection, ids: Sequence[str]) -> list[Experiment]:
        e, p = t.experiments, t.projects
        rows = {}
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(e, p.c.name.label("project_name"))
                .join(p, p.c.id == e.c.project_id)
                .where(e.c.id.in_(chunk))
            ):
                rows[row.id] = row
        tags = self._kv_read(conn, t.experiment_tags, "experiment_id", list(rows))
        return [
            Experiment(
                id=r.id,
                project=r.project_name,
                name=r.name,
                tags=tags[r.id],
                created_at=r.created_at,
                updated_at=r.updated_at,
                lifecycle=r.lifecycle,
            )
            for i in ids
            if (r := rows.get(i)) is not None
        ]

    def find_experiments(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Experiment]:
        target = _experiment_target(t.experiments)
        extra = self._project_filter(target.table.c.project_id, project)
        stmt = QueryBuilder(target, t.latest_metrics, self.engine.dialect.name).select(
            target.table.c.id, query, sort or [("created_at", 1)], limit, offset, extra
        )
        with self._read() as conn:
            ids = list(conn.execute(stmt).scalars())
            return self._experiments(conn, ids)

    @staticmethod
    def _project_filter(column: Any, project: str | None) -> Any:
        if project is None:
            return None
        return (
            column == select(t.projects.c.id).where(t.projects.c.name == project).scalar_subquery()
        )

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None:
        self._set_tags(
            t.experiment_tags,
            "experiment_id",
            experiment_id,
            tags,
            lambda conn: self._must_exist(conn, t.experiments, experiment_id, "experiment"),
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag of an experiment (nothing happens if it has no such tag)."""
        with self._read() as conn:
            self._must_exist(conn, t.experiments, experiment_id, "experiment")
        self._delete_tags(t.experiment_tags, "experiment_id", experiment_id, [key])

    def rename_experiment(self, experiment_id: str, name: str) -> Experiment:
        """Give an experiment a new name, unique in its project (Conflict if taken)."""
        check_experiment_name(name)
        e = t.experiments
        with self._write() as conn:
            row = self._must_exist(conn, e, experiment_id, "experiment")
            taken = conn.execute(
                select(e.c.id).where(
                    e.c.project_id == row.project_id, e.c.name == name, e.c.id != experiment_id
                )
            ).first()
            if taken is not None:
                raise Conflict(f"experiment {name!r} already exists (id {taken.id})")
            conn.execute(
                update(e).where(e.c.id == experiment_id).values(name=name, updated_at=now_ms())
            )
        return self.get_experiment(experiment_id)

    def set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> None:
        with self._write() as conn:
            self._must_exist(conn, t.experiments, experiment_id, "experiment")
            conn.execute(
                update(t.experiments)
                .where(t.experiments.c.id == experiment_id)
                .values(lifecycle=lifecycle, updated_at=now_ms())
            )

    @staticmethod
    def _must_exist(conn: Connection, table: Table, record_id: str, what: str) -> Any:
        check_id(record_id, what)
        row = conn.execute(select(table).where(table.c.id == record_id)).first()
        if row is None:
            raise NotFound(f"no {what} with id {record_id!r}")
        return row

    # --- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        kind: str = "tracking",
        status: str = "running",
        parent_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        author: str = "",
        environment: Mapping[str, Any] | None = None,
        start_time: int | None = None,
        run_id: str | None = None,
    ) -> Run:
        check_run_kind(kind)
        check_run_status(status)
        run_id = run_id or new_id()
        check_id(run_id, "run")
        now = now_ms()
        if name is not None:
            check_run_name(name)
        rows = self._kv_rows("run_id", run_id, tags or {}, "tag")
        with self._write() as conn:
            self._must_exist(conn, t.experiments, experiment_id, "experiment")
            if parent_id is not None:
                parent = self._must_exist(conn, t.runs, parent_id, "parent run")
                if parent.experiment_id != experiment_id:
                    raise InvalidInput(f"parent run {parent_id} belongs to another experiment")
            taken = conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first()
            if taken is not None:  # a caller-chosen id (the REST API, MLflow import)
                raise Conflict(f"run {run_id} already exists: leave run_id out to get a new id")
            conn.execute(
                insert(t.runs).values(
                    id=run_id,
                    experiment_id=experiment_id,
                    name=name or f"{kind}-{run_id[:8]}",
                    kind=kind,
                    status=status,
                    start_time=start_time
                    if start_time is not None
                    else (now if status == "running" else None),
                    end_time=None,
                    parent_id=parent_id,
                    author=author,
                    environment=dict(environment or {}),
                    failure=None,
                    lifecycle="active",
                    created_at=now,
                )
            )
            _upsert(conn, t.run_tags, rows, ["run_id", "key"])
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run")
        with self._read() as conn:
            found = self._runs(conn, [run_id])
        if not found:
            raise NotFound(f"no run with id {run_id!r}")
        return found[0]

    def _runs(self, conn: Connection, ids: Sequence[str]) -> list[Run]:
        rows = {}
        for where in _id_filters(conn, t.runs.c.id, ids):
            for row in conn.execute(select(t.runs).where(where)).all():
                rows[row.id] = row
        found = list(rows)
        params = self._kv_read(conn, t.run_params, "run_id", found)
        tags = self._kv_read(conn, t.run_tags, "run_id", found)
        metrics: dict[str, dict[str, float]] = {i: {} for i in found}
        lm = t.latest_metrics
        stmt = select(lm.c.run_id, lm.c.key, lm.c.value, lm.c.is_nan)
        for where in _id_filters(conn, lm.c.run_id, found):
            for run_id, key, value, is_nan in _plain_rows(conn, stmt.where(where)):
                metrics[run_id][key] = math.nan if is_nan else value
        return [
            Run(
                id=r.id,
                experiment_id=r.experiment_id,
                name=r.name,
                kind=r.kind,
                status=r.status,
                start_time=r.start_time,
                end_time=r.end_time,
                parent_id=r.parent_id,
                author=r.author,
                params=params[r.id],
                metrics=metrics[r.id],
                tags=tags[r.id],
                environment=r.environment or {},
                failure=r.failure,
                lifecycle=r.lifecycle,
                created_at=r.created_at,
            )
            for i in ids
            if (r := rows.get(i)) is not None
        ]

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
        failure: str | None = None,
        lifecycle: str | None = None,
    ) -> Run:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = check_run_status(status)
        if end_time is not None:
            values["end_time"] = end_time
        if name is not None:
            values["name"] = check_run_name(name)
        if failure is not None:
            values["failure"] = failure
        if lifecycle is not None:
            values["lifecycle"] = lifecycle
        with self._write() as conn:
            row = self._must_exist(conn, t.runs, run_id, "run")
            if status == "running" and row.start_time is None:
                values["start_time"] = now_ms()
            if values:
                conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(**values))
        return self.get_run(run_id)

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        param_rows = self._kv_rows("run_id", run_id, params or {}, "param")
        tag_rows = self._kv_rows("run_id", run_id, tags or {}, "tag")
        metric_rows = []
        latest: dict[str, Metric] = {}
        for key in {m.key for m in metrics}:
            check_key(key, "metric")
        for m in metrics:
            nan = m.value != m.value
            metric_rows.append((run_id, m.key, None if nan else m.value, nan, m.step, m.timestamp))
            cur = latest.get(m.key)
            if cur is None or (m.step, m.timestamp) >= (cur.step, cur.timestamp):
                latest[m.key] = m
        check_id(run_id, "run")
        with self._write() as conn:
            # only the lifecycle: a whole row would decode the run's environment (every
            # installed package) on each log
            lifecycle = conn.execute(
                select(t.runs.c.lifecycle).where(t.runs.c.id == run_id)
            ).scalar()
            if lifecycle is None:
                raise NotFound(f"no run with id {run_id!r}")
            if lifecycle == "deleted":
                raise Conflict(f"run {run_id} is deleted: restore it before logging to it")
            if param_rows:
                self._write_params(conn, run_id, param_rows)
            if metric_rows:
                _insert_metric_rows(conn, metric_rows)
                self._update_latest(conn, run_id, latest)
                _update_buckets(conn, metric_rows)
            _upsert(
                conn, t.run_tags, tag_rows, ["run_id", "key"], ["value", "value_type", "value_num"]
            )

    def _write_params(self, conn: Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
        p = t.run_params
        existing = {
            r.key: r
            for r in conn.execute(
                select(p).where(p.c.run_id == run_id, p.c.key.in_([r["key"] for r in rows]))
            )
        }
        new = []
        for row in rows:
            old = existing.get(row["key"])
            if old is None:
                new.append(row)
            elif (old.value, old.value_type) != (row["value"], row["value_type"]):
                raise Conflict(
                    f"param {row['key']!r} of run {run_id} is already {old.value!r}, cannot "
                    f"change it to {row['value']!r}: params are write-once (use a tag, or a "
                    "new run)"
                )
        _upsert(conn, p, new, ["run_id", "key"])

    @staticmethod
    def _update_latest(conn: Connection, run_id: str, latest: Mapping[str, Metric]) -> None:
        if conn.dialect.name == "postgresql":
            points = list(latest.values())
            nans = [m.value != m.value for m in points]
            conn.exec_driver_sql(
                _PG_LATEST_UPSERT,
                (
                    [run_id] * len(points),
                    [m.key for m in points],
                    [None if nan else float(m.value) for m, nan in zip(points, nans, strict=True)],
                    nans,
                    [int(m.step) for m in points],
                    [int(m.timestamp) for m in points],
                ),
            )
            return
        rows = [
            {
                "run_id": run_id,
                "key": m.key,
                "value": None if m.value != m.value else m.value,
                "is_nan": m.value != m.value,
                "step": m.step,
                "timestamp": m.timestamp,
            }
            for m in latest.values()
        ]
        conn.execute(_latest_upsert(conn.dialect.name), rows)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        check_key(key, "metric")
        m = t.metrics
        with self._read() as conn:
            self._must_exist(conn, t.runs, run_id, "run")
            rows = conn.execute(
                select(m)
                .where(m.c.run_id == run_id, m.c.key == key)
                .order_by(m.c.step, m.c.timestamp, m.c.id)
            ).all()
        return [Metric(r.key, math.nan if r.is_nan else r.value, r.step, r.timestamp) for r in rows]

    def get_metric_arrays(self, run_id: str, key: str) -> MetricArrays:
        """Like the base method, but the rows go from the driver's cursor straight into numpy:
        building a Row (or a Metric) per point costs ~1 s per 100,000 points, this ~0.1 s.
        """
        import numpy as np

        check_key(key, "metric")
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        with self._read() as conn:
            self._must_exist(conn, t.runs, run_id, "run")
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                # constant text, values bound by the driver; ORDER BY step, id follows the
                # (run_id, key, step) index (the rowid is its last key), so no sort runs in
                # the database, and the stable sort below puts ties of step in time order.
                cursor.execute(_METRIC_COLUMNS_SQL.replace("?", mark), (run_id, key))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        # one flat float64 array holds steps and ms timestamps exactly (below 2**53) and
        # makes the NULL kept for a logged NaN a NaN
        flat = np.fromiter(chain.from_iterable(rows), dtype=float, count=3 * len(rows))
        table = flat.reshape(len(rows), 3)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        return MetricArrays(
            table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2].copy()
        )

    def metric_signature(self, run_id: str, key: str) -> tuple[int, int] | None:
        """Read from the (run_id, key, step) index alone (the row id is its last column):
        about 0.1 s per million points, against 0.8 s to read the points."""
        check_key(key, "metric")
        m = t.metrics
        with self._read() as conn:
            count, top = conn.execute(
                select(func.count(), func.max(m.c.id)).where(m.c.run_id == run_id, m.c.key == key)
            ).one()
        return int(count), int(top or 0)

    def metric_overview(self, run_id: str, key: str, min_buckets: int) -> MetricOverview | None:
        """Bucket rows, the points below the first bucket and the first and last point: for
        a million points logged at steps 0..999,999, ~15,600 rows read by primary key and
        index ranges instead of a million."""
        import numpy as np

        check_key(key, "metric")
        m, b = t.metrics, t.metric_buckets
        mine = (m.c.run_id == run_id, m.c.key == key)
        point = (m.c.step, m.c.timestamp, m.c.value)
        order = (m.c.step, m.c.timestamp, m.c.id)  # history order
        with self._read() as conn:
            rows = _plain_rows(
                conn,
                select(
                    b.c.points,
                    b.c.first_step,
                    b.c.first_timestamp,
                    b.c.min_value,
                    b.c.min_step,
                    b.c.min_timestamp,
                    b.c.max_value,
                    b.c.max_step,
                    b.c.max_timestamp,
                )
                .where(b.c.run_id == run_id, b.c.key == key)
                .order_by(b.c.bucket),
            )
            if len(rows) < min_buckets:
                return None
            head = _plain_rows(
                conn,
                select(*point).where(*mine, m.c.step < buckets.BUCKET_STEPS).order_by(*order),
            )
            ends = [
                *_plain_rows(conn, select(*point).where(*mine).order_by(*order).limit(1)),
                *_plain_rows(
                    conn,
                    select(*point).where(*mine).order_by(*(c.desc() for c in order)).limit(1),
                ),
            ]
        picked: list[tuple[Any, ...]] = [*head, *ends]
        for _n, step, stamp, low, low_step, low_stamp, high, high_step, high_stamp in rows:
            if low is None:  # only NaNs: a gap
                picked.append((step, stamp, None))
            else:
                picked.append((low_step, low_stamp, low))
                picked.append((high_step, high_stamp, high))
        table = np.array(picked, dtype=float).reshape(len(picked), 3)  # None: NaN
        table = table[np.lexsort((table[:, 1], table[:, 0]))]
        same = np.all((table[1:] == table[:-1]) | np.isnan(table[1:]) & np.isnan(table[:-1]), 1)
        table = table[np.concatenate([[True], ~same])]
        arrays = MetricArrays(
            table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2].copy()
        )
        return MetricOverview(arrays, len(head) + sum(int(r[0]) for r in rows))

    def run_keys(self, experiment_id: str, sample: int = 200) -> tuple[list[str], list[str]]:
        """One DISTINCT per table over the newest runs' primary keys (covering indexes):
        ~0.1 s for 200 runs of 1,500 metrics each, where loading those runs takes seconds."""
        r = t.runs
        newest = (
            select(r.c.id)
            .where(r.c.experiment_id == experiment_id, r.c.lifecycle == "active")
            .order_by(r.c.created_at.desc())
            .limit(sample)
            .scalar_subquery()
        )
        found = []
        with self._read() as conn:
            for table in (t.run_params, t.latest_metrics):
                stmt = select(table.c.key).where(table.c.run_id.in_(newest)).distinct()
                found.append(sorted(conn.execute(stmt).scalars()))
        return found[0], found[1]

    def find_runs(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[Run]:
        target = _run_target(t.runs)
        conditions = []
        if project is not None:
            conditions.append(
                t.runs.c.experiment_id.in_(
                    select(t.experiments.c.id)
                    .join(t.projects, t.projects.c.id == t.experiments.c.project_id)
                    .where(t.projects.c.name == project)
                )
            )
        if not include_deleted:
            conditions.append(t.runs.c.lifecycle == "active")
        stmt = QueryBuilder(target, t.latest_metrics, self.engine.dialect.name).select(
            t.runs.c.id,
            query,
            sort or [("created_at", -1)],
            limit,
            offset,
            and_(*conditions) if conditions else None,
        )
        with self._read() as conn:
            ids = list(conn.execute(stmt).scalars())
            return self._runs(conn, ids)

    def set_run_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def delete_run_tag(self, run_id: str, key: str) -> None:
        self._delete_tags(t.run_tags, "run_id", run_id, [key])

    def children(self, run_id: str) -> list[Run]:
        with self._read() as conn:
            ids = list(
                conn.execute(
                    select(t.runs.c.id)
                    .where(t.runs.c.parent_id == run_id)
                    .order_by(t.runs.c.created_at, t.runs.c.id)
                ).scalars()
            )
            return self._runs(conn, ids)

    # --- artifacts ----------------------------------------------------------------------

    def record_artifacts(
        self, owner_kind: str, owner_id: str, files: Sequence[ArtifactFile]
    ) -> None:
        check_artifact_files(files)
        now = now_ms()
        rows = [
            {
                "owner_kind": owner_kind,
                "owner_id": owner_id,
                "path": f.path,
                "sha256": f.sha256,
                "size": f.size,
                "created_at": now,
            }
            for f in files
        ]
        with self._write() as conn:
            if owner_kind == "run":
                self._keep_version_files(conn, owner_id, files)
            _upsert(
                conn,
                t.artifacts,
                rows,
                ["owner_kind", "owner_id", "path"],
                ["sha256", "size", "created_at"],
            )

    def replace_artifacts(self, run_id: str, path: str, files: Sequence[ArtifactFile]) -> None:
        path = check_artifact_prefix(path)
        if not path or any(not _under(f.path, path) for f in files):
            raise InvalidInput(f"replace_artifacts: every file must be at or under {path!r}")
        with self._write() as conn:
            self._record_version_files(conn, run_id, path, files, now_ms())

    @staticmethod
    def _keep_version_files(
        conn: Connection, run_id: str, files: Sequence[ArtifactFile], replacing: str = ""
    ) -> list[str]:
        """Refuse a write of a run's files that would change a registered version's files.

        ``files`` are written over the run's; with ``replacing``, the run's other files under
        that path are dropped too. Returns those dropped paths. The run's row is locked first
        (PostgreSQL; SQLite's write transaction holds the whole database), so a concurrent
        registration cannot slip in between this check and the write.
        """
        a, mv, m = t.artifacts, t.model_versions, t.registered_models
        conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id).with_for_update())
        claims = conn.execute(
            select(mv.c.path_in_run, mv.c.version, m.c.name)
            .join(m, m.c.id == mv.c.model_id)
            .where(mv.c.run_id == run_id)
        ).all()
        if not claims and not replacing:
            return []  # the common case (a run without versions): no rows to read
        stmt = select(a.c.path, a.c.sha256).where(a.c.owner_kind == "run", a.c.owner_id == run_id)
        if not claims:  # only the files to replace matter
            escaped = replacing.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where((a.c.path == replacing) | a.c.path.like(f"{escaped}/%", escape="\\"))
        current = dict(conn.execute(stmt).all())
        written = {f.path: f.sha256 for f in files}
        dropped = [p for p in current if replacing and _under(p, replacing) and p not in written]
        after = {p: sha for p, sha in current.items() if p not in dropped} | written
        for path, version, model in claims:
            if {p: s for p, s in current.items() if _under(p, path)} != {
                p: s for p, s in after.items() if _under(p, path)
            }:
                raise Conflict(
                    f"{path!r} in run {run_id} holds model {model!r} version {version}, whose "
                    "files never change: store this at another path_in_run"
                )
        return dropped

    def list_artifacts(
        self, owner_kind: str, owner_id: str, prefix: str = ""
    ) -> list[ArtifactFile]:
        a = t.artifacts
        stmt = select(a.c.path, a.c.sha256, a.c.size).where(
            a.c.owner_kind == owner_kind, a.c.owner_id == owner_id
        )
        prefix = check_artifact_prefix(prefix)
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where((a.c.path == prefix) | a.c.path.like(f"{escaped}/%", escape="\\"))
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(a.c.path)).all()
        return [ArtifactFile(r.path, r.sha256, r.size) for r in rows]

    # --- invocation records -------------------------------------------------------------

    def record_invocations(
        self, version_id: str, batch: ArtifactFile, rows: Sequence[InvocationIndex]
    ) -> None:
        check_artifact_files([batch])
        now = now_ms()
        artifact = {
            "owner_kind": "model_version",
            "owner_id": version_id,
            "path": batch.path,
            "sha256": batch.sha256,
            "size": batch.size,
            "created_at": now,
        }
        with self._write() as conn:
            if (
                conn.execute(
                    select(t.model_versions.c.id).where(t.model_versions.c.id == version_id)
                ).first()
                is None
            ):
                raise NotFound(f"model version {version_id} not found")
            _upsert(conn, t.artifacts, [artifact], ["owner_kind", "owner_id", "path"])
            # A retried batch (written, then the commit's answer lost) is indexed once.
            if conn.dialect.name == "sqlite":
                # The driver's executemany over tuples: SQLAlchemy's per-row parameter
                # building was a third of a recording server's writer thread.
                conn.exec_driver_sql(
                    _SQLITE_INDEX_INVOCATIONS,
                    [
                        (
                            version_id,
                            r.request_id,
                            r.timestamp,
                            r.latency_ms,
                            r.status,
                            batch.sha256,
                            r.batch_offset,
                        )
                        for r in rows
                    ],
                )
            else:
                index_rows = [
                    {
                        "model_version_id": version_id,
                        "request_id": r.request_id,
                        "timestamp": r.timestamp,
                        "latency_ms": r.latency_ms,
                        "status": r.status,
                        "batch_sha256": batch.sha256,
                        "batch_offset": r.batch_offset,
                    }
                    for r in rows
                ]
                _upsert(conn, t.invocation_records, index_rows, ["request_id"])

    def find_invocations(
        self,
        version_id: str,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> list[InvocationIndex]:
        ir = t.invocation_records
        stmt = select(
            ir.c.request_id,
            ir.c.timestamp,
            ir.c.latency_ms,
            ir.c.status,
            ir.c.batch_sha256,
            ir.c.batch_offset,
        ).where(ir.c.model_version_id == version_id)
        if since is not None:
            stmt = stmt.where(ir.c.timestamp >= since)
        if until is not None:
            stmt = stmt.where(ir.c.timestamp <= until)
        stmt = stmt.order_by(ir.c.timestamp.desc(), ir.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [InvocationIndex(*row) for row in conn.execute(stmt)]

    def referenced_blobs(self) -> set[str]:
        with self._read() as conn:
            shas = set(conn.execute(select(t.artifacts.c.sha256).distinct()).scalars())
            shas |= set(
                conn.execute(select(t.invocation_records.c.batch_sha256).distinct()).scalars()
            )
        return shas

    # --- registered models and versions -------------------------------------------------

    def create_model(
        self, project: str, name: str, tags: Mapping[str, Any] | None = None, description: str = ""
    ) -> RegisteredModel:
        check_name(name, "model")
        model_id, now = new_id(), now_ms()
        rows = self._kv_rows("model_id", model_id, tags or {}, "tag")
        with self._write() as conn:
            project_id = self._ensure_project_id(conn, project)
            if self._model_row(conn, project_id, name) is not None:
                raise Conflict(
                    f"model {name!r} already exists in project {project!r}: "
                    "use get_or_create_model to reuse it"
                )
            conn.execute(
                insert(t.registered_models).values(
                    id=model_id,
                    project_id=project_id,
                    name=name,
                    description=description,
                    created_at=now,
                    updated_at=now,
                )
            )
            _upsert(conn, t.model_tags, rows, ["model_id", "key"])
        return self.get_model(project, name)

    def get_or_create_model(self, project: str, name: str) -> RegisteredModel:
        try:
            return self.get_model(project, name)
        except NotFound:
            try:
                return self.create_model(project, name)
            except Conflict:
                return self.get_model(project, name)

    @staticmethod
    def _model_row(conn: Connection, project_id: str | None, name: str) -> Any:
        m = t.registered_models
        return conn.execute(select(m).where(m.c.project_id == project_id, m.c.name == name)).first()

    def get_model(self, project: str, name: str) -> RegisteredModel:
        check_name(name, "model")
        with self._read() as conn:
            row = self._model_row(conn, self._project_id(conn, project), name)
            if row is None:
                raise NotFound(f"no model named {name!r} in project {project!r}")
            return self._models(conn, [row.id])[0]

    def _models(self, conn: Connection, ids: Sequence[str]) -> list[RegisteredModel]:
        m, p, mv, al = t.registered_models, t.projects, t.model_versions, t.model_aliases
        rows = {}
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(m, p.c.name.label("project_name"))
                .join(p, p.c.id == m.c.project_id)
                .where(m.c.id.in_(chunk))
            ):
                rows[row.id] = row
        found = list(rows)
        tags = self._kv_read(conn, t.model_tags, "model_id", found)
        aliases: dict[str, dict[str, int]] = {i: {} for i in found}
        latest: dict[str, int] = {}
        for chunk in _chunks(found):
            for row in conn.execute(select(al).where(al.c.model_id.in_(chunk))):
                aliases[row.model_id][row.alias] = row.version
            for row in conn.execute(
                select(mv.c.model_id, func.max(mv.c.version))
                .where(mv.c.model_id.in_(chunk))
                .group_by(mv.c.model_id)
            ):
                latest[row[0]] = row[1]
        return [
            RegisteredModel(
                id=r.id,
                project=r.project_name,
                name=r.name,
                description=r.description,
                tags=tags[r.id],
                aliases=aliases[r.id],
                latest_version=latest.get(r.id),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for i in ids
            if (r := rows.get(i)) is not None
        ]

    def find_models(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RegisteredModel]:
        target = _model_target(t.registered_models)
        stmt = QueryBuilder(target, t.latest_metrics, self.engine.dialect.name).select(
            target.table.c.id,
            query,
            sort or [("name", 1)],
            limit,
            offset,
            self._project_filter(target.table.c.project_id, project),
        )
        with self._read() as conn:
            return self._models(conn, list(conn.execute(stmt).scalars()))

    def set_model_tags(self, project: str, name: str, tags: Mapping[str, Any]) -> None:
        model = self.get_model(project, name)
        self._set_tags(t.model_tags, "model_id", model.id, tags, lambda conn: None)

    def delete_model_tag(self, project: str, name: str, key: str) -> None:
        """Remove a tag of a registered model (nothing happens if it has no such tag)."""
        model = self.get_model(project, name)
        self._delete_tags(t.model_tags, "model_id", model.id, [key])

    def set_model_description(self, project: str, name: str, description: str) -> RegisteredModel:
        """Replace a registered model's description."""
        model = self.get_model(project, name)
        m = t.registered_models
        with self._write() as conn:
            conn.execute(
                update(m)
                .where(m.c.id == model.id)
                .values(description=description, updated_at=now_ms())
            )
        return self.get_model(project, name)

    def create_model_version(
        self,
        project: str,
        model: str,
        *,
        run_id: str | None,
        path_in_run: str,
        content_hash: str,
        label: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        library_versions: Mapping[str, str] | None = None,
        author: str = "",
        allow_duplication: bool = False,
    ) -> tuple[ModelVersion, bool]:
        """Register a version of files already recorded on the run; returns (version,
        created). Identical content returns the existing version unless
        ``allow_duplication``."""
        return self.register_model_version(
            project,
            model,
            files=(),
            run_id=run_id,
            path_in_run=path_in_run,
            content_hash=content_hash,
            label=label,
            description=description,
            tags=tags,
            library_versions=library_versions,
            author=author,
            allow_duplication=allow_duplication,
        )

    def register_model_version(
        self,
        project: str,
        model: str,
        *,
        files: Sequence[ArtifactFile],
        run_id: str | None,
        path_in_run: str,
        content_hash: str,
        label: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        library_versions: Mapping[str, str] | None = None,
        author: str = "",
        allow_duplication: bool = False,
    ) -> tuple[ModelVersion, bool]:
        """Record ``files`` as the run's files at ``path_in_run`` (replacing any others left
        there) and register the version, in one transaction: a writer killed before the
        commit leaves no row at all, only blobs that ``keel gc`` removes."""
        check_name(model, "model")
        if label is not None:
            check_label(label)
        if files and run_id is None:
            raise InvalidInput("a model version's files belong to a run: give run_id")
        outside = [f.path for f in files if not _under(f.path, path_in_run)]
        if outside:
            raise InvalidInput(f"file {outside[0]!r} is not under path_in_run {path_in_run!r}")
        version_id, now = new_id(), now_ms()
        tag_rows = self._kv_rows("model_version_id", version_id, tags or {}, "tag")
        mv = t.model_versions
        with self._write() as conn:
            if files and run_id is not None:
                self._record_version_files(conn, run_id, path_in_run, files, now)
            project_id = self._ensure_project_id(conn, project)
            row = self._model_row(conn, project_id, model)
            if row is None:
                # Concurrent first registrations of a name: one insert wins, all reuse it.
                _upsert(
                    conn,
                    t.registered_models,
                    [
                        {
                            "id": new_id(),
                            "project_id": project_id,
                            "name": model,
                            "description": "",
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                    ["project_id", "name"],
                )
                row = self._model_row(conn, project_id, model)
            model_id = row.id
            if not allow_duplication:
                same = conn.execute(
                    select(mv.c.id)
                    .where(mv.c.model_id == model_id, mv.c.content_hash == content_hash)
                    .order_by(mv.c.version)
                    .limit(1)
                ).scalar()
                if same is not None:
                    return self._versions(conn, [same])[0], False
            metrics: dict[str, float | None] = {}
            if run_id is not None:
                self._must_exist(conn, t.runs, run_id, "run")
                lm = t.latest_metrics
                for r in conn.execute(select(lm).where(lm.c.run_id == run_id)):
                    metrics[r.key] = None if r.is_nan else r.value
            version = self._next_version(conn, "model", model_id)
            conn.execute(
                insert(mv).values(
                    id=version_id,
                    model_id=model_id,
                    version=version,
                    label=label,
                    description=description,
                    run_id=run_id,
                    path_in_run=path_in_run,
                    content_hash=content_hash,
                    metrics=metrics,
                    library_versions=dict(library_versions or {}),
                    author=author,
                    created_at=now,
                )
            )
            _upsert(conn, t.model_version_tags, tag_rows, ["model_version_id", "key"])
            conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.id == model_id)
                .values(updated_at=now)
            )
            return self._versions(conn, [version_id])[0], True

    def _record_version_files(
        self,
        conn: Connection,
        run_id: str,
        path_in_run: str,
        files: Sequence[ArtifactFile],
        now: int,
    ) -> None:
        """Make the run's files under ``path_in_run`` exactly ``files``."""
        check_artifact_files(files)
        a = t.artifacts
        self._must_exist(conn, t.runs, run_id, "run")
        dropped = self._keep_version_files(conn, run_id, files, replacing=path_in_run)
        for chunk in _chunks(dropped):
            conn.execute(
                delete(a).where(
                    a.c.owner_kind == "run", a.c.owner_id == run_id, a.c.path.in_(chunk)
                )
            )
        rows = [
            {
                "owner_kind": "run",
                "owner_id": run_id,
                "path": f.path,
                "sha256": f.sha256,
                "size": f.size,
                "created_at": now,
            }
            for f in files
        ]
        _upsert(conn, a, rows, ["owner_kind", "owner_id", "path"], ["sha256", "size", "created_at"])

    @staticmethod
    def _next_version(conn: Connection, scope: str, owner: str) -> int:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        vc = t.version_counters
        stmt = dialect_insert(vc).values(scope=scope, owner=owner, last_version=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["scope", "owner"], set_={"last_version": vc.c.last_version + 1}
        ).returning(vc.c.last_version)
        return int(conn.execute(stmt).scalar_one())

    def _versions(self, conn: Connection, ids: Sequence[str]) -> list[ModelVersion]:
        mv, m, al = t.model_versions, t.registered_models, t.model_aliases
        rows = {}
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(mv, m.c.name.label("model_name"))
                .join(m, m.c.id == mv.c.model_id)
                .where(mv.c.id.in_(chunk))
            ):
                rows[row.id] = row
        found = list(rows)
        tags = self._kv_read(conn, t.model_version_tags, "model_version_id", found)
        aliases: dict[tuple[str, int], list[str]] = {}
        model_ids = list({r.model_id for r in rows.values()})
        for chunk in _chunks(model_ids):
            for row in conn.execute(
                select(al).where(al.c.model_id.in_(chunk)).order_by(al.c.alias)
            ):
                aliases.setdefault((row.model_id, row.version), []).append(row.alias)
        return [
            ModelVersion(
                id=r.id,
                model=r.model_name,
                version=r.version,
                label=r.label,
                description=r.description,
                run_id=r.run_id,
                path_in_run=r.path_in_run,
                content_hash=r.content_hash,
                aliases=tuple(aliases.get((r.model_id, r.version), ())),
                tags=tags[r.id],
                metrics={k: (math.nan if v is None else v) for k, v in (r.metrics or {}).items()},
                library_versions=r.library_versions or {},
                author=r.author,
                created_at=r.created_at,
            )
            for i in ids
            if (r := rows.get(i)) is not None
        ]

    def get_model_version(
        self, project: str, model: str, ref: int | str = "latest"
    ) -> ModelVersion:
        """A version by number, ``latest``, alias or label (newest with that label)."""
        check_name(model, "model")
        mv, al = t.model_versions, t.model_aliases
        with self._read() as conn:
            row = self._model_row(conn, self._project_id(conn, project), model)
            if row is None:
                raise NotFound(f"no model named {model!r} in project {project!r}")
            base = select(mv.c.id).where(mv.c.model_id == row.id)
            ref_text = str(ref).lstrip("@")
            if isinstance(ref, int) or ref_text.isdigit():
                stmt = base.where(mv.c.version == int(ref_text))
            elif ref_text == "latest":
                stmt = base.order_by(mv.c.version.desc()).limit(1)
            else:
                version = conn.execute(
                    select(al.c.version).where(al.c.model_id == row.id, al.c.alias == ref_text)
                ).scalar()
                if version is not None:
                    stmt = base.where(mv.c.version == version)
                else:
                    stmt = base.where(mv.c.label == ref_text).order_by(mv.c.version.desc()).limit(1)
            found = conn.execute(stmt).scalar()
            if found is None:
                raise NotFound(f"model {model!r} has no version, alias or label {ref_text!r}")
            return self._versions(conn, [found])[0]

    def find_model_versions(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelVersion]:
        target = _version_target(t.model_versions)
        extra = None
        if project is not None:
            m = t.registered_models
            extra = t.model_versions.c.model_id.in_(
                select(m.c.id).where(self._project_filter(m.c.project_id, project))
            )
        stmt = QueryBuilder(target, t.latest_metrics, self.engine.dialect.name).select(
            t.model_versions.c.id, query, sort or [("created_at", 1)], limit, offset, extra
        )
        with self._read() as conn:
            return self._versions(conn, list(conn.execute(stmt).scalars()))

    def set_model_version_tags(self, version_id: str, tags: Mapping[str, Any]) -> None:
        self._set_tags(
            t.model_version_tags,
            "model_version_id",
            version_id,
            tags,
            lambda conn: self._must_exist(conn, t.model_versions, version_id, "model version"),
        )

    def delete_model_version_tag(self, version_id: str, key: str) -> None:
        """Remove a tag of a model version (nothing happens if it has no such tag)."""
        with self._read() as conn:
            self._must_exist(conn, t.model_versions, version_id, "model version")
        self._delete_tags(t.model_version_tags, "model_version_id", version_id, [key])

    def set_model_version_description(self, version_id: str, description: str) -> ModelVersion:
        """Replace a model version's description."""
        mv = t.model_versions
        with self._write() as conn:
            self._must_exist(conn, mv, version_id, "model version")
            conn.execute(update(mv).where(mv.c.id == version_id).values(description=description))
            return self._versions(conn, [version_id])[0]

    def update_model_version_metrics(
        self, version_id: str, metrics: Mapping[str, float]
    ) -> ModelVersion:
        mv = t.model_versions
        with self._write() as conn:
            current = conn.execute(select(mv.c.metrics).where(mv.c.id == version_id)).first()
            if current is None:
                raise NotFound(f"model version {version_id} not found")
            merged = dict(current.metrics or {})
            for key, value in metrics.items():
                number = float(value)
                merged[key] = number if math.isfinite(number) else None
            conn.execute(update(mv).where(mv.c.id == version_id).values(metrics=merged))
            return self._versions(conn, [version_id])[0]

    def set_alias(self, project: str, model: str, alias: str, version: int) -> None:
        check_alias(alias)
        target = self.get_model_version(project, model, int(version))
        with self._write() as conn:
            model_id = conn.execute(
                select(t.model_versions.c.model_id).where(t.model_versions.c.id == target.id)
            ).scalar_one()
            _upsert(
                conn,
                t.model_aliases,
                [{"model_id": model_id, "alias": alias, "version": target.version}],
                ["model_id", "alias"],
                ["version"],
            )

    def delete_alias(self, project: str, model: str, alias: str) -> None:
        registered = self.get_model(project, model)
        if alias not in registered.aliases:
            raise NotFound(f"model {model!r} has no alias {alias!r}")
        with self._write() as conn:
            conn.execute(
                delete(t.model_aliases).where(
                    t.model_aliases.c.model_id == registered.id, t.model_aliases.c.alias == alias
                )
            )

    def rename_model(self, project: str, name: str, new_name: str) -> RegisteredModel:
        """Give a registered model a new name; its versions, tags and aliases go with it."""
        check_name(new_name, "model")
        model = self.get_model(project, name)
        m = t.registered_models
        with self._write() as conn:
            project_id = self._project_id(conn, project)
            if new_name != name and self._model_row(conn, project_id, new_name) is not None:
                raise Conflict(f"model {new_name!r} already exists in project {project!r}")
            conn.execute(
                update(m).where(m.c.id == model.id).values(name=new_name, updated_at=now_ms())
            )
        return self.get_model(project, new_name)

    def touch_model(self, project: str, name: str) -> None:
        """Mark a registered model as changed now (a version's stage moved: MLflow shows it
        in the model's ``last_updated_timestamp``)."""
        model = self.get_model(project, name)
        m = t.registered_models
        with self._write() as conn:
            conn.execute(update(m).where(m.c.id == model.id).values(updated_at=now_ms()))

    def delete_model_version(self, project: str, model: str, version: int) -> None:
        """Delete a version, its tags and the aliases pointing at it; its number is never
        given again. Its files stay its run's. A version that served invocations (whose
        records keel keeps) cannot be deleted (:class:`~keel.errors.Conflict`)."""
        found = self.get_model_version(project, model, int(version))
        mv = t.model_versions
        with self._write() as conn:
            model_id = conn.execute(select(mv.c.model_id).where(mv.c.id == found.id)).scalar()
            if model_id is None:
                raise NotFound(f"model {model!r} has no version {version}")
            self._refuse_served(conn, [found.id], f"model {model!r} version {found.version}")
            al = t.model_aliases
            conn.execute(delete(al).where(al.c.model_id == model_id, al.c.version == found.version))
            conn.execute(
                delete(t.model_version_tags).where(
                    t.model_version_tags.c.model_version_id == found.id
                )
            )
            conn.execute(delete(mv).where(mv.c.id == found.id))
            conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.id == model_id)
                .values(updated_at=now_ms())
            )

    def delete_model(self, project: str, name: str) -> None:
        """Delete a registered model with its versions, tags and aliases (the files stay their
        runs'). A model with a version that served invocations cannot be deleted
        (:class:`~keel.errors.Conflict`)."""
        model = self.get_model(project, name)
        mv, vt = t.model_versions, t.model_version_tags
        with self._write() as conn:
            ids = list(conn.execute(select(mv.c.id).where(mv.c.model_id == model.id)).scalars())
            self._refuse_served(conn, ids, f"model {name!r}")
            for chunk in _chunks(ids):
                conn.execute(delete(vt).where(vt.c.model_version_id.in_(chunk)))
            conn.execute(delete(mv).where(mv.c.model_id == model.id))
            conn.execute(delete(t.model_aliases).where(t.model_aliases.c.model_id == model.id))
            conn.execute(delete(t.model_tags).where(t.model_tags.c.model_id == model.id))
            vc = t.version_counters
            conn.execute(delete(vc).where(vc.c.scope == "model", vc.c.owner == model.id))
            conn.execute(delete(t.registered_models).where(t.registered_models.c.id == model.id))

    @staticmethod
    def _refuse_served(conn: Connection, version_ids: Sequence[str], what: str) -> None:
        ir = t.invocation_records
        for chunk in _chunks(version_ids):
            if conn.execute(
                select(ir.c.id).where(ir.c.model_version_id.in_(chunk)).limit(1)
            ).first():
                raise Conflict(
                    f"{what} served invocations, whose records keel keeps: it cannot be deleted"
                )

    # --- datasets -----------------------------------------------------------------------

    def create_dataset(
        self,
        project: str,
        name: str,
        *,
        content_hash: str,
        files: Sequence[ArtifactFile],
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        author: str = "",
        allow_duplication: bool = False,
    ) -> tuple[Dataset, bool]:
        """Register a dataset version with its files; identical content returns the existing
        version unless ``allow_duplication``."""
        check_name(name, "dataset")
        check_artifact_files(files)
        dataset_id, now = new_id(), now_ms()
        tag_rows = self._kv_rows("dataset_id", dataset_id, tags or {}, "tag")
        d = t.datasets
        with self._write() as conn:
            project_id = self._ensure_project_id(conn, project)
            if not allow_duplication:
                same = conn.execute(
                    select(d.c.id)
                    .where(
                        d.c.project_id == project_id,
                        d.c.name == name,
                        d.c.content_hash == content_hash,
                    )
                    .order_by(d.c.version)
                    .limit(1)
                ).scalar()
                if same is not None:
                    if run_id is not None:
                        _upsert(
                            conn,
                            t.dataset_usage,
                            [{"dataset_id": same, "run_id": run_id, "role": "output"}],
                            ["dataset_id", "run_id", "role"],
                        )
                    return self._datasets(conn, [same])[0], False
            if run_id is not None:
                self._must_exist(conn, t.runs, run_id, "run")
            version = self._next_version(conn, "dataset", f"{project_id}/{name}")
            conn.execute(
                insert(d).values(
                    id=dataset_id,
                    project_id=project_id,
                    name=name,
                    version=version,
                    content_hash=content_hash,
                    description=description,
                    run_id=run_id,
                    author=author,
                    created_at=now,
                )
            )
            _upsert(conn, t.dataset_tags, tag_rows, ["dataset_id", "key"])
            _upsert(
                conn,
                t.artifacts,
                [
                    {
                        "owner_kind": "dataset",
                        "owner_id": dataset_id,
                        "path": f.path,
                        "sha256": f.sha256,
                        "size": f.size,
                        "created_at": now,
                    }
                    for f in files
                ],
                ["owner_kind", "owner_id", "path"],
            )
            if run_id is not None:
                _upsert(
                    conn,
                    t.dataset_usage,
                    [{"dataset_id": dataset_id, "run_id": run_id, "role": "output"}],
                    ["dataset_id", "run_id", "role"],
                )
            return self._datasets(conn, [dataset_id])[0], True

    def _datasets(self, conn: Connection, ids: Sequence[str]) -> list[Dataset]:
        d, p = t.datasets, t.projects
        rows = {}
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(d, p.c.name.label("project_name"))
                .join(p, p.c.id == d.c.project_id)
                .where(d.c.id.in_(chunk))
            ):
                rows[row.id] = row
        tags = self._kv_read(conn, t.dataset_tags, "dataset_id", list(rows))
        return [
            Dataset(
                id=r.id,
                project=r.project_name,
                name=r.name,
                version=r.version,
                content_hash=r.content_hash,
                description=r.description,
                run_id=r.run_id,
                tags=tags[r.id],
                author=r.author,
                created_at=r.created_at,
            )
            for i in ids
            if (r := rows.get(i)) is not None
        ]

    def get_dataset(self, project: str, name: str, version: int | str = "latest") -> Dataset:
        check_name(name, "dataset")
        d = t.datasets
        with self._read() as conn:
            stmt = select(d.c.id).where(
                d.c.project_id == self._project_id(conn, project), d.c.name == name
            )
            text = str(version)
            if text == "latest":
                stmt = stmt.order_by(d.c.version.desc()).limit(1)
            elif text.isdigit():
                stmt = stmt.where(d.c.version == int(text))
            else:
                raise InvalidInput(f"dataset version must be a number or 'latest', got {text!r}")
            found = conn.execute(stmt).scalar()
            if found is None:
                raise NotFound(f"no dataset {name!r} version {text} in project {project!r}")
            return self._datasets(conn, [found])[0]

    def find_datasets(
        self,
        project: str | None,
        query: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Dataset]:
        target = _dataset_target(t.datasets)
        stmt = QueryBuilder(target, t.latest_metrics, self.engine.dialect.name).select(
            t.datasets.c.id,
            query,
            sort or [("name", 1), ("version", 1)],
            limit,
            offset,
            self._project_filter(t.datasets.c.project_id, project),
        )
        with self._read() as conn:
            return self._datasets(conn, list(conn.execute(stmt).scalars()))

    def link_dataset(self, dataset_id: str, run_id: str, role: str = "input") -> None:
        if role not in ("input", "output"):
            raise InvalidInput(f"dataset role must be 'input' or 'output', got {role!r}")
        with self._write() as conn:
            self._must_exist(conn, t.datasets, dataset_id, "dataset")
            self._must_exist(conn, t.runs, run_id, "run")
            _upsert(
                conn,
                t.dataset_usage,
                [{"dataset_id": dataset_id, "run_id": run_id, "role": role}],
                ["dataset_id", "run_id", "role"],
            )

    def dataset_runs(self, dataset_id: str) -> list[tuple[str, str]]:
        u = t.dataset_usage
        with self._read() as conn:
            return [
                (r.run_id, r.role)
                for r in conn.execute(
                    select(u).where(u.c.dataset_id == dataset_id).order_by(u.c.role, u.c.run_id)
                )
            ]

    # --- counts -------------------------------------------------------------------------

    def count_by_project(self, kind: str) -> dict[str, int]:
        """Counted in the database (one grouped query), not by reading the records."""
        p = t.projects
        if kind == "runs":
            stmt = (
                select(p.c.name, func.count())
                .select_from(t.runs)
                .join(t.experiments, t.experiments.c.id == t.runs.c.experiment_id)
                .join(p, p.c.id == t.experiments.c.project_id)
                .where(t.runs.c.lifecycle == "active")
                .group_by(p.c.name)
            )
        else:
            tables = {
                "experiments": t.experiments,
                "models": t.registered_models,
                "datasets": t.datasets,
            }
            if kind not in tables:
                raise ValueError(f"count_by_project: unknown kind {kind!r}")
            table = tables[kind]
            stmt = (
                select(p.c.name, func.count())
                .select_from(table)
                .join(p, p.c.id == table.c.project_id)
                .group_by(p.c.name)
            )
        with self._read() as conn:
            return {name: count for name, count in conn.execute(stmt)}

    # --- housekeeping -------------------------------------------------------------------

    def purge_deleted_runs(self) -> tuple[list[str], list[str]]:
        """Delete runs marked deleted; returns (purged ids, kept ids still referenced)."""
        r, mv, d = t.runs, t.model_versions, t.datasets
        with self._write() as conn:
            deleted = list(conn.execute(select(r.c.id).where(r.c.lifecycle == "deleted")).scalars())
            referenced = set(
                conn.execute(select(mv.c.run_id).where(mv.c.run_id.in_(deleted))).scalars()
            )
            referenced |= set(
                conn.execute(select(d.c.run_id).where(d.c.run_id.in_(deleted))).scalars()
            )
            referenced |= set(
                conn.execute(
                    select(r.c.parent_id).where(
                        r.c.parent_id.in_(deleted), r.c.lifecycle == "active"
                    )
                ).scalars()
            )
            purge = [i for i in deleted if i not in referenced]
            for chunk in _chunks(purge):
                for table in (
                    t.metrics,
                    t.latest_metrics,
                    t.metric_buckets,
                    t.run_params,
                    t.run_tags,
                    t.dataset_usage,
                ):
                    conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
                conn.execute(
                    delete(t.artifacts).where(
                        t.artifacts.c.owner_kind == "run", t.artifacts.c.owner_id.in_(chunk)
                    )
                )
                conn.execute(update(r).where(r.c.parent_id.in_(chunk)).values(parent_id=None))
                conn.execute(delete(r).where(r.c.id.in_(chunk)))
        return purge, sorted(referenced)

    def schema_revision(self) -> str | None:
        from keel.store.engine import current_revision

        with self._read() as conn:
            return current_revision(conn)


# --- query targets ----------------------------------------------------------------------


def _columns(table: FromClause, *names: str) -> dict[str, Any]:
    return {name: table.c[name] for name in names}


def _related(make: Any, base: Table, column: Any) -> Any:
    """A relation factory: the related record's target, joined on ``id == column``."""

    def relation() -> tuple[Target, Any]:
        return make(base.alias()), lambda related: related.table.c.id == column

    return relation


def _experiment_target(table: FromClause) -> Target:
    return Target(
        table,
        _columns(table, "id", "name", "lifecycle", "created_at", "updated_at"),
        {"tags": KeyValue(t.experiment_tags, "experiment_id")},
        self_names=("exp",),
    )


def _run_target(table: FromClause) -> Target:
    return Target(
        table,
        _columns(
            table,
            "id",
            "name",
            "kind",
            "status",
            "start_time",
            "end_time",
            "parent_id",
            "author",
            "experiment_id",
            "lifecycle",
            "created_at",
        ),
        {"params": KeyValue(t.run_params, "run_id"), "tags": KeyValue(t.run_tags, "run_id")},
        metrics_owner=table.c.id,
        relations={"exp": _related(_experiment_target, t.experiments, table.c.experiment_id)},
        self_names=("run",),
    )


def _model_target(table: FromClause) -> Target:
    return Target(
        table,
        _columns(table, "id", "name", "description", "created_at", "updated_at"),
        {"tags": KeyValue(t.model_tags, "model_id")},
        self_names=("model",),
    )


def _version_target(table: FromClause) -> Target:
    return Target(
        table,
        _columns(
            table,
            "id",
            "version",
            "label",
            "description",
            "run_id",
            "path_in_run",
            "content_hash",
            "author",
            "created_at",
        ),
        {"tags": KeyValue(t.model_version_tags, "model_version_id")},
        metrics_owner=table.c.run_id,
        relations={
            "model": _related(_model_target, t.registered_models, table.c.model_id),
            "run": _related(_run_target, t.runs, table.c.run_id),
        },
        self_names=("version",),
    )


def _dataset_target(table: FromClause) -> Target:
    return Target(
        table,
        _columns(
            table,
            "id",
            "name",
            "version",
            "content_hash",
            "description",
            "run_id",
            "author",
            "created_at",
        ),
        {"tags": KeyValue(t.dataset_tags, "dataset_id")},
        relations={"run": _related(_run_target, t.runs, table.c.run_id)},
        self_names=("dataset",),
    )


@cache
def _latest_upsert(dialect: str) -> Any:
    """The upsert of latest-metric rows that keeps the newer point (built once per dialect:
    building ``excluded`` and its column proxies cost more than the write on every log)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    lm = t.latest_metrics
    stmt = dialect_insert(lm)
    newer = (stmt.excluded.step > lm.c.step) | (
        (stmt.excluded.step == lm.c.step) & (stmt.excluded.timestamp >= lm.c.timestamp)
    )
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={c: stmt.excluded[c] for c in ("value", "is_nan", "step", "timestamp")},
        where=newer,
    )


# PostgreSQL: a batch of points as one statement over arrays (one round trip, one parsed
# statement whatever the batch size). psycopg's executemany sends one INSERT per row through
# its pipeline: for a log_batch of 10 metrics that was a quarter of the server's time.
_PG_UNNEST = (
    "SELECT r, k, v, n, s, t FROM unnest(%s::varchar[], %s::varchar[], %s::float8[], "
    "%s::boolean[], %s::bigint[], %s::bigint[]) WITH ORDINALITY AS u(r, k, v, n, s, t, o) "
    "ORDER BY o"  # ids follow the order of the batch: the tiebreak of equal step and time
)
_PG_INSERT_METRICS = (
    'INSERT INTO metrics (run_id, "key", "value", is_nan, step, "timestamp") ' + _PG_UNNEST
)
#: keeps the newer point of each key, as _latest_upsert does (keys must be unique per call)
_PG_LATEST_UPSERT = (
    'INSERT INTO latest_metrics AS lm (run_id, "key", "value", is_nan, step, "timestamp") '
    + _PG_UNNEST
    + ' ON CONFLICT (run_id, "key") DO UPDATE SET "value" = excluded."value", '
    'is_nan = excluded.is_nan, step = excluded.step, "timestamp" = excluded."timestamp" '
    'WHERE excluded.step > lm.step OR (excluded.step = lm.step AND excluded."timestamp" >= '
    'lm."timestamp")'
)


def _insert_metric_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert metric points ``(run_id, key, value, is_nan, step, timestamp)``: on PostgreSQL
    as one statement over arrays, on SQLite through the driver's executemany (for large
    batches SQLAlchemy's per-row parameter processing costs several times the database's
    own work)."""
    if conn.dialect.name == "postgresql":
        run_ids, keys, values, nans, steps, stamps = zip(*rows, strict=True)
        conn.exec_driver_sql(
            _PG_INSERT_METRICS,
            (
                list(run_ids),
                list(keys),
                [None if v is None else float(v) for v in values],
                [bool(n) for n in nans],
                [int(x) for x in steps],
                [int(x) for x in stamps],
            ),
        )
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        'INSERT INTO metrics (run_id, "key", "value", is_nan, step, "timestamp") '
        f"VALUES ({', '.join([mark] * 6)})",
        rows,
    )


def _update_buckets(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Fold metric points ``(run_id, key, value, is_nan, step, timestamp)`` into their
    buckets (:mod:`keel.store.buckets`); points below the first bucket cost nothing."""
    buckets.write(conn, buckets.summarise(rows))


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or inside it (every path is inside ``""``)."""
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _plain_rows(conn: Connection, stmt: Any) -> list[tuple[Any, ...]]:
    """The rows of a select of plain columns (text, numbers, booleans) as the driver's
    tuples: SQLAlchemy's Row objects cost about as much again as the fetch itself, which
    for the 30,000 params and metrics of a 1,000-run page was a quarter of the search.
    (A boolean is 0/1 on SQLite: callers only test its truth.)"""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()  # type: ignore[attr-defined,no-any-return]
    finally:
        result.close()


def _id_filters(conn: Connection, column: Any, ids: Sequence[str]) -> Iterable[Any]:
    """Conditions ``column`` is one of ``ids``, together covering all of them.

    PostgreSQL: one ``column = ANY(array)`` with the ids as one parameter, whatever their
    number. ``IN`` renders a placeholder per id on each call: for the 1,000 runs of a search
    page, compiling and converting those placeholders (three queries: runs, params, metrics)
    took a quarter of the search's time. SQLite: ``IN`` over chunks of 500 ids.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        if ids:
            yield column == any_(bindparam("ids", list(ids), type_=ARRAY(column.type)))
        return
    for chunk in _chunks(ids):
        yield column.in_(chunk)


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]
