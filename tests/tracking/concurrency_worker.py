"""One writer of ``test_concurrency_8.py``: runs, metrics, params, tags, artifacts, model
versions, labels and aliases, started behind a file barrier so that all writers overlap.

Usage: ``python concurrency_worker.py STORE ARTIFACTS CACHE WORKER BARRIER RUNS STEPS BATCHED
SINGLES SHARED``: per run, STEPS points of two keys by buffered ``log_metrics``, BATCHED
points in one ``log_batch`` call, SINGLES points by one-by-one ``log_metric`` calls, SHARED
versions of the model ``shared`` (from the same run: the second must not disturb the first
one's files) and one of the model ``other``.
It writes ``BARRIER/ready-WORKER`` once its client is connected, waits for ``BARRIER/go``,
then prints one JSON object: everything it wrote, for the test to find again in the store.
Not collected by pytest (no ``test_`` prefix); run as a script by the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from keel import Client
from keel.entities import Metric

BARRIER_TIMEOUT_S = 120.0


def wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"barrier {path} never opened")
        time.sleep(0.005)


def main(argv: list[str]) -> None:
    store, artifacts, cache, worker_text, barrier_text, *numbers = argv
    worker, runs, steps, batched, singles, shared = (int(n) for n in [worker_text, *numbers])
    barrier = Path(barrier_text)
    # A short flush interval: the background thread writes batches while the main thread
    # registers versions, so each process has two writers of its own.
    client = Client(
        store=store, artifacts=artifacts, cache_dir=cache, project="test", flush_interval=0.05
    )
    exp = client.get_or_create_exp("load")  # connected and schema checked before the start
    (barrier / f"ready-{worker}").touch()
    wait_for(barrier / "go", BARRIER_TIMEOUT_S)
    started = time.time()

    work = Path(cache) / f"work-{worker}"  # the cache itself is shared by all writers
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"worker": worker, "runs": [], "versions": []}
    for r in range(runs):
        with client.start_run(exp, name=f"w{worker}-r{r}", tags={"worker": worker}) as run:
            run.log_params({"worker": worker, "run": r, "lr": 0.01 * (r + 1)})
            for step in range(steps):  # buffered, flushed by the background thread
                run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / steps}, step=step)
            client.log_batch(
                run,
                metrics=[Metric("batched", float(i), i, 0) for i in range(batched)],
                tags={"batch": "done"},
            )
            for i in range(singles):
                run.log_metric("single", float(i), step=i)
            run.set_tags({"phase": "train", f"round{r}": r})
            data = work / "data.bin"
            data.write_bytes(os.urandom(64 * 1024))
            run.log_artifact(data, "data/data.bin")
            artifact_sha = hashlib.sha256(data.read_bytes()).hexdigest()
            for v in range(shared):
                model = work / "shared.bin"
                model.write_bytes(f"{worker}-{r}-{v}".encode() + os.urandom(16 * 1024))
                mv = client.log_model_version("shared", run, model, label=f"{worker}.{r}.{v}")
                mv.set_alias(f"w{worker}")  # only this worker moves it: ends on its last
                mv.set_alias("champion")  # every worker moves it: ends on one of theirs
                report["versions"].append(["shared", mv.version, mv.content_hash, mv.label])
            loaded = client.get_model_artifact(("shared", mv.version))  # verifies its hash
            if loaded.read_bytes() != model.read_bytes():
                raise SystemExit(f"shared@{mv.version} loaded other bytes than were stored")
            other = work / "other.bin"
            other.write_bytes(f"other-{worker}-{r}".encode() + os.urandom(1024))
            mv = client.log_model_version("other", run, other, path_in_run="other")
            report["versions"].append(["other", mv.version, mv.content_hash, mv.label])
            client.set_tags_on_model("shared", {f"w{worker}": r})
            report["runs"].append({"id": run.id, "r": r, "artifact_sha": artifact_sha})
    client.close()
    report["started"], report["ended"] = started, time.time()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
