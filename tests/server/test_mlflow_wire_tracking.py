"""MLflow's tracking wire as its server speaks it: request checks, names, paths, histories.

MLflow's own client (and bare HTTP for what its client never sends) against a real
``keel server``: requests whose fields have the wrong JSON type are refused before any work
with MLflow's status, code and text; experiment names MLflow accepts are kept; the routes
answer under ``/ajax-api/2.0`` too, unknown paths with ``ENDPOINT_NOT_FOUND``; a fresh
store lists its Default experiment; metric histories page and sample as MLflow's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow==3.17.2 is in the dev extra")
requests = pytest.importorskip("requests")

from mlflow.exceptions import MlflowException  # noqa: E402

from mlflow_wire import QUIET, Wire, serving  # noqa: E402

pytestmark = QUIET
API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    with serving(tmp_path_factory.mktemp("mlflow-wire-tracking")) as wire:
        yield wire


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Wire]:
    """A server on a store nothing has touched yet."""
    with serving(tmp_path) as wire:
        yield wire


def _refused(response: requests.Response, text: str, status: int = 400) -> None:
    body = response.json()
    assert response.status_code == status, body
    code = "INVALID_PARAMETER_VALUE" if status == 400 else "ENDPOINT_NOT_FOUND"
    assert body["error_code"] == code
    assert text in body["message"], body["message"]


def _run(wire: Wire, experiment: str) -> str:
    exp_id = wire.client.create_experiment(experiment)
    return str(wire.client.create_run(exp_id).info.run_id)


# --- request types -------------------------------------------------------------------------


def test_fields_of_the_wrong_type_are_refused_before_any_work(wire: Wire) -> None:
    create = f"{API}/experiments/create"
    _refused(wire.post(create, {"name": 123}), "Invalid value 123 for parameter 'name' supplied")
    _refused(wire.post(create, {}), "Missing value for required parameter 'name'.")
    _refused(
        wire.post(create, {"name": "typed", "artifact_location": 9.0}),
        "Invalid value 9.0 for parameter 'artifact_location'",
    )
    # text is quoted as JSON, as MLflow's messages show it
    _refused(
        wire.post(create, {"name": "typed", "tags": "5"}),
        """Invalid value "5" for parameter 'tags'""",
    )
    assert wire.keel().store.find_experiments(wire.keel().project, {"name": "typed"}) == []

    run_id = _run(wire, "typed-runs")
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 5, "step": 2}
    log_metric = f"{API}/runs/log-metric"
    _refused(
        wire.post(log_metric, {**metric, "run_id": 31}),
        "Invalid value 31 for parameter 'run_id' supplied",
    )
    _refused(
        wire.post(log_metric, {**metric, "step": "foo"}),
        """Invalid value "foo" for parameter 'step' supplied""",
    )
    _refused(
        wire.post(log_metric, {**metric, "timestamp": "foo"}),
        """Invalid value "foo" for parameter 'timestamp' supplied""",
    )
    _refused(
        wire.post(log_metric, {**metric, "key": None}),
        "Missing value for required parameter 'key'",
    )
    _refused(
        wire.post(f"{API}/runs/log-parameter", {"run_id": run_id, "key": 31, "value": "v"}),
        "Invalid value 31 for parameter 'key' supplied",
    )
    _refused(
        wire.post(f"{API}/runs/set-tag", {"run_id": run_id, "key": "t", "value": 41}),
        "Invalid value 41 for parameter 'value' supplied",
    )
    # what fits the proto passes: an int64 as text, the older run_uuid for run_id
    assert wire.post(log_metric, {**metric, "timestamp": "7"}).status_code == 200
    set_tag = wire.post(f"{API}/runs/set-tag", {"run_uuid": run_id, "key": "k", "value": "v"})
    assert set_tag.status_code == 200
    run = wire.keel().get_run(run_id)
    assert run.tags["k"] == "v"
    assert [(m.step, m.timestamp) for m in wire.keel().store.get_metric_history(run_id, "m")] == [
        (2, 7)
    ]
    assert "t" not in run.tags and not run.params  # the refused calls wrote nothing


def test_log_batch_checks_its_lists_and_their_items(wire: Wire) -> None:
    run_id = _run(wire, "typed-batch")
    batch = f"{API}/runs/log-batch"
    for name in ("metrics", "params", "tags"):
        _refused(
            wire.post(batch, {"run_id": run_id, name: "foo"}),
            f"""Invalid value "foo" for parameter '{name}' supplied""",
        )
    _refused(
        wire.post(batch, {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]}),
        "Missing value for required parameter 'metrics[0].timestamp'",
    )
    point = {"key": "mae", "value": 2.5, "timestamp": 123456789}
    assert wire.post(batch, {"run_id": run_id, "metrics": [point]}).status_code == 200
    (kept,) = wire.keel().store.get_metric_history(run_id, "mae")
    assert (kept.value, kept.step, kept.timestamp) == (2.5, 0, 123456789)


# --- names and paths -------------------------------------------------------------------------


def test_experiment_names_mlflow_accepts_are_kept(wire: Wire) -> None:
    name = "Run A Lot (parent_run_id=my-parent-id), 50% & more: é"
    exp_id = wire.client.create_experiment(name)
    assert wire.client.get_experiment_by_name(name).experiment_id == exp_id
    assert wire.keel().get_exp(exp_id).name == name
    wire.client.rename_experiment(exp_id, "renamed [v2]")
    assert wire.keel().get_exp(exp_id).name == "renamed [v2]"
    # what would still confuse keel is refused
    for bad in (" padded", "a~b", "../etc", "/rooted", "line\nbreak", "x" * 257):
        with pytest.raises(MlflowException) as refused:
            wire.client.create_experiment(bad)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "invalid experiment name" in refused.value.message


def test_routes_answer_under_ajax_api_and_unknown_paths_say_so(wire: Wire) -> None:
    exp_id = wire.client.create_experiment("ajax")
    got = wire.query("/ajax-api/2.0/mlflow/experiments/get", experiment_id=exp_id)
    assert got.status_code == 200
    assert got.json()["experiment"]["name"] == "ajax"
    for path in ("/api/2.0/mlflow/nope", "/ajax-api/2.0/mlflow/nope", "/api/3.0/mlflow/nope"):
        _refused(wire.query(path), f"keel does not implement GET {path}", status=404)
        _refused(wire.post(path, {}), f"keel does not implement POST {path}", status=404)
    # the /api/3.0 route keel has still answers
    assert wire.query("/api/3.0/mlflow/server-info").status_code == 200


def test_a_fresh_store_lists_its_default_experiment(fresh: Wire) -> None:
    (default,) = fresh.client.search_experiments()
    assert (default.experiment_id, default.name) == ("0", "Default")
    assert [e.name for e in fresh.keel().find_exps()] == ["Default"]


def test_a_deleted_run_refuses_tag_changes(wire: Wire) -> None:
    run_id = _run(wire, "deleted-tags")
    wire.client.set_tag(run_id, "t", "v")
    with pytest.raises(MlflowException, match=r"Run with id=fake_run_id not found"):
        wire.client.delete_tag("fake_run_id", "t")
    with pytest.raises(MlflowException, match="No tag with name: other"):
        wire.client.delete_tag(run_id, "other")
    wire.client.delete_run(run_id)
    active = f"The run {run_id} must be in the 'active' state. Current state is deleted."
    with pytest.raises(MlflowException, match=active):
        wire.client.delete_tag(run_id, "t")
    with pytest.raises(MlflowException, match=active):
        wire.client.set_tag(run_id, "t", "w")
    assert wire.keel().get_run(run_id).tags["t"] == "v"


def test_tags_keel_keeps_its_records_in_are_refused(wire: Wire, tmp_path: Path) -> None:
    """MLflow fields keel has no column for live in reserved tags; a client that could set or
    delete them would change what keel reads back (an experiment's artifact location, a
    run's inputs, a version's source)."""
    exp_id = wire.client.create_experiment("reserved-tags", artifact_location=str(tmp_path))
    run_id = _run(wire, "reserved-run")
    reserved = "is reserved"
    for call in (
        lambda: wire.client.set_experiment_tag(exp_id, "mlflow.artifactLocation", "/etc"),
        lambda: wire.client.delete_experiment_tag(exp_id, "mlflow.artifactLocation"),
        lambda: wire.client.set_tag(run_id, "mlflow.keel.datasetInputs", "[]"),
        lambda: wire.client.delete_tag(run_id, "mlflow.keel.modelInputs"),
        lambda: wire.client.create_run(exp_id, tags={"mlflow.keel.modelOutputs": "[]"}),
    ):
        with pytest.raises(MlflowException, match=reserved):
            call()
    answer = wire.post(
        "/api/2.0/mlflow/runs/log-batch",
        {"run_id": run_id, "tags": [{"key": "keel.mlflow.source", "value": "x"}]},
    )
    _refused(answer, reserved)
    assert wire.client.get_experiment(exp_id).artifact_location == str(tmp_path)
    assert "mlflow.keel.datasetInputs" not in wire.keel().get_run(run_id).tags


def test_experiment_cli_creates_deletes_restores_and_renames(wire: Wire) -> None:
    from click.testing import CliRunner
    from mlflow.experiments import commands

    env = {"MLFLOW_TRACKING_URI": wire.url}
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", wire.url)
        created = runner.invoke(commands, ["create", "-n", "cli-exp"], env=env)
        assert created.exit_code == 0, created.output
        exp_id = wire.client.get_experiment_by_name("cli-exp").experiment_id
        for args, stage in (
            (["delete", "-x", exp_id], "deleted"),
            (["restore", "-x", exp_id], "active"),
        ):
            done = runner.invoke(commands, args, env=env)
            assert done.exit_code == 0, done.output
            assert wire.keel().get_exp(exp_id).lifecycle == stage
        renamed = runner.invoke(
            commands, ["rename", "--experiment-id", exp_id, "--new-name", "cli-exp-2"], env=env
        )
        assert renamed.exit_code == 0, renamed.output
    assert wire.keel().get_exp(exp_id).name == "cli-exp-2"


# --- metric histories ------------------------------------------------------------------------


def _log(wire: Wire, run_id: str, points: list[dict[str, Any]]) -> None:
    for point in points:
        wire.client.log_metric(run_id, **point)


def test_metric_history_pages(wire: Wire) -> None:
    run_id = _run(wire, "history-pages")
    _log(
        wire,
        run_id,
        [{"key": "m", "value": float(i), "step": i, "timestamp": 1000 + i} for i in range(10)],
    )
    path = "/ajax-api/2.0/mlflow/metrics/get-history"
    seen, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "m", "max_results": 4}
        answer = wire.query(path, **params, **({"page_token": token} if token else {})).json()
        seen += [(m["step"], m["timestamp"]) for m in answer["metrics"]]
        pages += 1
        token = answer.get("next_page_token")
        if token is None:
            break
    assert pages == 3
    assert seen == [(i, 1000 + i) for i in range(10)]
    _refused(wire.query(path, run_id=run_id, metric_key="m", page_token="bad"), "page token")
    _refused(wire.query(path, run_id=run_id, metric_key="m", max_results=0), "positive integer")


def test_metric_history_bulk_orders_by_run_then_time(wire: Wire) -> None:
    exp_id = wire.client.create_experiment("history-bulk")
    first, second = (wire.client.create_run(exp_id).info.run_id for _ in range(2))
    points = [
        {"key": "a", "timestamp": 2, "step": 3, "value": 12.0},
        {"key": "a", "timestamp": 1, "step": 3, "value": 11.0},
        {"key": "a", "timestamp": 1, "step": 2, "value": 10.0},
    ]
    _log(wire, first, points)
    _log(wire, second, points[:1])
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    answer = wire.query(path, run_id=[second, first], metric_key="a").json()["metrics"]
    by_run = sorted([first, second])
    expected = {
        first: [(1, 2, 10.0), (1, 3, 11.0), (2, 3, 12.0)],
        second: [(2, 3, 12.0)],
    }
    assert [(m["run_id"], m["timestamp"], m["step"], m["value"]) for m in answer] == [
        (run, *p) for run in by_run for p in expected[run]
    ]
    limited = wire.query(path, run_id=[first], metric_key="a", max_results=2).json()["metrics"]
    assert [m["value"] for m in limited] == [10.0, 11.0]
    _refused(wire.query(path, metric_key="a"), "must specify at least one run_id")
    _refused(
        wire.query(path, run_id=[f"id_{i}" for i in range(101)], metric_key="a"),
        "cannot specify more than 100 run_ids",
    )
    _refused(wire.query(path, run_id=[first]), "must specify a metric_key")


def test_metric_history_bulk_interval_samples_each_run(wire: Wire) -> None:
    run_id = _run(wire, "history-interval")
    _log(
        wire,
        run_id,
        [{"key": "a", "timestamp": 1, "step": i, "value": float(i)} for i in range(10)],
    )
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"

    def steps(**params: Any) -> list[int]:
        answer = wire.query(path, run_ids=[run_id], metric_key="a", **params)
        assert answer.status_code == 200, answer.text
        return [m["step"] for m in answer.json()["metrics"]]

    # MLflow's SQL sampling: the first point of each of 5 buckets, the last point kept
    assert steps(max_results=5) == [0, 2, 4, 6, 9]
    assert steps(max_results=20) == list(range(10))
    assert steps(start_step=2, end_step=4, max_results=5) == [2, 3, 4]
    _refused(wire.query(path, metric_key="a"), "Missing value for required parameter 'run_ids'.")
    _refused(
        wire.query(path, run_ids=[f"id_{i}" for i in range(101)], metric_key="a"),
        "must specify at most 100 run_ids",
    )
    _refused(
        wire.query(path, run_ids=[run_id], metric_key="a", max_results=0),
        "max_results must be between 1 and 2500",
    )
    _refused(wire.query(path, run_ids=[run_id], metric_key=""), "'metric_key'")
    _refused(
        wire.query(path, run_ids=[run_id], metric_key="a", start_step=1, end_step=0),
        "end_step must be greater than start_step",
    )
    _refused(
        wire.query(path, run_ids=[run_id], metric_key="a", start_step=1),
        "both must be specified",
    )
