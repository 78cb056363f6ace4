"""The UI's session cookie is ``Secure`` when the request came over https, and only then
(unless ``secure_cookies`` asks for it always); it is ``HttpOnly`` and ``SameSite=Lax``.

"Came over https" is checked through a real uvicorn too: ``X-Forwarded-Proto: https`` from
a proxy uvicorn trusts (127.0.0.1, its default ``FORWARDED_ALLOW_IPS``) marks the cookie,
the same header from an address it does not trust does not.
"""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from keel.server.app import SESSION_COOKIE, create_app
from keel.server.settings import ServerSettings
from keel_server import running_server


def session_cookie(answer: httpx.Response) -> str:
    """The Set-Cookie header of the session cookie, lower-cased."""
    found = [
        value
        for name, value in answer.headers.multi_items()
        if name.lower() == "set-cookie" and value.startswith(f"{SESSION_COOKIE}=")
    ]
    assert len(found) == 1, answer.headers
    return found[0].lower()


def flags(cookie: str) -> set[str]:
    return {part.strip().split("=")[0] for part in cookie.split(";")[1:]}


@pytest.mark.parametrize(
    ("base_url", "always", "secure"),
    [
        ("http://testserver", False, False),
        ("https://testserver", False, True),
        ("http://testserver", True, True),
    ],
    ids=["http", "https", "http-with-secure_cookies"],
)
def test_the_cookie_is_secure_over_https_or_when_asked(
    tmp_path: Path, base_url: str, always: bool, secure: bool
) -> None:
    app = create_app(ServerSettings(store=str(tmp_path / "store"), secure_cookies=always))
    with TestClient(app, base_url=base_url) as tc:
        cookie = session_cookie(tc.get("/login"))
    assert ("secure" in flags(cookie)) is secure
    assert {"httponly", "samesite", "path"} <= flags(cookie) and "samesite=lax" in cookie
    app.state.client.close()


@pytest.mark.parametrize(("trusted", "secure"), [(True, True), (False, False)])
def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: bool, secure: bool
) -> None:
    if not trusted:  # uvicorn reads its trusted proxies when the server starts
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.9.9.9")
    with running_server(ServerSettings(store=str(tmp_path / "store"))) as server:
        behind = httpx.get(f"{server.url}/login", headers={"X-Forwarded-Proto": "https"})
        direct = httpx.get(f"{server.url}/login")
    assert ("secure" in flags(session_cookie(behind))) is secure
    assert "secure" not in flags(session_cookie(direct))


def test_secure_cookies_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "keel.yml").write_text("server: {secure_cookies: true}\n")
    assert ServerSettings.resolve(tmp_path / "keel.yml").secure_cookies is True
    (tmp_path / "keel.yml").write_text("project: p\n")
    assert ServerSettings.resolve(tmp_path / "keel.yml").secure_cookies is False
