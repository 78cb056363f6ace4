"""Shared by the monitoring tests: the iris example trained into a fresh store, and invocation
records fed to it as a recording server stores them (records + live window profiles)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import keel
from keel.entities import InvocationRecord
from keel.lifecycle import train
from keel.monitoring.live import LiveProfiler
from keel.monitoring.storage import load_reference

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
HOUR_MS = 3_600_000


def trained_iris(folder: Path) -> tuple[Path, keel.Client, Any]:
    """The iris example copied into ``folder``/iris and trained into its own store there:
    (project folder, client of project ``examples``, the version)."""
    project = folder / "iris"
    shutil.copytree(EXAMPLES / "iris", project, ignore=shutil.ignore_patterns(".keel", "output"))
    client = keel.Client(store=str(project / ".keel"), project="examples")
    result = train(project / "keel.yml", client=client)
    return project, client, result.version


def training_like(project: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows drawn from the training data with a little noise (no drift)."""
    train_rows = pd.read_csv(project / "data/iris_train.csv")
    rng = np.random.default_rng(seed)
    rows = train_rows.sample(n=n, replace=True, random_state=seed)[FEATURES].reset_index(drop=True)
    return (rows + rng.normal(0, 0.02, size=rows.shape)).round(2)


def shifted(rows: pd.DataFrame, by: dict[str, float]) -> pd.DataFrame:
    """``rows`` with the features in ``by`` moved by that much."""
    out = rows.copy()
    for name, delta in by.items():
        out[name] = out[name] + delta
    return out


def feed(
    client: keel.Client,
    version: Any,
    rows: pd.DataFrame,
    at_ms: int,
    *,
    window_s: int = 3600,
    writer: str = "test",
    spacing_ms: int = 1000,
    status: str = "ok",
) -> list[InvocationRecord]:
    """Store one invocation record per row (timestamps ``at_ms``, ``at_ms + spacing_ms``…)
    with the version's own predictions, and fold them into live profiles as a recording
    server does."""
    from keel.lifecycle.loading import load_version

    with load_version(None, client, f"{version.model}@{version.version}") as loaded:
        results = loaded.predict_batch(rows)
    records = [
        InvocationRecord(
            request_id=f"ts-{at_ms + i * spacing_ms}--uuid-{writer}-{i:06d}-{at_ms}",
            model=version.model,
            version=version.version,
            timestamp=at_ms + i * spacing_ms,
            latency_ms=2.0 + (i % 7),
            status=status,
            resource="species",
            input={k: float(v) for k, v in row.items()},
            result=result,
        )
        for i, (row, result) in enumerate(zip(rows.to_dict("records"), results, strict=True))
    ]
    client.log_invocations(version, records)
    try:
        kinds = load_reference(client, version).kinds()
    except keel.errors.NotFound:
        kinds = None
    profiler = LiveProfiler(
        client, version, window_s=window_s, flush_s=0, kinds=kinds, writer=writer
    )
    profiler.add(records)
    profiler.flush(force=True)
    return records


# --- a real `keel serve` of the iris project, fed over HTTP ---------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recording_quickly(project: Path) -> None:
    """keel.yml of ``project`` set to store records and their profiles within a second."""
    import yaml

    config = yaml.safe_load((project / "keel.yml").read_text())
    config["api"]["record_flush_s"] = 0.2
    config["monitoring"] = {**(config.get("monitoring") or {}), "flush_s": 0.5}
    (project / "keel.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def serve_model(project: Path, port: int) -> Any:
    """``keel serve`` of ``project``'s keel.yml on 127.0.0.1:``port``, answering /ping."""
    import subprocess
    import sys
    import time

    import httpx2 as httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "serve", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise AssertionError(f"keel serve exited: {process.stdout.read()}")
    process.kill()
    raise AssertionError("keel serve did not answer /ping within 60 s")


def stop_model(process: Any) -> None:
    """SIGTERM: the server stores what it recorded and its profiles, then exits."""
    import subprocess

    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def send(port: int, rows: pd.DataFrame) -> None:
    """One prediction call per row to the iris example's resource."""
    import httpx2 as httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for row in rows.to_dict("records"):
            answer = http.post("/iris/v1/species", json=row)
            assert answer.status_code == 200, answer.text


def live_records(client: keel.Client, version: Any) -> int:
    from keel.monitoring.storage import load_windows, window_files

    return sum(p.records for _w, p in load_windows(client, window_files(client, version)))


def wait_for_live_records(client: keel.Client, version: Any, n: int) -> None:
    import time

    deadline = time.monotonic() + 30
    while live_records(client, version) < n:
        assert time.monotonic() < deadline, (
            f"live profiles hold {live_records(client, version)} of {n}"
        )
        time.sleep(0.3)


def keel_cli(project: Path, *args: str) -> Any:
    """``keel ARGS`` in a subprocess, in ``project``: the completed process (text)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def frames_of(records: Any) -> tuple[Any, Any]:
    """The input and output frames of the successful records, built with pandas: the
    independent path the live fold (plain column lists) is compared with."""
    from keel.monitoring.records import OK_STATUSES, rows_of

    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for record in records:
        if str(record.status).lower() not in OK_STATUSES:
            continue
        for row_in, row_out in rows_of(record.input, record.result):
            inputs.append(row_in)
            outputs.append(row_out)
    return pd.DataFrame.from_records(inputs), pd.DataFrame.from_records(outputs)
