"""Crashes leave nothing behind (issue 19, item 8): what a server killed mid-upload leaves in
its uploads folder is reported by ``keel doctor`` and removed by ``keel doctor --repair`` and
``keel gc``, while an upload in flight, here or in another replica sharing the folder, is
never touched.

An upload through the server is staged in ``<work_dir>/uploads/`` in a file its request holds
locked (``flock``) until it ends (:mod:`keel.server.uploads`): the operating system drops the
lock when the process dies, so an unlocked file is a leftover whatever its age, and a locked
one is in flight however old.

* unit tests of :mod:`keel.server.uploads`: a held file is live and kept; an unlocked one is
  removed past the grace period and kept before it; a ``.new`` file (a name an upload has
  before it locks it) is kept for a minute even with no grace;
* two real ``keel server`` replicas sharing one work folder on this machine: replica A is
  SIGKILLed in the middle of a streamed ``PUT /api/v1/blobs/…`` and of an MLflow artifact
  upload (``PUT /api/2.0/mlflow-artifacts/artifacts/…``) while replica B streams another
  blob. ``keel doctor`` reports A's two files (count and bytes) and B's upload as in flight;
  ``keel doctor --repair --grace 0`` removes A's two and not B's, whose upload then finishes
  and stores its blob; B killed mid-upload in turn, ``keel gc --grace 0`` removes its file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.server.uploads import (
    find_partial_uploads,
    remove_partial_uploads,
    staged_upload,
    uploads_dir,
)

MIB = 1 << 20
SENT_BEFORE_PAUSE = 3 * MIB  # the server writes in 1 MiB pieces: these reach the disk

# --------------------------------------------------------------------------- the folder


def test_a_held_file_is_live_and_an_unlocked_one_is_a_leftover(tmp_path: Path) -> None:
    folder = uploads_dir(tmp_path / "work")
    folder.mkdir(parents=True)
    left = folder / "blob-killed.part"
    left.write_bytes(b"x" * 1000)
    young = folder / "blob-just-made.new"
    young.write_bytes(b"")
    with staged_upload(folder, "blob-") as staged:
        staged.handle.write(b"y" * 10)
        staged.handle.flush()
        assert staged.path.name.startswith("blob-") and staged.path.suffix == ".part"
        found = {p.path.name: p for p in find_partial_uploads(folder)}
        assert found[staged.path.name].live is True and found[staged.path.name].size == 10
        assert found[left.name].live is False and found[left.name].size == 1000
        # a grace period spares a leftover younger than it
        assert remove_partial_uploads(folder, 3600) == []
        assert left.exists()
        # a dry run removes nothing
        assert [p.path for p in remove_partial_uploads(folder, 0, dry_run=True)] == [left]
        assert left.exists()
        removed = remove_partial_uploads(folder, 0)
        assert [p.path for p in removed] == [left]
        assert not left.exists() and staged.path.exists()  # the live one stays
        assert young.exists()  # a .new file may be an upload about to lock it
    assert not staged.path.exists()  # an upload removes its own file
    old = time.time() - 120
    os.utime(young, (old, old))
    assert [p.path for p in remove_partial_uploads(folder, 0)] == [young]
    assert find_partial_uploads(folder) == []


def test_uploads_leave_nothing_and_the_gc_route_clears_what_a_crash_left(tmp_path: Path) -> None:
    """Through the app: a finished upload tidies its file; ``POST /api/v1/gc/remove-partials``
    (what ``keel gc`` calls on a keel server store) removes a leftover, never a held file."""
    from fastapi.testclient import TestClient
    from tests.keel_server import admin_token

    from keel.server.app import create_app
    from keel.server.settings import ServerSettings

    store = str(tmp_path / "store")
    token = admin_token(store)
    app = create_app(ServerSettings(store=store, work_dir=tmp_path / "work"))
    folder = uploads_dir(tmp_path / "work")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app) as tc:
            data = b"blob bytes" * 200_000  # 2 MB: written in pieces
            sha = hashlib.sha256(data).hexdigest()
            stored = tc.put(f"/api/v1/blobs/{sha}", content=data, headers=auth)
            assert stored.status_code == 201, stored.text
            wrong = tc.put(f"/api/v1/blobs/{'0' * 64}", content=b"other", headers=auth)
            assert wrong.status_code == 422
            assert _parts(folder) == set()  # neither left its file
            left = folder / "blob-killed.part"
            left.write_bytes(b"x" * 10)
            with staged_upload(folder, "mlflow-") as held:
                swept = tc.post(
                    "/api/v1/gc/remove-partials", json={"older_than_seconds": 0}, headers=auth
                )
                assert swept.status_code == 200, swept.text
                assert swept.json()["removed"] == 1
                assert not left.exists() and held.path.exists()
    finally:
        app.state.client.close()


# --------------------------------------------------------------------------- two replicas


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """``keel server`` in a subprocess of its own, on a free port."""

    def __init__(self, root: Path, name: str) -> None:
        import httpx2

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "keel.cli",
                "-c",
                "keel.yml",
                "server",
                "--port",
                str(self.port),
            ],
            cwd=root,
            env={**os.environ, "KEEL_SECRET_KEY": "k" * 43, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                if httpx2.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name} did not start: {self.log_path.read_text()}"
            time.sleep(0.2)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no handler runs, nothing is tidied
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class Stream:
    """A PUT whose body (``size`` bytes of one repeated byte) is sent in 1 MiB pieces in a
    thread: the first ``SENT_BEFORE_PAUSE`` at once, the rest once :meth:`release` is called."""

    def __init__(self, url: str, token: str, size: int, byte: bytes) -> None:
        self.url, self.token, self.size, self.byte = url, token, size, byte
        self.sha256 = hashlib.sha256(byte * size).hexdigest()
        self._go = threading.Event()
        self.answer: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, daemon=True)

    def start(self, url: str | None = None) -> Stream:
        if url is not None:
            self.url = url
        self._thread.start()
        return self

    def _body(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.size:
            if sent >= SENT_BEFORE_PAUSE:
                self._go.wait(120)
            piece = min(MIB, self.size - sent)
            yield self.byte * piece
            sent += piece

    def _send(self) -> None:
        import httpx2

        try:
            self.answer = httpx2.put(
                self.url,
                content=self._body(),
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=120,
            )
        except BaseException as exc:  # the server was killed under it
            self.error = exc

    def release(self, timeout: float = 60) -> None:
        self._go.set()
        self._thread.join(timeout)


def _parts(folder: Path) -> set[Path]:
    return set(folder.glob("*.part"))


def _wait_for_files(folder: Path, before: set[Path], count: int) -> set[Path]:
    """The ``count`` new staged files, once something was written to each."""
    deadline = time.monotonic() + 60
    while True:
        new = _parts(folder) - before
        sizes = []
        for path in new:
            with contextlib.suppress(FileNotFoundError):
                sizes.append(path.stat().st_size)
        # the server writes what it has gathered once it holds 1 MiB or more
        if len(new) == count and len(sizes) == count and min(sizes) >= MIB:
            return new
        assert time.monotonic() < deadline, f"staged files: {sorted(new)} sizes {sizes}"
        time.sleep(0.1)


def _keel(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", "-c", "keel.yml", *args],
        cwd=root,
        env={**os.environ, "KEEL_SECRET_KEY": "k" * 43, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _check(doctor: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doctor["checks"] if c["name"] == name)


@pytest.mark.slow
def test_a_server_killed_mid_upload_leaves_files_doctor_reports_and_repair_and_gc_clear(
    tmp_path: Path,
) -> None:
    from tests.keel_server import admin_token

    from keel import Client

    root = tmp_path
    (root / "keel.yml").write_text(
        "store: store\nserver:\n  work_dir: work\n  body_timeout_s: 300\n"
    )
    token = admin_token(str(root / "store"))
    client = Client(store=str(root / "store"))
    run = client.start_run("uploads", name="killed mid-upload")
    folder = root / "work" / "uploads"
    a = b = None
    streams: list[Stream] = []
    try:
        a, b = Replica(root, "a"), Replica(root, "b")

        # replica A: a blob and an MLflow artifact, each stopped half-way
        blob = Stream("", token, 8 * MIB, b"a")
        blob.start(f"{a.url}/api/v1/blobs/{blob.sha256}")
        artifact = Stream("", token, 8 * MIB, b"m")
        artifact.start(f"{a.url}/api/2.0/mlflow-artifacts/artifacts/0/{run.id}/artifacts/big.bin")
        streams += [blob, artifact]
        killed = _wait_for_files(folder, set(), 2)
        assert {p.name.split("-")[0] for p in killed} == {"blob", "mlflow"}

        # replica B, sharing the folder: an upload in flight
        live = Stream("", token, 5 * MIB, b"b")
        live.start(f"{b.url}/api/v1/blobs/{live.sha256}")
        streams.append(live)
        (live_file,) = _wait_for_files(folder, killed, 1)

        a.kill()
        left_bytes = sum(p.stat().st_size for p in killed)

        # keel doctor reports the leftovers (count and bytes) and the upload in flight
        reported = _keel(root, "doctor", "--json")
        row = _check(json.loads(reported.stdout), "partial uploads")
        assert row["status"] == "warning", row
        assert "2 files" in row["detail"] and "1 upload in flight" in row["detail"], row
        assert f"{left_bytes / MIB:.1f} MiB" in row["detail"], row
        assert "keel doctor --repair" in row["fix"]
        assert all(p.exists() for p in killed)  # reporting removes nothing

        # keel doctor --repair removes A's files, never B's upload in flight
        repaired = _keel(root, "doctor", "--repair", "--grace", "0", "--json")
        repair = json.loads(repaired.stdout)["repair"]
        assert repair is not None, repaired.stderr
        assert {str(p) for p in killed} <= set(repair["partial_uploads"])
        assert str(live_file) not in repair["partial_uploads"]
        assert repair["removed_partials"] >= 2
        assert not any(p.exists() for p in killed)
        assert live_file.exists()
        again = _keel(root, "doctor", "--json")
        assert _check(json.loads(again.stdout), "partial uploads")["status"] == "ok"

        # B's upload finishes as if nothing happened, and tidies its own file
        live.release()
        assert live.error is None and live.answer.status_code == 201, live.answer
        assert not live_file.exists()
        stored = client.artifact_store.size(live.sha256)
        assert stored == 5 * MIB, "the live upload's blob was not stored whole"

        # B killed in the middle of the next upload: keel gc removes what it left
        last = Stream("", token, 8 * MIB, b"c")
        last.start(f"{b.url}/api/v1/blobs/{last.sha256}")
        streams.append(last)
        (last_file,) = _wait_for_files(folder, set(), 1)
        b.kill()
        collected = _keel(root, "gc", "--grace", "0", "--json")
        assert collected.returncode == 0, collected.stderr
        assert json.loads(collected.stdout)["removed_partials"] >= 1
        assert not last_file.exists() and _parts(folder) == set()
    finally:
        for stream in streams:
            stream.release(timeout=5)
        for replica in (a, b):
            if replica is not None:
                replica.stop()
        run.end()
        client.close()
