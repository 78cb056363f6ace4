"""A real ``keel server`` for the mlopen tests (test_mlopen.py over HTTP, test_mlopen_browser.py
in Chromium): a subprocess on 127.0.0.1, started from a temporary folder with a *relative*
``--store``, with an editor ``eddie`` who has a password (for the UI) and a token (for the API).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

KEEL = [sys.executable, "-m", "keel.cli"]
PASSWORD = "correct-horse"
STORE = "rel-store"  # relative to the server's working folder


class Http(requests.Session):
    """A session whose paths are relative to the server's URL; redirects are not followed."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        super().__init__()
        self.base_url = base_url
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 60)
        return super().request(method, self.base_url + url, *args, **kwargs)


@dataclass
class Live:
    url: str
    folder: Path  # the server's working folder (its store is STORE in here)
    api: Http
    ui: Http
    process: subprocess.Popen[bytes]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _keel(folder: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*KEEL, *args],
        cwd=folder,
        env=_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("mlopen-server")
    _keel(folder, "--store", STORE, "users", "add", "eddie", "--role", "editor",
          "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    token = _keel(folder, "--store", STORE, "tokens", "create", "--user", "eddie").split()[0]
    port = _free_port()
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [*KEEL, "server", "--port", str(port), "--store", STORE, "--log-level", "warning"],
        cwd=folder,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/login", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert process.poll() is None, (folder / "server.log").read_text()
        assert time.monotonic() < deadline, "keel server did not start"
        time.sleep(0.2)
    api = Http(url, token)
    ui = Http(url)
    answer = ui.post(
        "/login",
        data={"name": "eddie", "password": PASSWORD, "csrf_token": _csrf(ui.get("/login").text)},
    )
    assert answer.status_code in (200, 303), answer.text
    try:
        yield Live(url, folder, api, ui, process)
    finally:
        api.close()
        ui.close()
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)
