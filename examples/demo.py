"""keel's demo: track a small grid search, register the best model, train and register the
iris example, and query them back.

Run with ``make demo`` (then ``keel server`` serves the store). It fills an embedded store in
``.keel`` at the repository root (delete the folder to start over). Run again, it finds what
it made and makes nothing twice. The grid search needs only numpy; the iris example needs
scikit-learn (keel's ``sklearn`` extra, which ``make demo`` installs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import keel

HERE = Path(__file__).parent
DATA = HERE / "demo" / "data.csv"
STORE = HERE.parent / ".keel"
IRIS_CONFIG = HERE / "iris" / "keel.yml"


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def train(
    x: np.ndarray, y: np.ndarray, lr: float, epochs: int, run: keel.tracking.handles.RunApi
) -> np.ndarray:
    """Linear regression by gradient descent, logging the loss at every epoch."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    for epoch in range(epochs):
        error = xb @ w - y
        w -= lr * 2 * xb.T @ error / len(y)
        run.log_metrics({"mse": float(np.mean(error**2))}, step=epoch)
    return w


def grid_search(client: keel.Client) -> None:
    """Three learning rates as child runs of one grid search; the best registered as
    ``linear`` version 1.0.0, alias production."""
    done = client.find_runs(
        {"name": "grid-search", "status": "finished", "exp.name": "linear-regression"}, limit=1
    )
    if done:
        say(f"the grid search is already in the store (run {done[0].id}): not run again")
        return
    say(
        "tracking a grid search of 3 learning rates (project 'demo', experiment "
        "'linear-regression')"
    )
    table = np.loadtxt(DATA, delimiter=",", skiprows=1)
    x, y = table[:, :2], table[:, 2]
    split = int(len(y) * 0.8)

    best = None
    with client.start_run("linear-regression", name="grid-search", kind="train") as parent:
        dataset = parent.log_dataset("demo-data", DATA, description="200 noisy points")
        parent.use_dataset(dataset)
        for lr in (0.001, 0.005, 0.01):
            with parent.start_child(name=f"lr={lr}", kind="train") as run:
                run.log_params({"lr": lr, "epochs": 200})
                w = train(x[:split], y[:split], lr, 200, run)
                test_mse = float(
                    np.mean(
                        (np.hstack([x[split:], np.ones((len(y) - split, 1))]) @ w - y[split:]) ** 2
                    )
                )
                run.log_metrics({"test_mse": test_mse})
                run.log_artifact(
                    lambda p, w=w: p.write_text(json.dumps(w.tolist())), "model/weights.json"
                )
                if best is None or test_mse < best[0]:
                    best = (test_mse, run.id)

    assert best is not None
    best_run = client.get_run(best[1])
    weights = client.get_run_artifact(best_run, "model")
    version = client.log_model_version("linear", best_run, weights, label="1.0.0")
    version.set_alias("production")
    say(
        f"best run: {best_run.name} (test mse {best[0]:.3f}); registered linear "
        f"v{version.version} as production"
    )


def iris(store: Path) -> None:
    """The iris example (examples/iris) trained and registered once, in project 'examples'."""
    from keel.lifecycle.training import train as train_model

    client = keel.Client(store=str(store), project="examples")
    try:
        found = client.find_models({"name": "iris"}, limit=1)
        if found and found[0].latest_version:
            say(f"iris version {found[0].latest_version} is already registered: not trained again")
            return
        say("training the iris example (examples/iris, project 'examples') and registering it")
        result = train_model(IRIS_CONFIG, client=client)
        metrics = ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(result.metrics.items()) if isinstance(v, float)
        )
        say(f"registered iris version {result.version.version} ({metrics})")
    finally:
        client.close()


def traffic(store: Path) -> None:
    """Serve iris for a moment and send it calls like its training data, then calls with
    longer petals, so `keel monitor drift iris@1` and the UI's drift page have something to
    show. The server records and profiles them as a real deployment would."""
    import socket
    import time
    import urllib.error
    import urllib.request

    from keel.monitoring.storage import window_files

    client = keel.Client(store=str(store), project="examples")
    try:
        version = client.get_model_version("iris@latest")
        if window_files(client, version):
            say("iris already has live traffic profiled: not sent again")
            return
    finally:
        client.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    say(
        f"serving iris on 127.0.0.1:{port} for a moment: 200 calls like its training data, "
        "then 200 with petals 2.5 cm longer and 1 cm wider"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "--store", str(store), "-c", str(IRIS_CONFIG),
         "serve", f"iris@{version.version}", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        rows = np.loadtxt(HERE / "iris" / "data" / "iris_train.csv", delimiter=",", skiprows=1,
                          usecols=(0, 1, 2, 3))  # fmt: skip
        rng = np.random.default_rng(0)
        names = ("sepal_length", "sepal_width", "petal_length", "petal_width")
        for shift in (np.zeros(4), np.array([0, 0, 2.5, 1.0])):
            for row in rows[rng.integers(0, len(rows), 200)]:
                values = row + rng.normal(0, 0.05, 4) + shift
                body = json.dumps(dict(zip(names, np.round(values, 2).tolist(), strict=True)))
                request = urllib.request.Request(
                    f"{base}/iris/v1/species",
                    data=body.encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10):
                    pass
    finally:
        server.terminate()  # the server stores its records and their profiles on the way out
        server.wait(60)
    say("see it: keel monitor drift iris@1 --since 1d (from examples/iris), or the UI's models")


def main() -> None:
    say(f"store: {STORE}")
    client = keel.Client(store=str(STORE), project="demo")
    try:
        grid_search(client)
    finally:
        client.close()
    iris(STORE)
    traffic(STORE)
    say("what is in the store now (the same commands work from the repository root):")
    keel_cli = [sys.executable, "-m", "keel.cli", "--store", str(STORE), "--project", "demo"]
    subprocess.run(
        [*keel_cli, "runs", "list", "--sort", "metrics.test_mse", "--limit", "5"], check=True
    )
    subprocess.run([*keel_cli, "models", "show", "linear"], check=True)


if __name__ == "__main__":
    main()
