"""The platform API's OpenAPI document describes the refusals it really sends."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from keel.server.app import create_app
from keel.server.settings import ServerSettings


def test_the_documented_422_is_keels_error_and_matches_a_real_refusal(tmp_path: Path) -> None:
    app = create_app(ServerSettings(store=str(tmp_path / "store"), anonymous_read=True))
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        schemas = document["components"]["schemas"]
        assert schemas["HTTPValidationError"]["required"] == ["message"]
        assert "ValidationError" not in schemas
        assert "#/components/schemas/ValidationError" not in str(document)
        refusal = client.get("/api/v1/runs", params={"limit": "many"})
    assert refusal.status_code == 422
    assert set(refusal.json()) <= set(schemas["HTTPValidationError"]["properties"])
    assert isinstance(refusal.json()["message"], str)
