"""Plain regression tests for the platform API's server errors the fuzzer found.

Each test sends the request a fuzz run failed on (shrunk by hand to its essence) and expects
the 4xx JSON refusal the fix gives; before the fix each answered 500. (The served model's
regressions sit in test_serving_api.py, beside the trained model they need.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keel.errors import InvalidInput

API = "/api/v1"
#: one past the largest integer the store's 64-bit columns hold
TOO_BIG = 2**63


def refused(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["message"]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """The platform app over a new SQLite store, an admin's auth header, and a run."""
    from keel.server.app import create_app
    from keel.server.settings import ServerSettings
    from keel_server import _password_hash

    app = create_app(ServerSettings(store=str(tmp_path / "store"), project="p"))
    app.state.accounts.store.add_user("admin", _password_hash(), "admin")
    token = app.state.accounts.create_token("admin", "t")[1]
    with app.state.client.get_or_create_exp("e").start_run(name="r") as run:
        run.log_metrics({"acc": 0.5})
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http, {"Authorization": f"Bearer {token}"}, run
    app.state.client.close()


def test_an_integer_over_64_bits_is_a_422_not_a_500(
    api: tuple[TestClient, dict[str, str], Any],
) -> None:
    """Fuzz: POST /api/v1/datasets with a file size of 160243131118404005991744012288 made
    SQLite's driver raise OverflowError (500), and so did a limit, an offset, a step, a time
    and a version number that large. Every integer that reaches the store is held to its
    range."""
    http, auth, run = api
    too_big_file = {"path": "a.csv", "sha256": "0" * 64, "size": TOO_BIG}
    dataset = {"project": "p", "name": "ds", "content_hash": "h", "files": [too_big_file]}
    refused(http.post(f"{API}/datasets", json=dataset, headers=auth), 422, "out of range")
    for params in ({"limit": TOO_BIG}, {"offset": TOO_BIG}):
        refused(http.get(f"{API}/runs", params=params, headers=auth), 422, "out of range")
    step = {"metrics": [{"key": "acc", "value": 1.0, "step": TOO_BIG}]}
    refused(
        http.post(f"{API}/runs/{run.id}/log-batch", json=step, headers=auth), 422, "out of range"
    )
    end = {"end_time": TOO_BIG}
    refused(http.patch(f"{API}/runs/{run.id}", json=end, headers=auth), 422, "out of range")
    version = http.get(
        f"{API}/dataset-versions/ds/{TOO_BIG}", params={"project": "p"}, headers=auth
    )
    refused(version, 422, "out of range")
    # the largest integer the store holds still works
    ok = http.get(f"{API}/runs", params={"limit": 2**63 - 1}, headers=auth)
    assert ok.status_code == 200 and len(ok.json()) == 1


def test_the_store_refuses_a_bad_integer_or_sort_on_each_backend(store_url: str) -> None:
    """The same refusals from the store itself: on SQLite (OverflowError from the driver)
    and on PostgreSQL ("bigint out of range", SQLSTATE 22003)."""
    from keel.store.sql import SqlStore

    store = SqlStore(store_url)
    store.get_or_create_project("p")
    with pytest.raises(InvalidInput, match="out of range"):
        store.find_runs("p", limit=TOO_BIG)
    with pytest.raises(InvalidInput, match="out of range"):
        store.find_runs("p", offset=TOO_BIG)
    with pytest.raises(InvalidInput, match="a sort is a list"):
        store.find_runs("p", sort=1)  # type: ignore[arg-type]
    assert store.find_runs("p", limit=2**63 - 1) == []


@pytest.mark.parametrize("sort", ["1", "true", "2.5"])
def test_a_sort_that_is_not_a_list_is_a_422_not_a_500(
    api: tuple[TestClient, dict[str, str], Any], sort: str
) -> None:
    """Fuzz: GET /api/v1/runs?sort=1 (valid JSON, not a list) made the query builder iterate
    an int (TypeError, 500)."""
    http, auth, _run = api
    for path in ("/runs", "/experiments", "/models", "/model-versions", "/datasets"):
        answer = http.get(f"{API}{path}", params={"sort": sort}, headers=auth)
        refused(answer, 422, "a sort is a list of (field, 1 | -1) items")
    assert (
        http.get(f"{API}/runs", params={"sort": '[["name", -1]]'}, headers=auth).status_code == 200
    )


def test_the_mlflow_backend_refuses_a_sort_that_is_not_a_list() -> None:
    """The client's MLflow backend checks sorts with the same rule before it fetches."""
    from keel.store.matching import RUN, check_sort

    with pytest.raises(InvalidInput, match="a sort is a list"):
        check_sort(1, RUN)  # type: ignore[arg-type]
    check_sort([("name", 1)], RUN)


@pytest.mark.parametrize(
    ("path", "error_code"),
    [
        # a newline: no route pattern matches it
        ("/api/2.0/mlflow/logged-models/%0A/params", None),
        # under MLflow 3's prefix: MLflow's own refusal, so its client names the cause
        ("/api/3.0/mlflow/no-such-thing", "ENDPOINT_NOT_FOUND"),
    ],
)
def test_an_unrouted_api_path_is_refused_in_json_not_html(
    api: tuple[TestClient, dict[str, str], Any], path: str, error_code: str | None
) -> None:
    """Fuzz: POST /api/2.0/mlflow/logged-models/%0A/params answered keel's HTML 404 page:
    only /api/v1 paths counted as API paths when the app itself refused a request."""
    http, auth, _run = api
    answer = http.post(path, json={}, headers=auth)
    assert answer.status_code == 404 and answer.headers["content-type"] == "application/json"
    if error_code is None:
        assert answer.json() == {"message": "Not Found"}
    else:
        assert answer.json()["error_code"] == error_code


def test_a_run_id_already_taken_is_a_409_not_a_500(
    api: tuple[TestClient, dict[str, str], Any],
) -> None:
    """Fuzz (fresh-clone CI): POST /api/v1/runs with the run_id of an existing run hit the
    primary key (IntegrityError, 500). The store now says the id is taken."""
    http, auth, run = api
    body = {"experiment_id": run.experiment_id, "kind": "train", "run_id": run.id}
    refused(http.post(f"{API}/runs", json=body, headers=auth), 409, "already exists")
    assert http.get(f"{API}/runs/{run.id}", headers=auth).json()["kind"] != "train"
