"""Writers killed with SIGKILL mid-write, on SQLite and PostgreSQL: no half-registered model
version is ever visible, ``keel doctor --repair`` finds and clears what they left (partial
uploads, unreferenced blobs, runs left running) and agrees with ``keel gc``, a second pass
finds nothing, and no artifact stored before the kills changes (checked by content hash).

The writers are real processes (``crash_worker.py``) logging runs, 1 MiB artifacts and
1.5 MiB model versions in a loop. 18 are killed at random moments, 6 running at a time; 6
more are killed at fixed points they stop at, 2 at each (half of a blob copied; a blob
published but not recorded; inside the registration transaction). Where each kill landed is
printed (``-s``); ``KEEL_CRASH_SEED=N`` replays the random delays of a printed seed.
Rerun: ``.venv/bin/pytest tests/tracking/test_crash_safety.py -m slow -s``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from keel import Client
from keel.hashing import hash_path
from keel.store.accounts import AccountStore

WORKER_SCRIPT = Path(__file__).with_name("crash_worker.py")
AT_ONCE = 6  # writers started together in a round of random kills
RANDOM_ROUNDS = 3  # 18 kills at random moments
FIXED_POINTS = ("upload", "published", "register")
FIXED_PER_POINT = 2  # one more round: 6 kills, 2 at each fixed point
MAX_DELAY_S = 0.7  # a writer logs a cycle in ~0.15 s unloaded, several when loaded
START_TIMEOUT_S = 60.0
SEED = int(os.environ.get("KEEL_CRASH_SEED", "0")) or random.SystemRandom().randrange(1, 10**6)


class Writer:
    """One crash_worker.py process and the files it reports through."""

    def __init__(self, store_url: str, root: Path, n: int, pause: str, baseline: Path) -> None:
        self.status = root / f"status-{n}"
        self.journal = root / f"journal-{n}"
        self.stderr = root / f"stderr-{n}"
        self.pause = pause
        args = [store_url, str(root / "artifacts"), str(root / "cache"), str(self.status)]
        args += [str(self.journal), str(baseline), pause]
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT), *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def where(self) -> str:
        return self.status.read_text().strip() if self.status.exists() else ""

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"writer ended by itself: {self.stderr.read_text()[-2000:]}")

    def wait_until_started(self) -> None:
        """Until it is connected and about to log."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.where():
            self.check_alive()
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.005)

    def kill(self) -> str:
        """SIGKILL it; return where it was when it died."""
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL, self.stderr.read_text()[-2000:]
        return self.where()


def keel(*args: str, store_url: str, root: Path) -> dict[str, Any]:
    env = {**os.environ, "KEEL_ARTIFACTS": str(root / "artifacts"), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "keel.cli", "--store", store_url, "--project", "test", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    return dict(json.loads(out.stdout))


def kill_at_their_points(batch: list[Writer]) -> list[str]:
    """SIGKILL each writer as soon as it stops at its point; return where each died.

    At once, not all together: one stopped inside its transaction holds a lock (SQLite's
    write lock, PostgreSQL's version counter row) that the others need to reach theirs.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    alive, found = list(batch), []
    while alive:
        for w in list(alive):
            if w.where() == f"paused:{w.pause}":
                found.append(w.kill())
                alive.remove(w)
            else:
                w.check_alive()
        assert time.monotonic() < deadline, [w.where() for w in alive]
        time.sleep(0.005)
    return found


def blob_files(artifacts: Path) -> dict[str, str]:
    """{blob name: sha256 of its bytes} for every blob on disk."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (artifacts / "blobs").glob("*/*")
    }


def journal(writers: list[Writer]) -> tuple[dict[int, str], list[str]]:
    """(registered {version: hash}, last intent of each writer that died before its answer)."""
    registered: dict[int, str] = {}
    unanswered = []
    for w in writers:
        lines = w.journal.read_text().splitlines() if w.journal.exists() else []
        for line in lines:
            if line.startswith("registered "):
                _, version, sha = line.split()
                registered[int(version)] = sha
        if lines and lines[-1].startswith("intent "):
            unanswered.append(lines[-1].split()[1])
    return registered, unanswered


LANDINGS = {
    "version:hash": "mid-upload of a version (hashing)",
    "version:upload": "mid-upload of a version",
    "version:register": "mid-register of a version",
    "version:between": "in log_model_version between steps",
    "artifact:upload": "mid-upload of a run artifact",
    "artifact:record": "mid-record of a run artifact",
    "artifact:between": "in log_run_artifact between steps",
    "other": "elsewhere (run start/end, params, metrics)",
    "ready": "before the first write",
}


def landing(where: str) -> str:
    """The kind of moment a kill landed on, from the writer's last status."""
    if where.startswith("paused:"):
        return f"fixed point {where.split(':')[1]}"
    return LANDINGS.get(where, where)


@pytest.mark.slow
def test_sigkill_leaves_no_half_registered_version_and_repair_clears_the_rest(
    store_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    artifacts = tmp_path / "artifacts"
    client = Client(
        store=store_url, artifacts=str(artifacts), cache_dir=tmp_path / "check", project="test"
    )
    # keel doctor's other checks must pass for its exit code to be 0 (on PostgreSQL, a store
    # without an admin user is an error: a shared server would not start)
    AccountStore(store_url).add_user("root", "not-a-real-hash", "admin")

    # --- before: a run artifact and two versions whose bytes must never change
    baseline = tmp_path / "baseline.bin"
    baseline.write_bytes(os.urandom(1 << 20))
    model = tmp_path / "model"
    model.mkdir()
    for i in range(3):
        (model / f"part{i}.bin").write_bytes(os.urandom(256 << 10))
    single = tmp_path / "model.bin"
    single.write_bytes(os.urandom(256 << 10))
    with client.start_run("crash", name="baseline") as run:
        run.log_artifact(baseline, "baseline.bin")
        kept = {
            client.log_model_version("crash", run, model).version: hash_path(model),
            client.log_model_version("crash", run, single).version: hash_path(single),
        }
    assert kept == {1: hash_path(model), 2: hash_path(single)}
    before = blob_files(artifacts)
    assert all(name == sha for name, sha in before.items())

    # --- the kills
    rng = random.Random(SEED)
    landed: Counter[str] = Counter()
    writers: list[Writer] = []
    rounds = [["-"] * AT_ONCE] * RANDOM_ROUNDS + [[*FIXED_POINTS] * FIXED_PER_POINT]
    for pauses in rounds:
        batch = [
            Writer(store_url, tmp_path, len(writers) + i, pause, baseline)
            for i, pause in enumerate(pauses)
        ]
        writers += batch
        try:
            if pauses[0] == "-":  # each at its own random moment, counted from all started
                for w in batch:
                    w.wait_until_started()
                now = time.monotonic()
                delays = [rng.uniform(0, MAX_DELAY_S) for _ in batch]
                for delay, w in sorted(zip(delays, batch, strict=True), key=lambda p: p[0]):
                    time.sleep(max(0.0, now + delay - time.monotonic()))
                    landed[landing(w.kill())] += 1
            else:
                landed.update(landing(where) for where in kill_at_their_points(batch))
        finally:
            for w in batch:
                if w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
    kills = sum(landed.values())
    killed_in = time.monotonic() - started
    fixed_kills = FIXED_PER_POINT * len(FIXED_POINTS)
    assert kills == AT_ONCE * RANDOM_ROUNDS + fixed_kills

    # --- (a) every visible version is complete; versions are gapless; none half-made
    registered, unanswered = journal(writers)
    versions = {v.version: v for v in client.find_model_versions({"model.name": "crash"})}
    assert sorted(versions) == list(range(1, len(versions) + 1)), "gapless"
    assert all(versions[n].content_hash == sha for n, sha in {**kept, **registered}.items())
    for mv in versions.values():  # loading verifies each file and the content hash
        assert client.get_model_artifact(("crash", mv.version)).exists()
    _, stopped_intents = journal([w for w in writers if w.pause != "-"])
    visible = {mv.content_hash for mv in versions.values()}
    assert len(stopped_intents) == fixed_kills
    assert not visible & set(stopped_intents), "a version killed before its commit is visible"
    for w in writers:
        if w.pause == "register":  # its files were recorded in the transaction it died in
            (dead,) = client.find_runs({"name": f"pid{w.proc.pid}-1"})
            assert client.list_run_artifact(dead, "crash") == []
            assert [f.path for f in client.list_run_artifact(dead, "data")] == ["data/big.bin"]

    # --- (b) the leftovers: gc and doctor --repair agree, and clear them
    partials = sorted(str(p) for p in (artifacts / "tmp").glob("*.part"))
    running = {r.id for r in client.find_runs({"status": "running"})}
    dead_pids = {w.proc.pid for w in writers}
    assert all(client.get_run(r).environment["pid"] in dead_pids for r in running)
    dry = keel("gc", "--grace", "0", "--dry-run", "--json", store_url=store_url, root=tmp_path)
    # each fixed kill leaves a run; "upload" and "published" a partial file; "published"
    # one blob and "register" three (the version's files) that no record refers to
    assert len(running) >= fixed_kills
    assert len(partials) >= 2 * FIXED_PER_POINT
    assert len(dry["removed_blobs"]) >= 4 * FIXED_PER_POINT
    assert not set(dry["removed_blobs"]) & set(before)
    repair = keel(
        "doctor", "--repair", "--grace", "0", "--json", store_url=store_url, root=tmp_path
    )["repair"]
    assert repair["ok"] and repair["broken_versions"] == []
    assert repair["versions_checked"] == len(versions)
    assert sorted(repair["partial_uploads"]) == partials
    assert repair["removed_partials"] == len(partials)
    assert sorted(repair["unreferenced_blobs"]) == sorted(dry["removed_blobs"])
    assert sorted(repair["dead_runs"]) == sorted(running)
    assert not list((artifacts / "tmp").glob("*.part"))
    assert set(blob_files(artifacts)) <= client.store.referenced_blobs()
    assert not client.find_runs({"status": "running"})
    for run_id in running:
        dead = client.get_run(run_id)
        assert dead.status == "killed" and "keel doctor --repair" in (dead.failure or "")

    # --- (d) a second pass finds nothing
    again = keel("gc", "--grace", "0", "--json", store_url=store_url, root=tmp_path)
    assert again["removed_blobs"] == [] and again["removed_partials"] == 0
    second = keel(
        "doctor", "--repair", "--grace", "0", "--json", store_url=store_url, root=tmp_path
    )["repair"]
    assert second["found"] == 0 and second["ok"]

    # --- (c) nothing stored before (or by a finished write) changed
    after = blob_files(artifacts)
    assert all(name == sha for name, sha in after.items()), "every blob matches its name"
    assert all(after.get(name) == sha for name, sha in before.items()), "pre-kill blobs intact"
    for n, sha in kept.items():
        assert hash_path(client.get_model_artifact(("crash", n))) == sha
    assert client.get_run_artifact(run, "baseline.bin").read_bytes() == baseline.read_bytes()

    print(
        f"\nseed {SEED}: {kills} kills in {killed_in:.1f} s "
        f"(checks and repair {time.monotonic() - started - killed_in:.1f} s): "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(landed.items()))
        + f"; {len(versions)} versions visible, all complete; {len(unanswered)} writers "
        f"died between intent and answer; repaired {len(partials)} partial uploads, "
        f"{len(repair['unreferenced_blobs'])} unreferenced blobs "
        f"({repair['freed_bytes']} bytes), {len(running)} runs left running"
    )
