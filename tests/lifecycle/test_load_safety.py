"""Loading a model runs the code in its pickles, so keel unpickles a version only after its
files match the content hash registered with it.

A version is trained, then one of its pickles is replaced by a pickle whose unpickling
makes a marker file (the payload is first shown to be live: loaded on its own, it does
write its marker). Whether the bytes change size or keep the original size, whether they
are changed in the artifact store or in a remote client's cache, ``keel.load_model``,
``keel predict`` and ``keel serve`` refuse with :class:`~keel.errors.IntegrityError` (one
clear line; the CLI exits 1 without a traceback) and the marker is never written.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import keel
from keel.artifacts.base import blob_key
from keel.entities import ArtifactFile
from keel.errors import IntegrityError
from keel.lifecycle import load_model, train
from keel_server import running_server

CLI_TIMEOUT_S = 180.0  # a loaded CI machine: the CLI imports pandas, sklearn, uvicorn
#: the model's pickled files: its code (cloudpickle) and its fitted object
PICKLES = ("code.cloudpickle", "fitted")


#: the file the payload makes, in the working folder (the project): a short name keeps the
#: payload (39 bytes) shorter than the smallest pickle it replaces at the same size
MARKER = "m"


class _Payload:
    """Unpickling this runs a shell command that makes :data:`MARKER`."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {MARKER}",))


def payload(size: int | None = None) -> bytes:
    """A pickle that makes :data:`MARKER` when loaded, padded to ``size`` bytes if given
    (pickle stops reading at its STOP opcode, so the padding changes nothing)."""
    data = pickle.dumps(_Payload(), protocol=2)
    if size is not None:
        assert len(data) <= size, f"the payload ({len(data)} bytes) is longer than {size}"
        data += b"\0" * (size - len(data))
    return data


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Without keel's check, loading the payload would run it (also when padded)."""
    for size in (None, 4096):
        pickle.loads(payload(size))  # the point of the test: this runs the payload
        assert (tmp_path / MARKER).is_file()
        (tmp_path / MARKER).unlink()


def _version_file(client: keel.Client, which: str) -> ArtifactFile:
    files = client.list_model_artifact("ratio@1")
    found = [f for f in files if f.path.rsplit("/", 1)[-1].startswith(which)]
    assert found, [f.path for f in files]
    return found[0]


def _tamper(path: Path, same_size: bool) -> None:
    """Replace the file's bytes in place (its inode kept: hardlinked copies change too)."""
    size = path.stat().st_size
    path.chmod(0o644)
    path.write_bytes(payload(size if same_size else None))
    if same_size:
        assert path.stat().st_size == size


@pytest.fixture
def trained(project: Path) -> keel.Client:
    train("keel.yml")
    return keel.Client()


@pytest.mark.parametrize("same_size", [False, True], ids=["resized", "same-size"])
@pytest.mark.parametrize("which", PICKLES)
def test_a_pickle_changed_in_the_store_is_never_unpickled(
    trained: keel.Client, project: Path, which: str, same_size: bool
) -> None:
    marker = project / MARKER
    stored = _version_file(trained, which)
    blob = Path(trained.settings.artifacts) / blob_key(stored.sha256)
    _tamper(blob, same_size)
    with pytest.raises(IntegrityError) as caught:
        load_model("ratio@1")
    message = str(caught.value)
    assert "\n" not in message
    assert "ratio version 1" in message and stored.path in message
    assert not marker.exists()
    # the cached copy was never trusted either: a second attempt refuses again
    with pytest.raises(IntegrityError):
        load_model("ratio@1")
    assert not marker.exists()


def _keel(
    project: Path, *args: str, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("same_size", [False, True], ids=["resized", "same-size"])
def test_keel_predict_and_keel_serve_refuse_a_changed_pickle(
    trained: keel.Client, project: Path, same_size: bool
) -> None:
    marker = project / MARKER
    stored = _version_file(trained, "code.cloudpickle")
    _tamper(Path(trained.settings.artifacts) / blob_key(stored.sha256), same_size)
    (project / "input.json").write_text('{"x": 2}')

    predicted = _keel(project, "predict", "input.json")
    assert predicted.returncode == 1, predicted.stdout + predicted.stderr
    assert "error: " in predicted.stderr and "changed" in predicted.stderr
    assert "Traceback" not in predicted.stderr
    assert not marker.exists()

    port = _free_port()
    started = time.monotonic()
    served = _keel(project, "serve", "--port", str(port))
    assert served.returncode == 1, served.stdout + served.stderr
    assert "error: " in served.stderr and "changed" in served.stderr
    assert "Traceback" not in served.stderr
    assert time.monotonic() - started < CLI_TIMEOUT_S
    with socket.socket() as sock:  # it never listened
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert not marker.exists()


@pytest.fixture
def remote(trained: keel.Client, project: Path) -> Iterator[keel.Client]:
    """A client of a keel server over the project's store, with a cache of its own."""
    from keel.server.settings import ServerSettings

    settings = ServerSettings(store=trained.settings.store, artifacts=trained.settings.artifacts)
    with running_server(settings) as server:
        client = keel.Client(server.url, token=server.token, cache_dir=project / "remote-cache")
        yield client
        client.close()


@pytest.mark.parametrize("same_size", [False, True], ids=["resized", "same-size"])
def test_a_pickle_changed_in_a_remote_clients_cache_is_never_unpickled(
    remote: keel.Client, project: Path, same_size: bool
) -> None:
    marker = project / MARKER
    assert load_model("ratio@1", client=remote).predict({"x": 2}) == {"y": 4.0, "code": "v1"}
    stored = _version_file(remote, "code.cloudpickle")
    cached = remote.settings.cache_dir / blob_key(stored.sha256)
    assert cached.is_file()  # downloaded from the server into this client's cache
    _tamper(cached, same_size)
    with pytest.raises(IntegrityError, match="ratio version 1"):
        load_model("ratio@1", client=remote)
    assert not marker.exists()
    offline = keel.Client(
        remote.settings.store, token="unused", cache_dir=remote.settings.cache_dir, offline=True
    )
    with pytest.raises(IntegrityError):
        load_model("ratio@1", client=offline)
    assert not marker.exists()
