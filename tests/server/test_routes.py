"""Every route of the platform server declares who may call it.

The routes are enumerated from the app itself (API, UI and pipelines alike), so a new route
without a role check, or a write that a viewer could make, fails here before it ships.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute, Mount

from keel.server.app import create_app
from keel.server.settings import ServerSettings

API = "/api/v1"
#: routes anyone may call: logging in and out, public static files, the API's description,
#: health checks
OPEN_ROUTES = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    # liveness and readiness: load balancers call them without a token; they tell only
    # whether the process and the metadata store answer
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
#: writes any logged-in user may make to their own account (anonymous callers get 401)
SELF_SERVICE = {("POST", f"{API}/me/tokens"), ("DELETE", f"{API}/me/tokens/{{name:path}}")}
#: MLflow's REST API (keel.server.mlflow) searches with POST; these POSTs only read, so a
#: viewer may call them as MLflow's own server lets a reader
MLFLOW = "/api/2.0/mlflow"
_MLFLOW_SEARCHES = (
    "experiments/search",
    "experiments/search-datasets",
    "runs/search",
    "logged-models/search",
    "registered-models/get-latest-versions",
)
#: MLflow's searches are POSTs that only read, also under /ajax-api/2.0 (MLflow's UI paths)
READING_POSTS = {
    ("POST", f"{prefix}/{path}")
    for prefix in (MLFLOW, MLFLOW.replace("/api/", "/ajax-api/", 1))
    for path in _MLFLOW_SEARCHES
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _roles(route: APIRoute) -> set[str]:
    """The roles required by ``require(...)`` anywhere in the route's dependency tree."""
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        role = getattr(dependant.call, "required_role", None)
        if role is not None:
            found.add(role)
        stack.extend(dependant.dependencies)
    return found


def _api_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route, also inside mounted routers (the MLflow API is
    mounted under /api/2.0 as one group)."""
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, Mount) and isinstance(route.app, APIRouter):
            yield from _api_routes(route.app.routes, prefix + route.path)
        elif isinstance(route, APIRoute):
            yield prefix + context.path, route


def test_every_route_requires_a_role_and_writes_need_an_editor(tmp_path: Path) -> None:
    app = create_app(ServerSettings(store=str(tmp_path / "store")))
    seen: dict[str, int] = {"api": 0, "ui": 0, "mlflow": 0}
    missing, weak = [], []
    for path, route in _api_routes(app.routes):
        for method in route.methods:
            if (method, path) in OPEN_ROUTES:
                continue
            area = (
                "mlflow" if path.startswith(("/api/2.0/", "/api/3.0/", "/ajax-api/2.0/")) else "ui"
            )
            seen["api" if path.startswith(API) else area] += 1
            roles = _roles(route)
            if not roles:
                missing.append(f"{method} {path}")
            elif (
                method in WRITE_METHODS
                and roles <= {"viewer"}
                and (method, path) not in SELF_SERVICE | READING_POSTS
            ):
                weak.append(f"{method} {path}")
    assert seen["api"] > 40 and seen["ui"] > 20 and seen["mlflow"] > 40, (
        f"routers not mounted: {seen}"
    )
    assert not missing, f"routes without a role check: {missing}"
    assert not weak, f"writes a viewer could make: {weak}"
