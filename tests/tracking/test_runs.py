"""Experiments and runs: lifecycle, params, metrics, tags, nesting, errors."""

from __future__ import annotations

import math

import pytest

from keel import Client
from keel.errors import Conflict, InvalidInput, NotFound


def test_experiments_create_get_find_and_tag(client: Client) -> None:
    exp = client.create_exp("vision", tags={"team": "cv"})
    assert exp.name == "vision" and exp.tags == {"team": "cv"}
    with pytest.raises(Conflict, match="vision"):
        client.create_exp("vision")
    assert client.get_or_create_exp("vision").id == exp.id
    client.get_or_create_exp("nlp")
    client.set_tags_on_exp(exp, {"owner": "ana"})
    assert client.get_exp(exp.id).tags == {"team": "cv", "owner": "ana"}
    assert [e.name for e in client.find_exps({"tags.team": "cv"})] == ["vision"]
    assert [e.name for e in client.find_exps(sort=[("name", -1)])] == ["vision", "nlp"]


def test_start_run_finishes_and_records_environment(client: Client) -> None:
    with client.start_run("exp", name="first", tags={"stage": "dev"}) as run:
        assert run.status == "running"
        run.log_params({"lr": 0.1, "layers": [1, 2], "opt": "adam", "flag": True})
    got = client.get_run(run.id)
    assert got.status == "finished" and got.end_time is not None and got.start_time is not None
    assert got.params == {"lr": 0.1, "layers": [1, 2], "opt": "adam", "flag": True}
    assert got.tags == {"stage": "dev"}
    env = got.environment
    assert env["python"] and env["host"] and env["keel_version"]
    assert "sqlalchemy" in env["packages"]
    assert got.author


def test_failed_run_records_the_error(client: Client) -> None:
    with pytest.raises(ZeroDivisionError), client.start_run("exp") as run:
        run.log_metrics({"loss": 1.0})
        1 / 0  # noqa: B018
    got = client.get_run(run.id)
    assert got.status == "failed"
    assert "ZeroDivisionError" in got.failure
    assert got.metrics == {"loss": 1.0}, "buffered points are written even when the run fails"


def test_keyboard_interrupt_marks_run_killed(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), client.start_run("exp") as run:
        raise KeyboardInterrupt
    assert client.get_run(run.id).status == "killed"


def test_create_run_is_scheduled_until_started(client: Client) -> None:
    run = client.create_run("exp")
    assert run.status == "scheduled" and run.start_time is None
    run.start()
    assert run.status == "running" and run.start_time is not None
    run.end()
    assert client.get_run(run.id).status == "finished"


def test_params_are_write_once(client: Client) -> None:
    with client.start_run("exp") as run:
        run.log_params({"lr": 0.1})
        run.log_params({"lr": 0.1})  # the same value again is fine
        with pytest.raises(Conflict) as info:
            run.log_params({"lr": 0.2})
    message = str(info.value)
    assert "'lr'" in message and "0.1" in message and "0.2" in message
    assert client.get_run(run.id).params == {"lr": 0.1}


def test_metrics_history_with_steps_nan_and_inf(client: Client) -> None:
    with client.start_run("exp") as run:
        for step, value in enumerate([0.5, math.nan, math.inf, -math.inf, 0.25]):
            run.log_metrics({"loss": value}, step=step)
    history = client.get_metric_history(run, "loss")
    values = [m.value for m in history]
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert values[0] == 0.5 and math.isnan(values[1])
    assert values[2] == math.inf and values[3] == -math.inf and values[4] == 0.25
    assert client.get_run(run.id).metrics == {"loss": 0.25}


def test_latest_metric_is_by_step_not_by_arrival(client: Client) -> None:
    with client.start_run("exp") as run:
        run.log_metrics({"acc": 0.9}, step=5)
        run.log_metrics({"acc": 0.1}, step=1)
    assert client.get_run(run.id).metrics == {"acc": 0.9}
    assert len(client.get_metric_history(run, "acc")) == 2


def test_metrics_are_buffered_until_flush(client: Client) -> None:
    with client.start_run("exp") as run:
        for i in range(10):
            run.log_metric("x", i, step=i)
        assert client._buffer.pending(run.id) == 10
        assert client.store.get_metric_history(run.id, "x") == []
        client.flush()
        assert len(client.store.get_metric_history(run.id, "x")) == 10


def test_tags_are_mutable(client: Client) -> None:
    with client.start_run("exp", tags={"a": "1"}) as run:
        run.set_tags({"a": "2", "b": 3})
    assert client.get_run(run.id).tags == {"a": "2", "b": 3}


def test_nested_runs(client: Client) -> None:
    with client.start_run("exp", name="parent") as parent:
        with parent.start_child(name="child-1") as c1:
            c1.log_metrics({"m": 1})
        with parent.start_child(name="child-2"):
            pass
    assert [c.name for c in parent.children] == ["child-1", "child-2"]
    assert client.get_run(c1.id).parent_id == parent.id
    assert c1.parent.id == parent.id


def test_unknown_and_invalid_ids_and_keys(client: Client) -> None:
    missing = "0" * 32
    with pytest.raises(NotFound, match=missing):
        client.get_run(missing)
    with pytest.raises(InvalidInput, match="32 lowercase hex"):
        client.get_run("nope")
    with pytest.raises(NotFound, match=missing):
        client.get_exp(missing)
    with client.start_run("exp") as run:
        with pytest.raises(InvalidInput, match="letters, digits"):
            run.log_params({"bad key!": 1})
        with pytest.raises(InvalidInput, match="letters, digits"):
            run.log_metrics({"../x": 1.0})
        with pytest.raises(InvalidInput, match="must be a number"):
            run.log_metrics({"x": "high"})
    with pytest.raises(InvalidInput, match="experiment name"):
        client.create_exp("../etc")


def test_deleted_runs_are_hidden_and_restorable(client: Client) -> None:
    with client.start_run("exp") as run:
        pass
    client.delete_run(run)
    assert client.find_runs() == []
    assert [r.id for r in client.find_runs(include_deleted=True)] == [run.id]
    client.restore_run(run)
    assert [r.id for r in client.find_runs()] == [run.id]


def test_background_flush_writes_on_an_interval(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    client = Client(
        store=store_url, artifacts=str(tmp_path / "a"), project="test", flush_interval=0.1
    )
    run = client.start_run("exp")
    run.log_metrics({"x": 1.0})
    deadline = time.monotonic() + 10
    while client.store.get_metric_history(run.id, "x") == [] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(client.store.get_metric_history(run.id, "x")) == 1
    client.close()
