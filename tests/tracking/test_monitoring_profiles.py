"""Monitoring profiles are a model version's own files, on every backend of the client suite:
the reference profile is replaced when made again, the live windows of two writers (a
replica set) are both kept and merge, and a drift check reads them back."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel import Client
from keel.errors import NotFound
from keel.monitoring.check import check_drift
from keel.monitoring.profiles import profile_frame
from keel.monitoring.storage import (
    has_reference,
    load_reference,
    save_reference,
    save_window,
    window_files,
)


def rows(n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "c": rng.choice(["a", "b"], n)})


def test_profiles_are_kept_with_the_version_and_merge_across_writers(
    client: Client, tmp_path: Path
) -> None:
    weights = tmp_path / "m.bin"
    weights.write_bytes(b"weights")
    with client.start_run("e") as run:
        mv = client.log_model_version("m", run, weights)
    assert not has_reference(client, mv)
    with pytest.raises(NotFound, match="keel monitor profile m@1"):
        load_reference(client, mv)

    save_reference(client, mv, profile_frame(rows(100, 5.0, 0)))  # replaced below
    save_reference(client, mv, profile_frame(rows(2000, 0.0, 1), meta={"source": "train"}))
    reference = load_reference(client, mv)
    assert reference.rows == 2000 and reference.meta["source"] == "train"

    hour = 3600 * 1000
    start = (int(time.time() * 1000) // hour - 2) * hour
    first, second = rows(600, 0.0, 2), rows(600, 0.0, 3)
    save_window(client, mv, 3600, start, "replica-a", profile_frame(first))
    save_window(client, mv, 3600, start, "replica-b", profile_frame(second))
    save_window(client, mv, 3600, start + hour, "replica-a", profile_frame(rows(900, 3.0, 4)))
    stored = window_files(client, mv)
    assert [(w.start_ms, w.writer) for w in stored] == [
        (start, "replica-a"),
        (start, "replica-b"),
        (start + hour, "replica-a"),
    ]
    # a window is the merge of its writers' profiles: the same as profiling all its rows
    check = check_drift(client, mv, since="1d", window="1h")
    windows = {w.start_ms: w for w in check.windows}
    assert windows[start].rows == 1200 and not windows[start].drifted
    assert windows[start + hour].rows == 900 and windows[start + hour].drifted_features == ["x"]
    whole = profile_frame(pd.concat([first, second]))
    assert check.current.inputs["x"].count == whole.inputs["x"].count + 900
    assert client.list_version_files(mv, "monitoring/live/3600/")  # listed by folder
