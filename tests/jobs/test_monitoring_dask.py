"""Monitoring at scale on a real Dask cluster (a ``LocalCluster`` on 127.0.0.1, two worker
processes): ``keel monitor update`` profiles each window of stored records on a worker and
stores what the in-process update stores (through the Python API and the CLI); the profiles
of a replica set's writers merge into the profile of all their rows; a large CSV source's
reference profile made partition by partition on the workers equals the in-process one. No
mocks: the iris example is trained into a real store."""

from __future__ import annotations

import json
import math
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import keel
from jobs.test_dask import cluster  # noqa: F401  (the module's LocalCluster fixture)
from keel.config import load_config
from keel.entities import InvocationRecord
from keel.errors import ConfigError, ExecutorUnavailable
from keel.jobs.monitoring import dask_window_mapper, profile_source_on_dask
from keel.lifecycle.monitoring import profile_version, update
from keel.monitoring.check import check_drift
from keel.monitoring.profiles import ColumnProfile, Profile, profile_frame
from keel.monitoring.storage import load_reference, load_windows, window_files
from monitoring.helpers import FEATURES, HOUR_MS, feed, frames_of, trained_iris, training_like
from test_cli import keel as keel_cli

pytestmark = pytest.mark.slow

REL = 1e-9
#: the KLL sketch's normalised rank error at k=200 (99% confidence), doubled: the test must
#: not fail on an unlucky compaction, and a wrong merge is far off
RANK_ERROR = 2 * 0.0133


def _with_jobs(project: Path, scheduler: str, **extra: Any) -> Path:
    """keel.yml of ``project`` with ``jobs:`` on the cluster (and ``extra`` top-level keys
    merged into their sections)."""
    path = project / "keel.yml"
    config = yaml.safe_load(path.read_text())
    config["jobs"] = {"executor": "dask", "scheduler": scheduler, "timeout_s": 600}
    for key, value in extra.items():
        config[key] = {**(config.get(key) or {}), **value}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _records(
    client: keel.Client, version: Any, rows: pd.DataFrame, stamps: list[int], tag: str
) -> list[InvocationRecord]:
    """One record per row with the version's own predictions; every 17th call failed (no
    result), as a recording server stores them. No live profile is made."""
    from keel.lifecycle.loading import load_version

    with load_version(None, client, f"{version.model}@{version.version}") as loaded:
        results = loaded.predict_batch(rows)
    out = []
    for i, (row, result, at) in enumerate(
        zip(rows.to_dict("records"), results, stamps, strict=True)
    ):
        failed = i % 17 == 0
        out.append(
            InvocationRecord(
                request_id=f"ts-{at}--uuid-{tag}-{i:06d}",
                model=version.model,
                version=version.version,
                timestamp=at,
                latency_ms=1.5 + (i % 11),
                status="error" if failed else "ok",
                resource="species",
                input={k: float(v) for k, v in row.items()},
                result=None if failed else result,
            )
        )
    return out


def _log(client: keel.Client, version: Any, records: list[InvocationRecord]) -> None:
    for start in range(0, len(records), 50):  # in batches, as a server's writer stores them
        client.log_invocations(version, records[start : start + 50])


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def assert_same_column(a: ColumnProfile, b: ColumnProfile, what: str) -> None:
    assert (a.kind, a.count, a.missing) == (b.kind, b.count, b.missing), what
    if a.kind == "number":
        assert _close(a.mean, b.mean) and _close(a.std, b.std), (what, a.mean, b.mean)
        if a.count:
            assert a.kll.get_min_value() == b.kll.get_min_value(), what
            assert a.kll.get_max_value() == b.kll.get_max_value(), what
        assert a.few == b.few, what
        if a.exact is not None and b.exact is not None:  # small: the values themselves
            assert sorted(a.exact) == sorted(b.exact), what
        else:
            ranks = [0.1, 0.25, 0.5, 0.75, 0.9]
            for p, q in zip(a.quantiles(ranks), b.quantiles(ranks), strict=True):
                assert abs(b.cdf([p])[0] - a.cdf([p])[0]) <= RANK_ERROR, (what, p, q)
    else:
        assert a.frequencies() == b.frequencies(), what
        assert a.n_distinct() == b.n_distinct(), what


def assert_same_profile(a: Profile, b: Profile) -> None:
    assert (a.rows, a.records, a.errors) == (b.rows, b.records, b.errors)
    assert a.kinds() == b.kinds()
    for role in ("input", "output"):
        for name, column in a.columns(role).items():
            assert_same_column(column, b.columns(role)[name], f"{role} {name}")
    assert (a.latency is None) == (b.latency is None)
    if a.latency is not None and b.latency is not None:
        assert_same_column(a.latency, b.latency, "latency")
    for key in ("first_ts", "last_ts", "window_start", "window_s"):
        assert a.meta.get(key) == b.meta.get(key), key


def _on_workers(scheduler: str, call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What ``call`` returns, and the names of the tasks the workers ran meanwhile."""
    from distributed import Client as DaskClient
    from distributed import get_task_stream
    from distributed.utils import key_split

    with (
        DaskClient(scheduler, set_as_default=False) as watcher,
        get_task_stream(client=watcher) as stream,
    ):
        result = call()
    return result, sorted(key_split(t["key"]) for t in stream.data)


def _stored(client: keel.Client, version: Any) -> dict[int, Profile]:
    """The stored window profiles of ``update``, by window start."""
    files = [w for w in window_files(client, version) if w.writer == "update"]
    return {w.start_ms: p for w, p in load_windows(client, files)}


# --------------------------------------------------------------------------- update on Dask


def test_update_profiles_windows_on_the_cluster_as_in_process(
    tmp_path: Path,
    cluster: Any,  # noqa: F811
) -> None:
    project, client, version = trained_iris(tmp_path)
    config_path = _with_jobs(project, cluster.scheduler_address)
    base = (int(time.time() * 1000) // HOUR_MS - 12) * HOUR_MS
    rows = training_like(project, 240, seed=1)
    stamps = [base + 1234 + i * (4 * HOUR_MS // 240) for i in range(240)]  # over 4 hours
    first_records = _records(client, version, rows, stamps, "first")
    more_rows = training_like(project, 90, seed=2)
    # newer than every record the first pass saw: across the end of the 4th hour
    more_stamps = [base + 4 * HOUR_MS - 45_000 + i * 1000 for i in range(90)]
    more = _records(client, version, more_rows, more_stamps, "second")
    _log(client, version, first_records)
    client.close()
    in_process = tmp_path / "copy"
    shutil.copytree(project / ".keel", in_process / ".keel")

    dask_client = keel.Client(store=str(project / ".keel"), project="examples")
    local_client = keel.Client(store=str(in_process / ".keel"), project="examples")
    try:
        config = load_config(config_path)
        mapper = dask_window_mapper(config, dask_client, "iris@1")
        on_dask, tasks = _on_workers(
            cluster.scheduler_address,
            lambda: update("iris@1", config=config, client=dask_client, map_windows=mapper),
        )
        assert tasks == ["profile_window"] * 4  # one task per window, on the workers
        here = update("iris@1", config=config, client=local_client)
        assert on_dask.records == here.records == 240
        assert sorted(on_dask.windows) == sorted(here.windows)
        assert len(on_dask.windows) == 4
        stored, expected = _stored(dask_client, version), _stored(local_client, version)
        assert sorted(stored) == sorted(expected) == sorted(on_dask.windows)
        for start, profile in stored.items():
            assert_same_profile(profile, expected[start])
            assert profile.errors > 0 and profile.rows == profile.records - profile.errors
        # and each equals the profile of its own rows, made in one frame
        first = stored[base]
        records = [r for r in first_records if r.timestamp < base + HOUR_MS]
        inputs, outputs = frames_of(records)
        direct = profile_frame(inputs, outputs, kinds=load_reference(dask_client, version).kinds())
        assert first.rows == direct.rows == len(inputs)
        for role in ("input", "output"):
            for name, column in direct.columns(role).items():
                assert_same_column(column, first.columns(role)[name], f"{role} {name}")

        # nothing new: the cluster is not even asked
        assert update("iris@1", config=config, client=dask_client, map_windows=mapper).records == 0
    finally:
        dask_client.close()
        local_client.close()

    # more records, in the last window and a new one, stored in both stores; the CLI on the
    # cluster extends its windows exactly as the in-process update extends the copy's
    for store in (project / ".keel", in_process / ".keel"):
        writer = keel.Client(store=str(store), project="examples")
        try:
            _log(writer, version, more)
        finally:
            writer.close()
    ran = keel_cli("monitor", "update", "iris@1", "--executor", "dask", cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert "profiled 90 records into 2 window(s)" in ran.stdout, ran.stdout
    dask_client = keel.Client(store=str(project / ".keel"), project="examples")
    local_client = keel.Client(store=str(in_process / ".keel"), project="examples")
    try:
        assert update("iris@1", config=config_path, client=local_client).records == 90
        stored, expected = _stored(dask_client, version), _stored(local_client, version)
        assert sorted(stored) == sorted(expected)
        for start, profile in stored.items():
            assert_same_profile(profile, expected[start])
        assert sum(p.records for p in stored.values()) == 330
    finally:
        dask_client.close()
        local_client.close()


def test_no_scheduler_or_an_unreachable_one_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "keel.yml").write_text("project: examples\njobs: {executor: dask}\n")
    client = keel.Client(store=str(tmp_path / ".keel"), project="examples")
    try:
        with pytest.raises(ConfigError, match="needs a scheduler") as caught:
            dask_window_mapper(load_config(tmp_path / "keel.yml"), client, "iris@1")
        assert "\n" not in str(caught.value)
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        (tmp_path / "keel.yml").write_text(
            f"project: examples\njobs: {{executor: dask, scheduler: 'tcp://127.0.0.1:{port}', "
            "connect_timeout_s: 2}\n"
        )
        config = load_config(tmp_path / "keel.yml")
        for call in (
            lambda: dask_window_mapper(config, client, "iris@1"),
            lambda: profile_source_on_dask(config, client, "iris@1", "anything"),
        ):
            with pytest.raises(ExecutorUnavailable) as unreachable:
                call()
            message = str(unreachable.value)
            assert f"tcp://127.0.0.1:{port}" in message and "\n" not in message
    finally:
        client.close()


# --------------------------------------------------------------------------- replica sets


def test_a_replica_sets_window_profiles_merge_into_the_profile_of_all_rows(
    tmp_path: Path,
) -> None:
    project, client, version = trained_iris(tmp_path)
    try:
        start = (int(time.time() * 1000) // HOUR_MS - 5) * HOUR_MS
        rows = training_like(project, 400, seed=3)
        halves = rows.iloc[:250].reset_index(drop=True), rows.iloc[250:].reset_index(drop=True)
        records = feed(client, version, halves[0], start + 1000, writer="replica-a")
        records += feed(client, version, halves[1], start + 500, writer="replica-b")
        writers = {w.writer for w in window_files(client, version) if w.start_ms == start}
        assert writers == {"replica-a", "replica-b"}

        check = check_drift(client, version, since="1h", window="1h", until_ms=start + HOUR_MS)
        current = check.current
        assert current.rows == current.records == 400
        assert [(w.start_ms, w.rows) for w in check.windows] == [(start, 400)]
        for name in FEATURES:
            column = current.inputs[name]
            values = rows[name].to_numpy(dtype=float)
            assert column.count == 400 and column.missing == 0
            assert _close(column.mean, float(values.mean()))
            assert _close(column.std, float(values.std()))  # population std, as the profile's
        # and every sketch as in one profile of all the rows (inputs and the outputs)
        inputs, outputs = frames_of(records)
        whole = profile_frame(inputs, outputs, kinds=load_reference(client, version).kinds())
        for role in ("input", "output"):
            assert set(current.columns(role)) == set(whole.columns(role))
            for name, column in whole.columns(role).items():
                assert_same_column(column, current.columns(role)[name], f"{role} {name}")
        assert current.latency is not None and current.latency.count == 400
    finally:
        client.close()


# --------------------------------------------------------------------------- reference


def _big_source(project: Path, n: int) -> pd.DataFrame:
    """A CSV of ``n`` rows beside the iris data: the features, a label, a category with
    missing values, a number with missing values and an id the monitoring leaves out."""
    rng = np.random.default_rng(7)
    frame = training_like(project, n, seed=4)
    frame["species"] = rng.choice(["setosa", "versicolor", "virginica"], size=n)
    channel = rng.choice(["web", "app", "batch", "partner"], size=n, p=[0.5, 0.3, 0.15, 0.05])
    frame["channel"] = pd.Series(channel, dtype=object).where(rng.random(n) > 0.05)
    frame["score"] = pd.Series(rng.normal(50, 10, size=n)).where(rng.random(n) > 0.1)
    frame["row_id"] = np.arange(n)
    frame.to_csv(project / "data/big.csv", index=False)
    return frame


def test_a_large_sources_reference_profile_made_on_the_cluster_equals_in_process(
    tmp_path: Path,
    cluster: Any,  # noqa: F811
) -> None:
    from keel.jobs.batch import _dask_partitions
    from keel.lifecycle.project import Project

    project, client, version = trained_iris(tmp_path)
    frame = _big_source(project, 3000)
    config_path = _with_jobs(
        project,
        cluster.scheduler_address,
        datasources={"big": {"type": "csv", "path": "data/big.csv"}},
        monitoring={"features": ["*"], "exclude": ["row_id"]},
    )
    config = yaml.safe_load(config_path.read_text())
    config["jobs"]["partition_mb"] = 0.03  # ~30 kB pieces: several partitions
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        opened = Project.open(config_path, client)
        try:
            parts, _how = _dask_partitions(opened.catalog.source("big"), 0.03)
            assert len(parts) >= 3
        finally:
            opened.close()

        here = profile_version("iris@1", source="big", config=config_path, client=client)
        on_dask, tasks = _on_workers(
            cluster.scheduler_address,
            lambda: profile_source_on_dask(load_config(config_path), client, "iris@1", "big"),
        )
        # each partition read and profiled on a worker
        assert tasks.count("profile_partition") == len(parts), tasks
        assert load_reference(client, version).to_dict() == on_dask.to_dict()  # stored

        assert on_dask.rows == here.rows == 3000
        assert on_dask.meta == here.meta
        assert on_dask.meta["source"] == "big" and on_dask.meta["output_rows"] == 3000
        assert on_dask.meta["monitoring"]["features"] == ["*"]
        assert set(on_dask.inputs) == {*FEATURES, "species", "channel", "score"}
        assert on_dask.inputs["channel"].missing == int(frame["channel"].isna().sum()) > 0
        assert on_dask.inputs["score"].missing == int(frame["score"].isna().sum()) > 0
        assert on_dask.inputs["channel"].frequencies() == {
            k: float(v) for k, v in frame["channel"].value_counts().items()
        }
        assert_same_profile(on_dask, here)  # every input and output column
        for name in (*FEATURES, "score"):  # quantiles within the sketch's error of the data
            values = np.sort(frame[name].dropna().to_numpy(dtype=float))
            column = on_dask.inputs[name]
            assert column.exact is None  # 3,000 values: the KLL sketches merged
            for rank, value in zip(
                [0.05, 0.25, 0.5, 0.75, 0.95],
                column.quantiles([0.05, 0.25, 0.5, 0.75, 0.95]),
                strict=True,
            ):
                true_rank = np.searchsorted(values, value, side="right") / len(values)
                below = np.searchsorted(values, value, side="left") / len(values)
                assert below - RANK_ERROR <= rank <= true_rank + RANK_ERROR, (name, rank)

        # a sample of the rows predicted: a uniform one of output_sample_rows
        config = yaml.safe_load(config_path.read_text())
        # (and no source named: monitoring.reference, as `keel monitor profile` chooses it)
        config["monitoring"].update(output_sample_rows=1000, reference="big")
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        sampled = profile_source_on_dask(load_config(config_path), client, "iris@1")
        assert sampled.meta["output_rows"] == 1000 and sampled.rows == 3000
        assert sampled.meta["source"] == "big"
        shares = sampled.outputs["species"].frequencies() or {}
        full = here.outputs["species"].frequencies() or {}
        assert sum(shares.values()) == 1000
        for label, count in full.items():
            assert abs(shares.get(label, 0) / 1000 - count / 3000) < 0.06, label
        again = profile_source_on_dask(load_config(config_path), client, "iris@1", "big")
        assert again.outputs["species"].frequencies() == shares  # the same rows each time
        # the CLI: keel.yml's jobs.executor sends `keel monitor profile` to the cluster
        ran = keel_cli("monitor", "profile", "iris@1", "--source", "big", "--json", cwd=project)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["rows"] == 3000
        refused = keel_cli(
            "monitor", "profile", "iris@1", "--dataset", "x", "--executor", "dask", cwd=project
        )
        assert refused.returncode == 2 and "not a dataset" in refused.stderr
    finally:
        client.close()
