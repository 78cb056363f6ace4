"""The prediction API through the ASGI client: resources, errors, container contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REQUEST_ID = re.compile(
    r"^ts-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00--uuid-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
    r"[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
BASE = "/scores/v2"  # api.name scores, label 2.1.0


def test_query_resource_get_and_post_validate_alike(app_client) -> None:
    got = app_client.get(f"{BASE}/score", params={"x": "2", "tags": ["a", "b"]})
    posted = app_client.post(f"{BASE}/score", json={"x": 2, "tags": ["a", "b"]})
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json() == {"score": 6.0, "tags": ["a", "b"]}
    assert REQUEST_ID.match(got.headers["x-request-id"])
    bad_get = app_client.get(f"{BASE}/score", params={"x": "abc"})
    bad_post = app_client.post(f"{BASE}/score", json={"x": "abc"})
    assert bad_get.status_code == bad_post.status_code == 422
    assert bad_get.json()["details"] == bad_post.json()["details"]


def test_every_bad_field_is_listed_at_once(app_client) -> None:
    answer = app_client.post(f"{BASE}/score", json={"x": 500, "sleep": "long", "colour": "red"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["message"].startswith("3 invalid inputs")
    problems = {d["field"]: d["problem"] for d in body["details"]}
    assert set(problems) == {"x", "sleep", "colour"}
    assert "less than or equal to 100" in problems["x"]
    assert "not permitted" in problems["colour"]
    missing = app_client.post(f"{BASE}/score", json={})
    assert missing.json()["details"] == [{"field": "x", "problem": "Field required"}]


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "malformed JSON"),
        (b"", {"content-type": "application/json"}, 400, "empty"),
        (b"x=1", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        (b"[1, 2]", {"content-type": "application/json"}, 422, "expected a JSON object"),
        (b"{" + b" " * 20_000 + b"}", {"content-type": "application/json"}, 413, "max_body_mb"),
    ],
)
def test_bad_bodies_get_a_json_4xx(app_client, body, headers, status, words) -> None:
    answer = app_client.post(f"{BASE}/score", content=body, headers=headers)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert words in answer.json()["message"]


def test_body_too_large_without_content_length(app_client) -> None:
    def chunks():
        for _ in range(30):
            yield b" " * 1000

    answer = app_client.post(
        "/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


def test_model_failure_is_a_500_with_request_id_and_no_traceback(app_client, caplog) -> None:
    answer = app_client.post(f"{BASE}/score", json={"x": -1})
    assert answer.status_code == 500
    body = answer.json()
    assert REQUEST_ID.match(body["request_id"])
    assert "ValueError" in body["message"]
    assert "Traceback" not in answer.text and "secret internals" not in answer.text
    assert any(body["request_id"] in r.getMessage() for r in caplog.records)
    assert "Traceback" in caplog.text  # the traceback went to the log
    assert app_client.post(f"{BASE}/score", json={"x": 1}).status_code == 200


def test_id_resource_looks_up_a_data_source(app_client) -> None:
    answer = app_client.get(f"{BASE}/item/2")
    assert answer.status_code == 200
    # numpy and pandas values (int64, float64, NaN, Timestamp, arrays) arrive as JSON
    assert answer.json() == {
        "item": 2,
        "score": 6.0,
        "kind": "b",
        "x": 2.5,
        "when": "2026-01-02T03:04:05+00:00",
        "vector": [0, 1, 2],
    }
    assert app_client.get(f"{BASE}/item/3").json()["x"] is None  # NaN → null
    bad = app_client.get(f"{BASE}/item/seven")
    assert bad.status_code == 422
    assert bad.json()["details"][0]["field"] == "item_id"
    missing = app_client.get(f"{BASE}/item/99")
    assert missing.status_code == 404  # the model raised keel.errors.NotFound
    assert missing.json()["message"] == "no item 99" and "request_id" in missing.json()


def test_model_refusing_an_input_is_a_422(app_client) -> None:
    answer = app_client.post(f"{BASE}/score", json={"x": 42})
    assert answer.status_code == 422
    assert answer.json()["message"] == "x = 42 is reserved: pick another x"


def test_file_resource(app_client) -> None:
    answer = app_client.post(
        f"{BASE}/upload", files={"upload": ("rows.csv", b"a\n1\n2\n")}, data={"label": "b"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"lines": 3, "name": "rows.csv", "label": "b"}
    no_file = app_client.post(f"{BASE}/upload", files={"other": ("x", b"1")})
    assert no_file.status_code == 422
    assert no_file.json()["details"][0]["field"] == "upload"
    bad_label = app_client.post(
        f"{BASE}/upload", files={"upload": ("a", b"1")}, data={"label": "zzz"}
    )
    assert bad_label.status_code == 422
    not_multipart = app_client.post(f"{BASE}/upload", json={"upload": "x"})
    assert not_multipart.status_code == 415


def test_invocations_single_call_has_metadata(app_client) -> None:
    answer = app_client.post("/invocations", json={"x": 3})
    assert answer.status_code == 200
    body = answer.json()
    assert body["result"] == {"score": 9.0, "tags": None}
    meta = body["metadata"]
    assert meta["model_version"] == 1 and meta["model_label"] == "2.1.0"
    assert meta["keel_version"] and isinstance(meta["timestamp"], float)


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": [{"x": 1}, {"x": 2}]},
        [{"x": 1}, {"x": 2}],
        {"dataframe_split": {"columns": ["x"], "data": [[1], [2]]}},
        {"dataframe_split": {"index": [0, 1], "columns": ["x"], "data": [[1], [2]]}},
        {"dataframe_records": [{"x": 1}, {"x": 2}]},
        {"inputs": [{"x": 1}, {"x": 2}]},
        {"inputs": {"x": [1, 2]}},
    ],
    ids=["instances", "array", "split", "split-index", "records", "inputs", "inputs-columns"],
)
def test_invocations_batch_forms(app_client, payload) -> None:
    answer = app_client.post("/invocations", json=payload)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "predictions": [{"score": 3.0, "tags": None}, {"score": 6.0, "tags": None}]
    }


def test_invocations_csv(app_client) -> None:
    answer = app_client.post(
        "/invocations", content=b"x\n1\n2\n", headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 200
    assert [p["score"] for p in answer.json()["predictions"]] == [3.0, 6.0]


def test_invocations_errors(app_client) -> None:
    bad_row = app_client.post("/invocations", json={"instances": [{"x": 1}, {"x": "no"}]})
    assert bad_row.status_code == 422
    assert bad_row.json()["details"][0]["field"] == "instances[1].x"
    split = app_client.post(
        "/invocations", json={"dataframe_split": {"columns": ["x", "y"], "data": [[1]]}}
    )
    assert split.status_code == 422
    both = app_client.post("/invocations", json={"inputs": [], "dataframe_records": []})
    assert both.status_code == 400
    params = app_client.post("/invocations", json={"inputs": [{"x": 1}], "params": {"k": 1}})
    assert params.status_code == 400 and "params" in params.json()["message"]
    xml = app_client.post("/invocations", content=b"<x/>", headers={"content-type": "text/xml"})
    assert xml.status_code == 415
    failing = app_client.post("/invocations", json={"instances": [{"x": 1}, {"x": -2}]})
    assert failing.status_code == 500 and "request_id" in failing.json()


def test_container_and_health_routes(app_client) -> None:
    assert app_client.get("/ping").status_code == 200
    assert app_client.get("/health").json() == {"status": "ok"}
    assert app_client.get("/ready").json()["status"] == "ready"
    params = app_client.get("/execution-parameters").json()
    assert params["BatchStrategy"] == "MULTI_RECORD" and params["MaxPayloadInMB"] >= 1
    meta = app_client.get("/metadata").json()
    assert meta["model"] == "scorer" and meta["version"] == 1 and meta["label"] == "2.1.0"
    assert len(meta["content_hash"]) == 64 and meta["trained_at"].startswith("20")
    assert meta["api"]["base_path"] == BASE
    missing = app_client.get("/nowhere")
    assert missing.status_code == 404 and "no such resource" in missing.json()["message"]
    wrong_method = app_client.delete("/invocations")
    assert wrong_method.status_code == 405 and "message" in wrong_method.json()


def test_prometheus_metrics(app_client) -> None:
    app_client.post(f"{BASE}/score", json={"x": 1})
    app_client.post(f"{BASE}/score", json={"x": "bad"})
    text = app_client.get("/metrics").text
    assert (
        'keel_requests_total{method="POST",model="scorer",route="/scores/v2/score",status="200"'
        in text
    )
    assert 'status="422"' in text
    assert "keel_request_duration_seconds_bucket" in text
    assert "keel_invocation_records_written_total" in text


def test_openapi_document_and_offline_docs(app_client) -> None:
    doc = app_client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    score = doc["paths"][f"{BASE}/score"]
    assert {"get", "post"} <= set(score)
    params = {p["name"]: p for p in score["get"]["parameters"]}
    assert params["x"]["required"] is True and params["x"]["schema"]["maximum"] == 100
    inputs = doc["components"]["schemas"]["ScoreInputs"]
    assert inputs["additionalProperties"] is False and inputs["required"] == ["x"]
    assert f"{BASE}/item/{{item_id}}" in doc["paths"]
    upload = doc["paths"][f"{BASE}/upload"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert (
        "/invocations" in doc["paths"]
        and "422" in doc["paths"]["/invocations"]["post"]["responses"]
    )
    page = app_client.get("/docs").text
    assert "/_static/swagger/swagger-ui-bundle.js" in page and "cdn" not in page
    script = app_client.get("/_static/swagger/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_setup_before_first_request_teardown_on_shutdown(trained: Path) -> None:
    from tests.serving.conftest import _client

    marker = trained / "lifecycle.log"
    clients = _client(trained)
    client = next(clients)
    assert marker.read_text().splitlines() == ["setup"]
    assert client.post(f"{BASE}/score", json={"x": 1}).status_code == 200
    with pytest.raises(StopIteration):
        next(clients)
    assert marker.read_text().splitlines() == ["setup", "teardown"]


def test_serving_without_keel_yml_uses_defaults(
    trained: Path, tmp_path_factory, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from keel.serving.app import build_app
    from keel.serving.service import open_service

    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("KEEL_STORE", str(trained / ".keel"))
    monkeypatch.setenv("KEEL_PROJECT", "serving")
    service = open_service("scorer@2.1.0")
    assert service.base_path == "/scorer/v2" and service.recorder is None
    with TestClient(build_app(service)) as client:
        # no inputs declared: any JSON object goes to the model as is
        answer = client.post("/scorer/v2/predict", json={"x": 2})
        assert answer.status_code == 200 and answer.json()["score"] == 6.0
        assert client.post("/invocations", json={"x": 1}).json()["result"]["score"] == 3.0


def test_server_workers_freeze_the_loaded_heap(trained: Path) -> None:
    """A worker moves the loaded model and libraries out of the collector's reach, so a full
    collection (30-80 ms over pandas and scikit-learn) never stalls a request."""
    import gc

    from fastapi.testclient import TestClient

    from keel.serving.app import build_app
    from keel.serving.service import open_service

    service = open_service(config=trained / "keel.yml")
    try:
        with TestClient(build_app(service, freeze_heap=True)) as client:
            assert gc.get_freeze_count() > 10_000
            assert client.post(f"{BASE}/score", json={"x": 1}).status_code == 200
    finally:
        gc.unfreeze()  # the test process goes on collecting as usual
