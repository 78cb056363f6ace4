"""Several processes writing to one store: nothing lost, nothing raised, versions gapless."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keel import Client

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from keel import Client

    store, artifacts, cache, worker, points, versions = sys.argv[1:7]
    client = Client(store=store, artifacts=artifacts, cache_dir=cache, project="test")
    with client.start_run("load", name=f"worker-{worker}") as run:
        for i in range(int(points)):
            run.log_metrics({"m": float(i)}, step=i)
        Path(cache).mkdir(parents=True, exist_ok=True)
        model = Path(cache) / f"model-{worker}"
        for v in range(int(versions)):
            model.write_text(f"{worker}-{v}")
            client.log_model_version("shared", run, model)
    print("ok")
    """
)


def _run_workers(store_url: str, tmp_path: Path, workers: int, points: int, versions: int) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    Client(store=store_url, project="test").get_or_create_exp("load")  # create the schema once
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), store_url, str(tmp_path / "artifacts"),
             str(tmp_path / f"cache{w}"), str(w), str(points), str(versions)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(workers)
    ]  # fmt: skip
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
        assert "locked" not in err


@pytest.mark.slow
def test_four_processes_log_5000_metrics_each(store_url: str, tmp_path: Path) -> None:
    _run_workers(store_url, tmp_path, workers=4, points=5000, versions=3)
    client = Client(store=store_url, artifacts=str(tmp_path / "artifacts"), project="test")
    runs = client.find_runs({"exp.name": "load"})
    assert len(runs) == 4
    for run in runs:
        assert run.status == "finished"
        history = client.get_metric_history(run, "m")
        assert [m.step for m in history] == list(range(5000))
        assert run.metrics == {"m": 4999.0}
    versions = sorted(v.version for v in client.get_model("shared").find_versions())
    assert versions == list(range(1, 13)), "versions are unique and gapless"


def test_metrics_survive_normal_interpreter_exit(store_url: str, tmp_path: Path) -> None:
    script = tmp_path / "exit.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from keel import Client
            client = Client(store=sys.argv[1], project="test", flush_interval=3600)
            run = client.start_run("exit")
            for i in range(100):
                run.log_metrics({"x": i}, step=i)
            print(run.id)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script), store_url], capture_output=True, text=True, check=True
    )
    run_id = out.stdout.strip()
    client = Client(store=store_url, project="test")
    assert len(client.get_metric_history(run_id, "x")) == 100
