"""keel's demo: track a small grid search, register the best model, and query it back.

Run with ``make demo``. It uses an embedded store in ./.keel (delete the folder to start
over) and only numpy, so it needs nothing beyond keel's own dependencies.
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


def main() -> None:
    client = keel.Client(project="demo")
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
    found = client.find_runs(
        {"params.lr": {"$exists": True}}, sort=[("metrics.test_mse", 1)], limit=3
    )
    print(
        f"best run: {found[0].name} (test mse {found[0].metrics['test_mse']:.3f}); "
        f"registered linear v{version.version} as production\n"
    )
    client.close()
    keel_cli = [sys.executable, "-m", "keel.cli", "--project", "demo"]
    subprocess.run(
        [*keel_cli, "runs", "list", "--sort", "metrics.test_mse", "--limit", "5"], check=True
    )
    subprocess.run([*keel_cli, "models", "show", "linear"], check=True)


if __name__ == "__main__":
    main()
