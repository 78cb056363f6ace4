"""mlopus' introduction notebooks (examples/1_introduction) as one script, on keel.

Changed from the notebooks: ``import mlopus`` is ``from keel.compat import mlopus``;
``devtools.pprint`` is the standard library's ``pprint``; the notebooks' ``!tree`` shell
lines print the folder instead. Part 2 is kept where it uses the MLflow API; its
``mlopus.artschema`` calls are not (keel does not provide artschema), so 6.4's explicit
dumper and loader are plain callbacks here.
"""

# ---- Part 1 -------------------------------------------------------------------------------
import os
import logging
from pathlib import Path
from datetime import datetime

import pandas as pd
from pprint import pprint

logging.basicConfig(level=logging.INFO, handlers=[logging.StreamHandler()])


def tree(path):  # stands in for the notebooks' `!tree {path}`
    for p in sorted(Path(path).rglob("*")):
        print(p.relative_to(path))


# ### API Configuration
from keel.compat import mlopus

mlflow_api = mlopus.mlflow.get_api(
    conf={
        "tracking_uri": None,  # keel: KEEL_STORE, keel.yml, else ./.keel
        "cache_dir": None,
        "offline_mode": False,
        "cache_local_artifacts": True,
        "file_transfer": {"use_scheme": "mlflow_sandbox"},
    },
)

pprint(mlflow_api)

# ### 1. Basic experiment tracking
exp = mlflow_api.get_or_create_exp(name="mlopus_introduction")
print(exp.url)

with exp.start_run(name="1_basics") as run:
    print(run.url)

    # Tags, params and metrics can be nested dicts
    run.set_tags({"namespace": {"key": datetime.today()}}).log_params(
        {"namespace": {"key": True}}
    ).log_metrics({"namespace": {"key": 42}})

    run.log_artifact("data/report.csv", use_cache=False)

    pprint(run)
    pprint(run.exp)

assert run.end_time is not None
assert run.status == mlopus.mlflow.RunStatus.FINISHED

path = run.get_artifact("report.csv")
tree(path.parent)
print(pd.read_csv(path))

# ### 2. Artifact dumpers and loaders
dumper = lambda path: (
    path.mkdir() or [path.joinpath(f"{i}.txt").write_text("a" * i) for i in range(1, 4)]
)
loader = lambda path: {f: path.joinpath(f).read_text() for f in sorted(os.listdir(path))}

with mlflow_api.get_or_create_exp("mlopus_introduction").start_run("2_dumpers_and_loaders") as run:
    run.log_artifact(dumper, path_in_run="my_files")

tree(run.get_artifact("my_files"))
assert run.load_artifact(loader, path_in_run="my_files") == {
    "1.txt": "a",
    "2.txt": "aa",
    "3.txt": "aaa",
}

# ### 3. Model Registry
with mlflow_api.get_or_create_exp("mlopus_introduction").start_run("3_model_registry") as run:
    model_version = mlflow_api.get_or_create_model("mlopus_example").log_version(
        run, dumper
    )  # `path_in_run` defaults to model name

    print(model_version.url)
    print(version_number := model_version.version)

pprint(model_version)
pprint(model_version.model)
pprint(model_version.run)
pprint(model_version.run.exp)

tree(model_version.get_artifact())
print(model_version.load_artifact(loader))

# ### 4. Model Caching and Offline Mode
mlflow_api.clean_all_cache()

mlflow_api.get_model("mlopus_example").get_version(version_number).cache()

offline_model_version = mlflow_api.in_offline_mode.get_model("mlopus_example").get_version(
    version_number
)

pprint(offline_model_version)
assert offline_model_version.load_artifact(loader) == model_version.load_artifact(loader)

# ---- Part 2 (the MLflow API parts) --------------------------------------------------------
import tempfile

mlflow_api = mlopus.mlflow.get_api(
    conf={
        "tracking_uri": None,
        "cache_dir": None,
        "cache_local_artifacts": True,
        "file_transfer": {"use_scheme": "mlflow_sandbox"},
    },
)

# 5. model tags (here plain ones: artschema's Tags() is not provided)
(model := mlflow_api.get_model("mlopus_example")).set_tags({"schemas": {"default": "json-files"}})
pprint(model.tags)
assert model.tags["schemas"]["default"] == "json-files"

# 6.4 explicit dumper and loader
with mlflow_api.get_or_create_exp("mlopus_introduction").start_run("6.4_explicit") as run:
    model_version = model.log_version(
        run=run,
        source=lambda path: path.mkdir() or path.joinpath("x").write_text("1"),
    )
print(version_number := model_version.version)
assert model_version.load_artifact(loader=lambda path: path.joinpath("x").read_text()) == "1"

# 6.5 files produced by a pipeline, published without keeping the source
with mlflow_api.get_or_create_exp("mlopus_introduction").start_run("6.5_no_dump") as run:
    with tempfile.TemporaryDirectory() as tmp:
        (some_data_path := Path(tmp) / "some_data").mkdir()
        (some_data_path / "x").write_text("1")
        (some_data_path / "y").write_text("2")
        model_version = model.log_version(run=run, source=Path(tmp), keep_the_source=False)
        assert not Path(tmp).exists()
        Path(tmp).mkdir()  # for TemporaryDirectory's cleanup

# 7. download everything, then load offline
mlflow_api.clean_all_cache()
mlflow_api.get_model("mlopus_example").get_version(version_number).cache()
mlflow_api.get_run(run.id).cache_meta()
mlflow_api.cache_run_artifact(run.id, "mlopus_example")
offline = mlflow_api.in_offline_mode
assert (
    offline.get_model("mlopus_example")
    .get_version(version_number)
    .load_artifact(loader=lambda path: path.joinpath("x").read_text())
    == "1"
)
assert offline.load_run_artifact(run.id, loader, "mlopus_example/some_data") == {"x": "1", "y": "2"}

print("introduction done")
