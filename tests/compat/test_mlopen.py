"""mlopen pipelines on keel with only their imports changed (keel.compat.mlopen).

The test projects (tests/compat/projects/mlopen_knn and mlopen_sentiment) are keel's own, in
the shapes of mlopen's knn_control.py and SentimentAnalysis(logreg).py. A real ``keel
server`` runs as a subprocess on 127.0.0.1 from a temporary folder with a *relative*
``--store``: the knn pipeline (no training phase) is uploaded and run through the REST API,
the sentiment pipeline (``(object, "name")`` pairs saved by ``io.save_pipeline``) is uploaded,
trained and run through the web UI, and both run through the CLI (``keel pipeline``) against
the same relatively named store, where the server finds their runs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from typing import Any

from tests.compat.conftest import STORE, Live, _csrf, _keel

from keel.compat.mlopen import PipelineFile, plain_preds
from keel.compat.mlopen.utils import io_handler, plotter
from keel.server.pipelines.results import figure_of

PROJECTS = Path(__file__).parent / "projects"
KNN = PROJECTS / "mlopen_knn"
SENTIMENT = PROJECTS / "mlopen_sentiment"
JOB_WAIT_S = 240.0

#: every get_params type mlopen knew, with defaults; run_pipeline reports what it got
TYPES_PIPELINE = textwrap.dedent(
    """
    import base64

    from keel.compat.mlopen.utils import io_handler as io

    PNG = base64.b64decode("{png}")

    def get_params(run=True):
        if not run:
            return ""
        return {{"name": ("string", {{"default": "ann"}}), "blank": "string",
                 "k": ("integer", {{"default": 5}}), "ratio": ("float", {{"default": 0.5}}),
                 "kind": ("choice", {{"choices": ["a", "b"]}}), "data": "file",
                 "extra_file": "upload", "loud": "bool"}}

    def train(inpt, params):
        raise Exception("no training phase")

    def run_pipeline(input, model, args, params=None):
        got = {{k: [type(v).__name__, v if not hasattr(v, "read") else v.read()]
               for k, v in sorted(params.items())}}
        return {{"text": input.name + ": " + input.read().decode(), "imgs": [PNG],
                "types": got, "graphs": None}}
    """
)


def png() -> bytes:
    """A 1×1 red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- in process


def test_the_input_is_a_file_object_like_djangos(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "in.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    f = PipelineFile(path)
    assert (f.name, f.size, f.path, str(f)) == ("in.csv", 12, str(path), "in.csv")
    assert f.read() == b"a,b\n1,2\n3,4\n"  # before open: bytes, as Django's FieldFile
    assert f.open("r") is f and f.readlines() == ["a,b\n", "1,2\n", "3,4\n"]
    with f.open("r") as again:
        assert list(again) == ["a,b\n", "1,2\n", "3,4\n"]
    assert f.closed
    assert b"".join(f.chunks(4)) == path.read_bytes() and f.multiple_chunks(4)
    assert pd.read_csv(PipelineFile(path))["b"].tolist() == [2, 4]  # not opened: "rb"
    f.open("r")  # knn: input.open("r"), then pd.read_csv(input)
    assert pd.read_csv(f)["b"].tolist() == [2, 4]
    with open(f) as handle:
        assert handle.readline() == "a,b\n"
    f.close()


def test_the_old_import_paths_are_the_same_objects() -> None:
    import keel.compat.mlopen as compat
    import keel.models.mlopen as old
    from keel.models.styles import MLOPEN_ADAPTER

    assert old is compat and old.io_handler is io_handler
    assert old.save_pipeline is io_handler.save_pipeline
    assert MLOPEN_ADAPTER.startswith("keel.compat.mlopen.")
    code = "import sys, keel; print(any(m.startswith('keel.compat') for m in sys.modules))"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert light.stdout.strip() == "False", light.stderr


def test_save_pipeline_keeps_named_pairs_and_bare_objects() -> None:
    with io_handler.capturing() as saved:
        io_handler.save_pipeline([("clf", "logreg_model")], [("vec", "tfidf_vect")], "x.py")
    assert io_handler.model_of(saved) == "clf" and saved["args"] == {"tfidf_vect": "vec"}
    with io_handler.capturing() as saved:
        io_handler.save_pipeline([("a", "first"), ("b", "second")], [], "x.py")
    assert io_handler.model_of(saved) == {"first": "a", "second": "b"}
    with io_handler.capturing() as saved:
        io_handler.save_pipeline(["bare"], {"n": 1}, "x.py")  # bare objects keep working
        io_handler.save(7, "seven.pkl", True, "arg")
    assert io_handler.model_of(saved) == "bare" and saved["args"] == {"n": 1, "seven": 7}
    with io_handler.running("x", saved):
        assert io_handler.load_pipeline() == ("bare", {"n": 1, "seven": 7})
        assert io_handler.load("seven.pkl", "arg") == 7


def test_everything_run_pipeline_returns_is_kept() -> None:
    div = plotter.pie_plot_from_lists(values=[2, 1], labels=["Positive", "Negative"], title="t")
    assert figure_of(div)["data"][0]["type"] == "pie"  # type: ignore[index]
    assert plotter.plotlify_scatter_js(x=[1], y=[2])["data"][0]["type"] == "scatter"
    out = plain_preds(
        {
            "data": [(1, "a")],
            "graphs": plotter.plotlify_pie_js({"a": 1}),
            "imgs": png(),
            "tables": {"n": 1},
            "text": None,
        }
    )
    assert out["imgs"][0].startswith("data:image/png;base64,")
    assert out["extra"] == {"tables": {"n": 1}} and "text" not in out
    assert plain_preds({}) == {}


# --------------------------------------------------------------------------- a real server


def _wait(live: Live, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_WAIT_S
    while True:
        job = live.api.get(f"/api/v1/pipelines/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return dict(job)
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(0.3)


def _upload_api(live: Live, files: list[tuple[str, Path]], inputs: list[Path]) -> None:
    parts = [(field, (path.name, path.read_bytes())) for field, path in files]
    made = live.api.post("/api/v1/pipelines", files=parts, data={"replace": "1"})
    assert made.status_code in (200, 201), made.text
    for path in inputs:
        saved = live.api.post(
            "/api/v1/pipelines/inputs",
            files={"file": (path.name, path.read_bytes())},
            data={"replace": "1"},
        )
        assert saved.status_code in (200, 201), saved.text


def _store_client(live: Live) -> Any:
    from keel.tracking.client import Client

    return Client(store=str(live.folder / STORE))


def test_knn_runs_with_no_training_through_the_api_into_the_servers_store(live: Live) -> None:
    _upload_api(live, [("control", KNN / "knn_control.py")], [KNN / "iris.csv"])
    params = live.api.get("/api/v1/pipelines/knn_control/params").json()
    assert [(f["name"], f["type"], f["default"]) for f in params["run"]] == [
        ("k", "integer", 5),
        ("data", "file", None),
        ("column_names", "string", None),
    ]
    trained = live.api.post("/api/v1/pipelines/knn_control/train", json={"input": "iris.csv"})
    failed = _wait(live, trained.json()["id"])
    assert failed["status"] == "failed" and "no separate training phase" in failed["error"]

    answer = live.api.post(
        "/api/v1/pipelines/knn_control/run", json={"input": "iris.csv", "params": {"k": 3}}
    )
    assert answer.status_code == 202, answer.text
    job = _wait(live, answer.json()["id"])
    assert job["status"] == "finished", job
    results = live.api.get(f"/api/v1/pipelines/runs/{job['run_id']}/results").json()
    assert results["table"]["total"] == 30
    assert results["table"]["columns"][-2:] == ["Predicted Class", "Actual Class"]
    assert "<b>k nearest neighbours</b>" in results["text_html"]
    assert results["graphs"] == [] and results["imgs"] == []

    # the run is in the store the server was given (relative to where it started), and the
    # pipeline's code folder has no store of its own
    run = _store_client(live).get_run(job["run_id"])
    assert run.kind == "pipeline-run" and run.params["params.k"] == 3
    assert not list(live.folder.glob(f"{STORE}/**/pipelines/knn_control/code/.keel"))
    assert not [p for p in live.folder.rglob(".keel") if p.is_dir()]

    page = live.ui.get(f"/pipelines/runs/{job['run_id']}")
    assert page.status_code == 200 and "<th>Predicted Class</th>" in page.text


def test_sentiment_trains_and_runs_through_the_ui(live: Live) -> None:
    ui = live.ui
    token = _csrf(ui.get("/pipelines").text)
    support = ["vectorization.py", "text_preprocessing.py", "logistic_regression.py", "metrics.py"]
    files = [("control", ("sentiment_logreg_control.py",
                          (SENTIMENT / "sentiment_logreg_control.py").read_bytes()))]  # fmt: skip
    files += [("support", (name, (SENTIMENT / name).read_bytes())) for name in support]
    made = ui.post("/pipelines/upload", files=files, data={"csrf_token": token, "replace": "1"})
    assert made.status_code == 303, made.text
    for path in sorted((SENTIMENT / "data").iterdir()):
        saved = ui.post(
            "/pipelines/inputs",
            files={"file": (path.name, path.read_bytes())},
            data={"csrf_token": _csrf(ui.get("/pipelines").text), "replace": "1"},
        )
        assert saved.status_code == 303, saved.text

    page = ui.get("/pipelines/sentiment_logreg_control")
    assert 'name="param:train - pos samples"' in page.text  # mlopen's "upload" type
    fields = {
        "param:train - pos samples": "train_pos.csv",
        "param:train - neg samples": "train_neg.csv",
        "param:test - pos samples": "test_pos.csv",
        "param:test - neg samples": "test_neg.csv",
    }
    job_id = _submit_ui(live, "train", {"input": "statements.txt", **fields})
    job = _wait(live, job_id)
    assert job["status"] == "finished", job
    version = _store_client(live).get_model_version("sentiment_logreg_control@latest")
    assert version.version >= 1

    job = _wait(live, _submit_ui(live, "run", {"input": "statements.txt"}))
    assert job["status"] == "finished", job
    results = ui.get(f"/pipelines/runs/{job['run_id']}").text
    assert "<th>Statement</th>" in results and "I loved this wonderful film" in results
    figure = json.loads(
        re.search(r'<script type="application/json">(.*?)</script>', results, re.S).group(1)
    )
    assert figure["data"][0]["type"] == "pie"  # plotter's <div>, read back as the figure
    values = figure["data"][0]["values"]  # plotly ≥ 6 writes arrays as typed base64
    if isinstance(values, dict):
        values = list(base64.b64decode(values["bdata"]))
    assert values == [2, 1]  # two positive statements, one negative


def _submit_ui(live: Live, action: str, fields: dict[str, str]) -> str:
    token = _csrf(live.ui.get("/pipelines/sentiment_logreg_control").text)
    answer = live.ui.post(
        f"/pipelines/sentiment_logreg_control/{action}", data={"csrf_token": token, **fields}
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def test_get_params_types_reach_the_pipeline_and_every_key_is_shown(
    live: Live, tmp_path: Path
) -> None:
    control = tmp_path / "types_control.py"
    control.write_text(TYPES_PIPELINE.format(png=base64.b64encode(png()).decode()))
    note = tmp_path / "note.txt"
    note.write_text("hello")
    _upload_api(live, [("control", control)], [note])
    schema = live.api.get("/api/v1/pipelines/types_control/params").json()["run"]
    assert {f["name"]: f["type"] for f in schema} == {
        "name": "string",
        "blank": "string",
        "k": "integer",
        "ratio": "number",
        "kind": "choice",
        "data": "file",
        "extra_file": "file",
        "loud": "bool",
    }
    answer = live.api.post(
        "/api/v1/pipelines/types_control/run",
        json={"input": "note.txt", "params": {"k": "7", "data": "note.txt", "loud": True}},
    )
    job = _wait(live, answer.json()["id"])
    assert job["status"] == "finished", job
    results = live.api.get(f"/api/v1/pipelines/runs/{job['run_id']}/results").json()
    assert results["text"] == "note.txt: hello"
    assert results["extra"]["types"] == {
        "blank": ["str", ""],
        "data": ["PipelineFile", "hello"],
        "k": ["int", 7],
        "kind": ["str", "a"],
        "loud": ["bool", True],
        "name": ["str", "ann"],
        "ratio": ["float", 0.5],
    }
    assert results["imgs"][0].startswith("data:image/png;base64,")
    page = live.ui.get(f"/pipelines/runs/{job['run_id']}").text
    assert '<img class="pipeline-img" src="data:image/png;base64,' in page
    assert "<h2>types</h2>" in page


def test_the_cli_runs_pipelines_into_the_same_relative_store(live: Live, tmp_path: Path) -> None:
    for path in KNN.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    store = os.path.relpath(live.folder / STORE, tmp_path)  # relative, from another folder
    out = _keel(tmp_path, "--store", store, "pipeline", "run", "knn_control.py", "iris.csv",
                "-p", "k=4", "--json")  # fmt: skip
    ran = json.loads(out)
    assert len(ran["data"]) == 30 and ran["columns"][-1] == "Actual Class"
    assert not (tmp_path / ".keel").exists()
    results = live.api.get(f"/api/v1/pipelines/runs/{ran['run_id']}/results").json()
    assert results["table"]["total"] == 30  # the server shows the CLI's run

    sentiment = tmp_path / "sentiment"
    sentiment.mkdir()
    for path in SENTIMENT.rglob("*"):
        if path.is_file():
            target = sentiment / path.relative_to(SENTIMENT)
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(path.read_bytes())
    store = os.path.relpath(live.folder / STORE, sentiment)
    pairs = [f"train - {s} samples=data/train_{s}.csv" for s in ("pos", "neg")]
    pairs += [f"test - {s} samples=data/test_{s}.csv" for s in ("pos", "neg")]
    args = [a for pair in pairs for a in ("-p", pair)]
    trained = _keel(sentiment, "--store", store, "pipeline", "train", "sentiment_logreg_control.py",
                    "data/statements.txt", "--name", "sentiment_cli", *args)  # fmt: skip
    assert "trained sentiment_cli version 1" in trained
    ran = json.loads(
        _keel(
            sentiment,
            "--store",
            store,
            "pipeline",
            "run",
            "sentiment_logreg_control.py",
            "data/statements.txt",
            "--name",
            "sentiment_cli",
            "--json",
        )
    )
    assert [row[1] for row in ran["data"]] == ["1", "0", "1"]
