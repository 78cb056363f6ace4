"""Property-based fuzzing of the platform API (``/api/v1``) from its own OpenAPI document.

schemathesis generates requests for every operation of ``keel server``'s ``/openapi.json``
(the schema's examples, boundary and type-confusion cases, then Hypothesis fuzzing with
valid and invalid data), sends them in process to the ASGI app over a seeded SQLite store as
an admin with a bearer token, and holds every answer to the property of
:func:`fuzz.fuzzing.call_and_check`: no 5xx, every refusal a 4xx JSON ``{"message": …}``, no
call over ``KEEL_FUZZ_CALL_TIMEOUT_S`` (30 s). Path, query and body fields named like ids
sometimes take the ids of the seeded experiment, runs, model, version and dataset.

The MLflow-compatible API (``/api/2.0/…``) is not in that document: it is mounted as its own
router and reads MLflow's JSON by hand. It is fuzzed here with plain Hypothesis instead, one
test per route: bodies (query strings for GETs) whose fields are the parameter names the
routes read (harvested from the source of :mod:`keel.server.mlflow`), with values of every
JSON type, huge integers, NaN, nested objects, or the seeded records' ids and names; and,
for a route that checks an MLflow request message, bodies of that message's fields, each of
its type, so that the cases get past the check to the store. The
same property holds there, in MLflow's error shape (``{"error_code", "message"}``).

CI runs ``KEEL_FUZZ_EXAMPLES`` (default 15) fuzzing examples per operation, derandomized.
A longer run::

    KEEL_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/fuzz/test_platform_api.py
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzing import (
    SETTINGS,
    Tally,
    bounded_call,
    call_and_check,
    check_answer,
    schemathesis_config,
    substitute_known,
)

ADMIN = "fuzz-admin-q7"  # a name no generated string will hit: the fuzzer may delete users
TOKEN_NAME = "fuzz-token-q7"
PROJECT = "fuzz"


@dataclass
class Platform:
    """The app under fuzz, its admin's token, the seeded ids and what the fuzz reached."""

    app: Any
    token: str
    known: dict[str, list[Any]]
    mlflow_known: dict[str, list[Any]]
    tally: Tally = field(default_factory=Tally)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    from keel.server.app import create_app
    from keel.server.settings import ServerSettings
    from keel_server import _password_hash

    root = tmp_path_factory.mktemp("fuzz-platform")
    with pytest.MonkeyPatch.context() as env:  # module-scoped: the autouse isolation is not on yet
        env.setenv("KEEL_CACHE_DIR", str(root / "cache"))
        for var in ("KEEL_STORE", "KEEL_PROJECT", "KEEL_CONFIG", "KEEL_ARTIFACTS"):
            env.delenv(var, raising=False)
        app = create_app(
            ServerSettings(
                store=str(root / "store"),
                artifacts=str(root / "artifacts"),
                project=PROJECT,
                work_dir=root / "work",
            )
        )
        accounts = app.state.accounts
        accounts.store.add_user(ADMIN, _password_hash(), "admin")
        accounts.store.add_user("fuzz-viewer", _password_hash(), "viewer")
        token = accounts.create_token(ADMIN, TOKEN_NAME)[1]
        accounts.create_token("fuzz-viewer", "viewer-token")
        known = _seed(app.state.client, root)
        mlflow_known = _mlflow_known(known)
        mlflow_known["model_id"] = [_logged_model(app, token, known["experiment_id"][0]), "m-0"]
        yield Platform(app, token, known, mlflow_known)
        app.state.client.close()


def _seed(client: Any, root: Path) -> dict[str, list[Any]]:
    """An experiment, a run with params, metrics and a file, a child run, a dataset, a model
    with a labelled, aliased version and a few invocation records; their ids by the names
    the API gives its parameters."""
    from keel.entities import InvocationRecord

    exp = client.get_or_create_exp("exp")
    data = root / "data.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    dataset = client.log_dataset("ds", data, description="toy data")
    with exp.start_run(name="trained", kind="train") as run:
        run.log_params({"model": "rf", "depth": 4})
        for step in range(3):
            run.log_metrics({"acc": 0.5 + step / 10}, step=step)
        run.use_dataset(dataset)
        weights = root / "weights.bin"
        weights.write_bytes(b"\x00\x01weights")
        stored = run.log_artifact(weights, "model/weights.bin")
        with run.start_child(name="fold") as child:
            child.log_metrics({"acc": 0.7})
        model_file = root / "model.txt"
        model_file.write_text("a model")
        version = run.log_model_version("clf", model_file, path_in_run="clf", label="1.0.0")
    version.set_alias("production")
    client.log_invocations(
        ("clf", 1),
        [
            InvocationRecord(
                request_id=f"ts-2024-01-01T00:00:0{i}--uuid-{i:032d}",
                model="clf",
                version=1,
                timestamp=1_704_067_200_000 + i * 1000,
                latency_ms=1.5,
                status="ok",
                resource="predict",
                input={"x": i},
                result={"y": 2 * i},
            )
            for i in range(3)
        ],
    )
    return {
        "project": [PROJECT],
        "experiment_id": [exp.id],
        "run_id": [run.id, child.id],
        "parent_id": [run.id],
        "owner_kind": ["run", "dataset", "model_version"],
        "owner_id": [run.id, dataset.id, version.id],
        "dataset_id": [dataset.id],
        "model": ["clf"],
        "name": ["clf", "exp", "ds", PROJECT, "fuzz-viewer"],
        "ref": ["1", "latest", "production", "1.0.0"],
        "version": ["1", "latest"],
        "version_id": [version.id],
        "alias": ["production", "staging"],
        "key": ["acc"],
        "sha256": [stored[0].sha256],
        "user": ["fuzz-viewer"],
        # values the document describes in words only (free strings in its schema)
        "kind": ["train", "tracking"],
        "status": ["running", "finished", "failed"],
        "role": ["viewer", "editor", "input", "output"],
    }


def _logged_model(app: Any, token: str, experiment_id: str) -> str:
    """An MLflow 3 logged model (made the way MLflow's client makes one); its id."""
    from fastapi.testclient import TestClient

    with TestClient(app) as http:
        made = http.post(
            "/api/2.0/mlflow/logged-models",
            json={"experiment_id": experiment_id, "name": "lm"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert made.status_code == 200, made.text
    return str(made.json()["model"]["info"]["model_id"])


def _mlflow_known(known: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The seeded records as MLflow's parameters name them, and a few values of each kind
    MLflow's client sends."""
    exp, run = known["experiment_id"][0], known["run_id"][0]
    run_dir = f"{exp}/{run}/artifacts"
    return {
        "experiment_id": [exp, "0"],
        "experiment_ids": [[exp], ["0", exp]],
        "run_id": known["run_id"],
        "run_uuid": known["run_id"],
        "source_run_id": [run],
        "name": ["clf", "exp"],
        "experiment_name": ["exp"],
        "key": ["acc", "model"],
        "metric_key": ["acc"],
        "version": ["1", 1],
        "alias": ["production"],
        "source": [f"runs:/{run}/clf", f"mlflow-artifacts:/{run_dir}/model"],
        "path": [f"{run_dir}/model/weights.bin", run_dir, "model"],
        "artifact_path": [f"{run_dir}/model/weights.bin", run_dir],
        "tag_key": ["a", "mlflow.runName"],
        "filter": ["", "metrics.acc > 0.5", "name = 'clf'", "tags.a = 'b'"],
        "order_by": [["metrics.acc DESC"], ["start_time ASC"]],
        "max_results": [1, 1000, 50001],
        "status": ["RUNNING", "FINISHED"],
        "tags": [[{"key": "a", "value": "b"}]],
        "params": [[{"key": "p", "value": "1"}]],
        "metrics": [[{"key": "acc", "value": 1.0, "timestamp": 0, "step": 0}]],
    }


@pytest.fixture(scope="module")
def platform_schema(platform: Platform) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", platform.app, config=schemathesis_config(platform.auth)
    )
    substitute_known(schema, platform.known)
    return schema


schema = schemathesis.pytest.from_fixture("platform_schema")


@schema.parametrize()
@SETTINGS
def test_platform_api_answers_every_request_without_a_server_error(
    case: schemathesis.Case, platform: Platform
) -> None:
    call_and_check(case, platform.tally)


# --- the MLflow-compatible API: not in the OpenAPI document, fuzzed from its routes -----------


def _mlflow_messages() -> dict[tuple[str, str], dict[str, Any]]:
    """(method, full path) → the fields of the MLflow request message its route checks."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from keel.server.mlflow import PREFIX, router

    found = {}
    for context in iter_route_contexts(router.routes):
        route = context.original_route
        fields = getattr(getattr(route, "endpoint", None), "message_fields", None)
        if isinstance(route, APIRoute) and fields:
            for method in route.methods:
                found[(method, PREFIX + context.path)] = fields
    return found


def _mlflow_routes() -> list[tuple[str, str]]:
    """(method, full path) of every MLflow route but the catch-all."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from keel.server.mlflow import PREFIX, router
    from keel.server.mlflow.artifacts import server_info_router

    found = []
    for routes, prefix in ((router.routes, PREFIX), (server_info_router.routes, "")):
        for context in iter_route_contexts(routes):
            route = context.original_route
            if not isinstance(route, APIRoute) or context.path == "/{path:path}":
                continue  # the catch-all answers ENDPOINT_NOT_FOUND to any other path
            found += [(method, prefix + context.path) for method in sorted(route.methods)]
    return found


def _mlflow_parameter_names() -> list[str]:
    """The names MLflow routes read (``args.text("run_id")``…), and their list items' fields."""
    source = Path(__file__).resolve().parents[2] / "src" / "keel" / "server" / "mlflow"
    names = {
        match.group(1)
        for module in source.glob("*.py")
        for match in re.finditer(r'args\.\w+\(\s*"(\w+)"', module.read_text())
    }
    return sorted(names | {"key", "value", "timestamp", "step", "run_uuid", "dataset"})


MLFLOW_ROUTES = _mlflow_routes()
MLFLOW_NAMES = _mlflow_parameter_names()
MLFLOW_MESSAGES = _mlflow_messages()
#: a value of each field kind that MLflow's type check takes (seeded values come first)
_WELL_TYPED = {
    "string": st.sampled_from(["a", "acc", "clf"]),
    "int": st.integers(min_value=0, max_value=2**40),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "enum": st.sampled_from(["ACTIVE_ONLY", "RUNNING", "FINISHED"]),
    "list": st.just([]),
    "strings": st.lists(st.text(max_size=5), max_size=2),
}

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "0", "1", "-1", "NaN", "Infinity", "attributes.status = 'RUNNING'"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(MLFLOW_NAMES) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _mlflow_args(known: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def value(name: str) -> st.SearchStrategy[Any]:
        real = known.get(name)
        return st.one_of(st.sampled_from(real), _JSON) if real else _JSON

    return st.fixed_dictionaries({}, optional={name: value(name) for name in MLFLOW_NAMES})


def _well_formed_args(
    known: dict[str, list[Any]], fields: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies that pass the route's MLflow message check (every required field, each of its
    type), so the cases also reach the store and not only the check."""

    def value(name: str, kind: str) -> st.SearchStrategy[Any]:
        real = known.get(name)
        typed = _WELL_TYPED[kind]
        return st.one_of(st.sampled_from(real), typed) if real else typed

    required = {n: value(n, f.kind) for n, f in fields.items() if f.required}
    optional = {n: value(n, f.kind) for n, f in fields.items() if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def _query_string(args: dict[str, Any]) -> list[tuple[str, str]]:
    """A GET's arguments as MLflow's client sends them: text, lists as repeated names."""
    pairs = []
    for name, value in args.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            text = item if isinstance(item, str) else json.dumps(item)
            pairs.append((name, text))
    return pairs


@pytest.mark.parametrize(
    ("method", "path"), MLFLOW_ROUTES, ids=[" ".join(r) for r in MLFLOW_ROUTES]
)
@SETTINGS
@given(data=st.data())
def test_mlflow_api_answers_every_request_without_a_server_error(
    platform: Platform, method: str, path: str, data: st.DataObject
) -> None:
    from schemathesis.python.asgi import get_client

    known = platform.mlflow_known
    fields = MLFLOW_MESSAGES.get((method, path))
    strategy = _mlflow_args(known)
    if fields:
        strategy = st.one_of(_well_formed_args(known, fields), strategy)
    args = data.draw(strategy, label="args")

    def fill(m: re.Match[str]) -> str:  # a path parameter: a seeded value or any text
        value = data.draw(st.sampled_from(known[m[1]]) | st.text(min_size=1), label=m[1])
        return quote(value, safe="/" if m[2] else "")

    url = re.sub(r"\{(\w+)(:path)?\}", fill, path)
    where = f"{method} {url}"
    with get_client(platform.app) as http:
        if method == "GET":
            send = lambda limit: http.get(  # noqa: E731
                url, params=_query_string(args), headers=platform.auth, timeout=limit
            )
        else:
            body = data.draw(st.one_of(st.just(args), _JSON), label="body")
            payload = json.dumps(body).encode()
            send = lambda limit: http.request(  # noqa: E731
                method, url, data=payload, headers=platform.auth, timeout=limit
            )
        response = bounded_call(send, where)
    platform.tally.add(f"{method} {path}", response.status_code)
    body = check_answer(response, where)
    # MLflow's clients read the code to pick their exception. A path no route takes at all
    # (a newline in it: Starlette's patterns never match one) is the app's plain 404.
    if body is not None and not (response.status_code == 404 and body["message"] == "Not Found"):
        assert isinstance(body.get("error_code"), str), f"{where}: no error_code in {body!r}"


def test_the_fuzz_reached_the_handlers(platform: Platform) -> None:
    """Runs after the fuzz tests (file order): the token was never refused, and at least half
    of the operations of each API answered a success at least once, so the cases got past
    validation to the store."""
    tally = platform.tally
    if not tally.statuses:
        pytest.skip("the fuzz tests did not run (deselected)")
    print(tally.summary())
    assert not tally.answered(401, 403), tally.summary()
    succeeded = tally.answered(200, 201, 204)
    for api in ("/api/v1/", "/api/2.0/"):
        fuzzed = {label for label in tally.statuses if api in label}
        assert len(fuzzed & succeeded) >= len(fuzzed) / 2, tally.summary()
