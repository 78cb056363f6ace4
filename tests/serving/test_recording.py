"""Invocation records: ids, what is stored, never dropped, read back by API and CLI."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from tests.serving.conftest import _client
from tests.serving.test_api import BASE, REQUEST_ID

from keel.entities import InvocationRecord
from keel.serving.recorder import InvocationRecorder, RecordingBacklog


def _calls(root: Path) -> list[str]:
    clients = _client(root)
    client = next(clients)
    ids = []
    for x in (1, 2, 3):
        ids.append(client.post(f"{BASE}/score", json={"x": x}).headers["x-request-id"])
    ids.append(client.get(f"{BASE}/item/1").headers["x-request-id"])
    upload = client.post(f"{BASE}/upload", files={"upload": ("f.txt", b"a\nb\n")})
    ids.append(upload.headers["x-request-id"])
    failed = client.post(f"{BASE}/score", json={"x": -5})
    ids.append(failed.json()["request_id"])
    batch = client.post("/invocations", json={"instances": [{"x": 7}, {"x": 8}]})
    assert batch.status_code == 200
    for _ in clients:  # leaving the client shuts the app down: the recorder flushes
        pass
    return ids


def test_every_call_is_recorded_with_its_id(trained: Path) -> None:
    import keel

    ids = _calls(trained)
    client = keel.Client()
    records = client.find_invocations("scorer@2.1.0", limit=None)
    assert len(records) == 8  # 6 calls + a batch of 2
    by_id = {r.request_id: r for r in records}
    assert set(ids) <= set(by_id)
    assert all(REQUEST_ID.match(r.request_id) for r in records)
    first = by_id[ids[0]]
    assert first.input == {"x": 1.0, "tags": None, "sleep": 0.0}
    assert first.result == {"score": 3.0, "tags": None}
    assert first.status == "ok" and first.latency_ms > 0 and first.resource == f"{BASE}/score"
    upload = by_id[ids[4]].input["upload"]
    assert upload["filename"] == "f.txt" and upload["size"] == 4 and len(upload["sha256"]) == 64
    failed = by_id[ids[5]]
    assert failed.status == "error" and "negative" in failed.result["error"]
    assert sorted(r.input["x"] for r in records if r.resource == "/invocations") == [7, 8]
    # newest first, and --since filters
    stamps = [r.timestamp for r in records]
    assert stamps == sorted(stamps, reverse=True)
    assert client.find_invocations("scorer@1", since=stamps[0] + 1) == []
    # files under predictions/<model>/<version>/ in the artifact store, indexed per record
    files = client.store.list_artifacts("model_version", client.get_model_version("scorer@1").id)
    batches = [f for f in files if not f.path.startswith("monitoring/")]  # and its profiles
    assert batches and all(f.path.startswith("predictions/scorer/1/") for f in batches)


def test_invocations_list_cli(trained: Path) -> None:
    from tests.test_cli import keel

    _calls(trained)
    out = keel("invocations", "list", "scorer@1", "--json", "--limit", "3", cwd=trained)
    rows = json.loads(out.stdout)
    assert len(rows) == 3 and all(REQUEST_ID.match(r["request_id"]) for r in rows)
    table = keel("invocations", "list", "scorer@2.1.0", "--since", "1h", cwd=trained)
    assert "invocations of scorer version 1" in table.stdout, table.stderr
    bad = keel("invocations", "list", "scorer@1", "--since", "yesterday-ish", cwd=trained)
    assert bad.returncode == 1 and "--since" in bad.stderr


def test_model_keys_name_the_record(trained: Path) -> None:
    code = (trained / "scorer_model.py").read_text()
    code += """

def _record_invoke_id(self, ctx, inputs, result):
    from collections import OrderedDict
    from keel.models.base import default_invoke_id
    return OrderedDict([("x", int(inputs["x"])), *default_invoke_id().items()])


Scorer.record_invoke_id = _record_invoke_id
"""
    (trained / "scorer_model.py").write_text(code)
    import sys

    from keel.lifecycle.training import train

    sys.modules.pop("scorer_model", None)  # imported by the fixture's training
    train(trained / "keel.yml")  # version 2 carries the new code
    clients = _client(trained)
    client = next(clients)
    rid = client.post(f"{BASE}/score", json={"x": 9}).headers["x-request-id"]
    # a failed call is named by the default keys: the model's hook is not asked about it
    failed = client.post("/invocations", json={"instances": [{"x": -1}]})
    assert failed.status_code == 500 and failed.json()["request_id"].startswith("ts-")
    for _ in clients:
        pass
    assert rid.startswith("x-9--ts-") and "--uuid-" in rid


def _record(i: int) -> InvocationRecord:
    return InvocationRecord(f"ts-{i}--uuid-{i}", "m", 1, 1000 + i, 1.0, "ok", "/r", {"i": i}, i)


class FlakyClient:
    """Stands in for keel.Client's log_invocations: fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.stored: list[InvocationRecord] = []

    def get_model_version(self, ref):
        return ref

    def log_invocations(self, ref, records) -> None:
        if self.down.is_set():
            raise ConnectionError("store is down")
        self.stored.extend(records)


def test_full_queue_makes_the_request_wait_then_refuses(tmp_path: Path) -> None:
    client = FlakyClient()
    client.down.set()
    recorder = InvocationRecorder(
        client, ("m", 1), queue_size=2, wait_s=0.2, flush_s=0.01, fallback_dir=tmp_path
    )
    recorder.submit(_record(1))
    recorder.submit(_record(2))  # not started: the queue is now full
    started = time.perf_counter()
    with pytest.raises(RecordingBacklog, match="not being stored fast enough"):
        recorder.submit(_record(3))
    assert time.perf_counter() - started >= 0.2
    # room frees up while a request waits: it goes through
    recorder.start()
    client.down.clear()
    recorder.submit(_record(4))
    recorder.close()
    assert [r.request_id for r in client.stored] == ["ts-1--uuid-1", "ts-2--uuid-2", "ts-4--uuid-4"]


def test_store_outage_is_retried_without_losing_records(tmp_path: Path) -> None:
    client = FlakyClient()
    client.down.set()
    recorder = InvocationRecorder(client, ("m", 1), flush_s=0.01, fallback_dir=tmp_path).start()
    for i in range(50):
        recorder.submit(_record(i))
    time.sleep(0.3)
    assert client.stored == [] and recorder.failed_writes >= 1
    client.down.clear()
    recorder.close()
    assert sorted(r.timestamp for r in client.stored) == [1000 + i for i in range(50)]
    assert not list(tmp_path.glob("keel-unstored-*"))


def test_records_that_cannot_be_stored_are_saved_locally(tmp_path: Path, caplog) -> None:
    client = FlakyClient()
    client.down.set()
    recorder = InvocationRecorder(client, ("m", 1), flush_s=0.01, fallback_dir=tmp_path).start()
    for i in range(5):
        recorder.submit(_record(i))
    recorder.close()
    (saved,) = tmp_path.glob("keel-unstored-invocations-*.jsonl")
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [f"ts-{i}--uuid-{i}" for i in range(5)]
    assert str(saved) in caplog.text
