"""MLflow's logged models and datasets over the wire, and what keel keeps of them.

MLflow's own client (and bare HTTP for the UI's routes) against a real ``keel server``: a
model's metrics keep their step, time, run and dataset; a model may name a source run the
server does not have; tag deletion, ``log_outputs`` and searches by dataset answer as
MLflow's server does; ``log_inputs`` makes keel datasets linked to the run as its inputs,
read back by ``get_run`` and by the UI's dataset search, and seen from keel's side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow==3.17.2 is in the dev extra")
requests = pytest.importorskip("requests")

from mlflow.entities import (  # noqa: E402
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
)
from mlflow.exceptions import MlflowException  # noqa: E402

from mlflow_wire import QUIET, Wire, serving  # noqa: E402

pytestmark = QUIET
CONTEXT = "mlflow.data.context"


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    with serving(tmp_path_factory.mktemp("mlflow-models")) as wire:
        yield wire


def _dataset(name: str, digest: str, **more: str) -> Dataset:
    return Dataset(name=name, digest=digest, source_type="local", source="s", **more)


# --- logged models -----------------------------------------------------------------------------


def test_a_models_metrics_keep_step_time_run_and_dataset(wire: Wire) -> None:
    client = wire.client
    exp = client.create_experiment("models-metrics")
    run = client.create_run(exp)
    model = client.create_logged_model(exp, source_run_id=run.info.run_id)
    other = client.create_run(exp)
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=1000, step=1, model_id=model.model_id)
    client.log_metric(run_id, "loss", 0.25, timestamp=2000, step=2, model_id=model.model_id)
    client.log_metric(
        other.info.run_id,
        "acc",
        0.9,
        timestamp=3000,
        step=7,
        dataset_name="eval",
        dataset_digest="d1",
        model_id=model.model_id,
    )
    loaded = client.get_logged_model(model.model_id)
    expected = [
        Metric("loss", 0.5, 1000, 1, model_id=model.model_id, run_id=run_id),
        Metric("loss", 0.25, 2000, 2, model_id=model.model_id, run_id=run_id),
        Metric(
            "acc",
            0.9,
            3000,
            7,
            model_id=model.model_id,
            dataset_name="eval",
            dataset_digest="d1",
            run_id=other.info.run_id,
        ),
    ]
    assert sorted(loaded.metrics, key=lambda m: (m.key, m.step)) == sorted(
        expected, key=lambda m: (m.key, m.step)
    )
    # keel's side: the points are the model run's history; the bookkeeping is hidden
    holder = wire.keel().get_run(model.model_id[2:])
    assert [(m.step, m.value) for m in holder.metric_history("loss")] == [(1, 0.5), (2, 0.25)]
    assert not any(key.startswith("mlflow.keel.") for key in loaded.tags)


def test_a_model_may_name_a_source_run_the_server_does_not_have(wire: Wire) -> None:
    exp = wire.client.create_experiment("models-source")
    model = wire.client.create_logged_model(exp, source_run_id="123")
    assert wire.client.get_logged_model(model.model_id).source_run_id == "123"


def test_deleting_a_models_missing_tag_is_refused(wire: Wire) -> None:
    client = wire.client
    exp = client.create_experiment("models-tags")
    model = client.create_logged_model(exp, tags={"a": "1", "b": "2"})
    client.delete_logged_model_tag(model.model_id, "a")
    assert client.get_logged_model(model.model_id).tags == {"b": "2"}
    with pytest.raises(MlflowException, match="No tag with key 'a'") as gone:
        client.delete_logged_model_tag(model.model_id, "a")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_by_dataset_and_by_a_metric_on_a_dataset(wire: Wire) -> None:
    client = wire.client
    exp = client.create_experiment("models-search")
    run = client.create_run(exp).info.run_id
    first, second, third = (client.create_logged_model(exp, name=n) for n in "abc")
    for model, value in ((first, 0.2), (second, 0.8)):
        client.log_metric(
            run, "acc", value, dataset_name="ds", dataset_digest="1", model_id=model.model_id
        )
    client.log_metric(
        run, "acc", 0.99, dataset_name="other", dataset_digest="9", model_id=third.model_id
    )

    def names(**kwargs: Any) -> list[str]:
        return [m.name for m in client.search_logged_models(experiment_ids=[exp], **kwargs)]

    assert names(datasets=[{"dataset_name": "ds", "dataset_digest": "1"}]) == ["b", "a"]
    assert names(datasets=[{"dataset_name": "ds", "dataset_digest": "2"}]) == []
    assert names(datasets=[{"dataset_name": "other"}]) == ["c"]
    by_acc = [{"field_name": "metrics.acc", "ascending": True, "dataset_name": "ds"}]
    assert names(order_by=by_acc) == ["a", "b", "c"]  # no point on ds: last
    paged = client.search_logged_models(experiment_ids=[exp], order_by=by_acc, max_results=2)
    assert [m.name for m in paged] == ["a", "b"] and paged.token
    newest = [{"field_name": "creation_timestamp", "ascending": False}]
    assert names(order_by=newest) == ["c", "b", "a"]
    refused = wire.post(
        "/api/2.0/mlflow/logged-models/search",
        {"experiment_ids": [exp], "datasets": [{"dataset_digest": "1"}]},
    )
    assert refused.status_code == 400
    assert "`dataset_name` in the `datasets` clause must be specified" in refused.text


def test_log_outputs_are_a_runs_model_outputs_with_their_steps(wire: Wire) -> None:
    client = wire.client
    exp = client.create_experiment("models-outputs")
    run = client.create_run(exp)
    model = client.create_logged_model(exp)
    client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, 3)])
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert outputs == [LoggedModelOutput(model.model_id, 3)]
    client.delete_run(run.info.run_id)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, 4)])


# --- datasets and inputs -------------------------------------------------------------------------


def test_log_inputs_checks_its_fields_before_any_work(wire: Wire) -> None:
    """MLflow's LogInputs schema: run_id a required string, datasets and models lists."""
    run = wire.client.create_run(wire.client.create_experiment("inputs-types")).info.run_id
    for body, field in (
        ({"datasets": []}, "run_id"),
        ({"run_id": 31, "datasets": []}, "run_id"),
        ({"run_id": run, "datasets": "foo"}, "datasets"),
        ({"run_id": run, "models": {"model_id": "m-1"}}, "models"),
    ):
        answer = wire.post("/api/2.0/mlflow/runs/log-inputs", body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert f"'{field}'" in answer.json()["message"]
    assert wire.keel().get_run(run).tags.get("mlflow.keel.datasetInputs") is None


def test_log_inputs_are_keel_datasets_used_by_the_run(wire: Wire) -> None:
    client = wire.client
    exp = client.create_experiment("inputs")
    run = client.create_run(exp).info.run_id
    train = _dataset("train set", "abc123", schema='{"cols": []}', profile='{"rows": 2}')
    model = client.create_logged_model(exp)
    client.log_inputs(
        run,
        datasets=[
            DatasetInput(train, [InputTag("foo", "bar"), InputTag(CONTEXT, "training")]),
            DatasetInput(_dataset("s3://bucket/eval?.csv", "e1"), [InputTag(CONTEXT, "eval")]),
        ],
        models=[LoggedModelInput(model.model_id)],
    )
    client.log_inputs(run, datasets=[DatasetInput(train, [InputTag("ignored", "x")])])
    inputs = client.get_run(run).inputs
    got = [
        (i.dataset.name, i.dataset.digest, [(t.key, t.value) for t in i.tags])
        for i in inputs.dataset_inputs
    ]
    assert got == [
        ("train set", "abc123", [("foo", "bar"), (CONTEXT, "training")]),
        ("s3://bucket/eval?.csv", "e1", [(CONTEXT, "eval")]),
    ]
    first = inputs.dataset_inputs[0].dataset
    assert (first.source_type, first.source, first.schema, first.profile) == (
        "local",
        "s",
        '{"cols": []}',
        '{"rows": 2}',
    )
    assert [m.model_id for m in inputs.model_inputs] == [model.model_id]
    assert not any(key.startswith("mlflow.keel.") for key in client.get_run(run).data.tags)

    # keel's side: a dataset version with no files, linked to the run as an input
    kc = wire.keel()
    kept = kc.get_dataset("train set")
    assert kept.content_hash == "mlflow:abc123"
    assert kept.tags["mlflow.source_type"] == "local"
    assert kc.dataset_lineage(kept) == [(run, "input")]
    renamed = kc.find_datasets({"tags.mlflow.name": "s3://bucket/eval?.csv"})
    assert [d.name for d in renamed] == ["s3_/bucket/eval_.csv"]

    # the same name and digest in another run is the same keel dataset version
    again = client.create_run(exp).info.run_id
    client.log_inputs(again, datasets=[DatasetInput(train, [])])
    assert sorted(kc.dataset_lineage(kept)) == sorted([(run, "input"), (again, "input")])
    assert kc.get_dataset("train set").version == kept.version


def test_log_inputs_needs_a_run_id_and_an_active_run(wire: Wire) -> None:
    missing = wire.post("/api/2.0/mlflow/runs/log-inputs", {"datasets": []})
    assert missing.status_code == 400
    assert "Missing value for required parameter 'run_id'" in missing.json()["message"]
    exp = wire.client.create_experiment("inputs-checks")
    run = wire.client.create_run(exp).info.run_id
    too_long = {"name": "n", "digest": "d" * 37, "source_type": "t", "source": "s"}
    refused = wire.post(
        "/api/2.0/mlflow/runs/log-inputs",
        {"run_id": run, "datasets": [{"dataset": too_long}]},
    )
    assert refused.status_code == 400
    assert "'digest' exceeds the maximum length of 36 characters" in refused.text
    wire.client.delete_run(run)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        wire.client.log_inputs(run, datasets=[DatasetInput(_dataset("n", "d"), [])])


def test_the_uis_dataset_search(wire: Wire) -> None:
    path = "/ajax-api/2.0/mlflow/experiments/search-datasets"
    for body, message in (
        ({}, "must specify at least one experiment_id"),
        ({"experiment_ids": [str(i) for i in range(21)]}, "cannot specify more than 20"),
    ):
        refused = wire.post(path, body)
        assert (refused.status_code, refused.json()["error_code"]) == (
            400,
            "INVALID_PARAMETER_VALUE",
        )
        assert message in refused.json()["message"]
    exp = wire.client.create_experiment("inputs-search")
    run = wire.client.create_run(exp).info.run_id
    wire.client.log_inputs(
        run,
        datasets=[
            DatasetInput(_dataset("one", "1"), [InputTag(CONTEXT, "training")]),
            DatasetInput(_dataset("two", "2"), []),
        ],
    )
    found = wire.post(path, {"experiment_ids": [exp]})
    assert found.status_code == 200
    assert found.json()["dataset_summaries"] == [
        {"experiment_id": exp, "name": "one", "digest": "1", "context": "training"},
        {"experiment_id": exp, "name": "two", "digest": "2"},
    ]
