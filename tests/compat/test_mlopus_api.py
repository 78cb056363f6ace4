"""mlopus' MLflow API on keel, in the shape of mlopus' own API suite
(``src/tests/test_mlflow/mlflow_api_tester.py``): every public verb, its settings and the
artifact rules mlopus users rely on, on keel's embedded SQLite store and on PostgreSQL.

``test_find_with_nested_values``, ``test_nested_params_and_metrics`` and
``test_introduction_notebooks_run`` need nested dicts, datetimes and lists in tags, params
and metrics stored and matched as mlopus does (the store's value work); the rest need only
the client.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from keel.compat import mlopus
from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi
from keel.compat.mlopus.utils import paths
from keel.errors import ConfigError

ARTIFACT = {str(i): "x" * i for i in range(1, 4)}


def dumper(path: Path) -> None:
    path.mkdir()
    for key, value in ARTIFACT.items():
        (path / key).write_text(value)


def loader(path: Path) -> dict[str, str]:
    return {f: (path / f).read_text() for f in os.listdir(path)}


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[BaseMlflowApi]:
    yield mlopus.mlflow.get_api(
        conf={
            "tracking_uri": store_url,
            "cache_dir": str(tmp_path / "cache"),
            "cache_local_artifacts": True,
            "file_transfer": {"prog_bar": False},
        }
    )


def one(found: Iterator[object]) -> object:
    items = list(found)
    assert len(items) == 1, items
    return items[0]


# --- the import rule and get_api ---------------------------------------------------------------


def test_names_are_where_mlopus_has_them() -> None:
    from keel.compat.mlopus.mlflow.api.base import BaseMlflowApi as Base
    from keel.compat.mlopus.mlflow.api.common.exceptions import FailedToPublishArtifact
    from keel.compat.mlopus.mlflow.api.common.schema import RunStatus
    from keel.compat.mlopus.mlflow.api.common.transfer import FileTransfer, ObjMeta
    from keel.compat.mlopus.mlflow.api.exp import ExpApi
    from keel.compat.mlopus.mlflow.api.model import ModelApi
    from keel.compat.mlopus.mlflow.api.mv import ModelVersionApi
    from keel.compat.mlopus.mlflow.api.run import RunApi
    from keel.compat.mlopus.mlflow.providers.generic import GenericMlflowApi
    from keel.compat.mlopus.mlflow.providers.mlflow import MlflowApi

    assert mlopus.mlflow.RunStatus is RunStatus and mlopus.mlflow.BaseMlflowApi is Base
    assert mlopus.mlflow.RunApi is RunApi and mlopus.mlflow.ExpApi is ExpApi
    assert mlopus.mlflow.ModelApi is ModelApi and mlopus.mlflow.ModelVersionApi is ModelVersionApi
    assert issubclass(MlflowApi, Base) and issubclass(GenericMlflowApi, Base)
    assert mlopus.mlflow.exceptions.FailedToPublishArtifact is FailedToPublishArtifact
    assert FileTransfer().prog_bar is True and ObjMeta.model_fields.keys() >= {"Name", "IsDir"}
    assert "mlflow" in mlopus.mlflow.list_api_plugins()
    assert "cache_dir" in mlopus.mlflow.api_conf_schema()["properties"]


def test_get_api_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPUS_MLFLOW_CONF_ALWAYS_PULL_ARTIFACTS", "true")
    api = mlopus.mlflow.get_api(
        plugin="mlflow",
        conf={
            "tracking_uri": str(tmp_path / "store"),
            "cache_dir": str(tmp_path / "cache"),
            "offline_mode": True,
            "pull_artifacts_in_offline_mode": True,
            "cache_local_artifacts": True,
            "temp_artifacts_dir": str(tmp_path / "tmp"),
            "file_transfer": {"prog_bar": False, "use_scheme": "mlflow_sandbox"},
        },
    )
    client = api.client
    assert api.cache_dir == client.cache_dir == (tmp_path / "cache").resolve()
    assert client.offline and client.always_pull_artifacts  # from the environment
    assert client.pull_artifacts_in_offline_mode and client.cache_local_artifacts
    assert client.temp_artifacts_dir == (tmp_path / "tmp").resolve() == api.temp_artifacts_dir
    assert client.progress is False
    online = api.copy(update={"offline_mode": False})
    assert not online.client.offline and online.cache_dir == api.cache_dir
    moved = api.model_copy(update={"cache_dir": tmp_path / "other"})
    assert moved.client.cache_dir == (tmp_path / "other").resolve()
    assert moved.temp_artifacts_dir == (tmp_path / "other" / "tmp").resolve()
    with pytest.raises(ConfigError, match="no_such_setting"):
        mlopus.mlflow.get_api(conf={"no_such_setting": 1})
    with pytest.raises(ConfigError, match="plugin"):
        mlopus.mlflow.get_api(plugin="nope")


# --- the API suite (mlopus' mlflow_api_tester, on keel) ---------------------------------------


def test_get_exp_and_urls(api: BaseMlflowApi) -> None:
    exp = api.create_exp("test", tags={"team": "a"})
    assert api.get_exp(exp.id).id == exp.id and exp.name == "test"
    assert exp.url == api.get_exp_url(exp.id) and exp.id in exp.url
    assert api.get_or_create_exp("test").id == exp.id
    run = exp.start_run("r")
    assert run.url == api.get_run_url(run.id, exp) and run.id in run.url
    model = api.create_model("m")
    assert model.url == api.get_model_url("m") and "m" in model.url
    mv = model.log_version(run, dumper)
    assert mv.url == api.get_model_version_url(("m", mv.version)) and mv.version == "1"


def test_find_with_plain_values(api: BaseMlflowApi) -> None:
    exp = api.create_exp("test", tags={"team": "vision"})
    assert one(api.find_exps({"name": "test"})).id == exp.id  # type: ignore[attr-defined]
    assert one(api.find_exps({"tags.team": "vision"})).id == exp.id  # type: ignore[attr-defined]
    run = api.start_run(exp, "test", tags={"owner": "ann"})
    for query in (
        {"name": "test"},
        {"tags.owner": "ann"},
        {"status": mlopus.mlflow.RunStatus.RUNNING},
    ):
        assert one(api.find_runs({**query, "exp.id": exp.id})).id == run.id  # type: ignore[attr-defined]
    assert one(exp.find_runs({"name": "test"})).id == run.id  # type: ignore[attr-defined]
    api.create_model("test", tags={"stage": "dev"})
    assert one(api.find_models({"tags.stage": "dev"})).name == "test"  # type: ignore[attr-defined]
    mv = api.log_model_version("test", run, dumper, tags={"kind": "tree"})
    for query in (
        {"tags.kind": "tree"},
        {"run.id": run.id},
        {"run.name": "test"},
        {"model.name": "test"},
    ):
        assert one(api.find_model_versions(query)).version == mv.version  # type: ignore[attr-defined]
    assert one(run.find_model_versions()).version == mv.version  # type: ignore[attr-defined]
    assert one(api.get_model("test").find_versions()).version == mv.version  # type: ignore[attr-defined]


NESTED_TAGS = {
    "mlflow": {"key": "val"},
    "foo": {"bar": "foobar"},
    "datetime": datetime(2024, 5, 17, 12, 30),
    "a_list": ["foo", "bar"],
}


def test_find_with_nested_values(api: BaseMlflowApi) -> None:
    """mlopus' queries on nested tags, datetimes and lists (the store's value work)."""
    queries = [
        {"tags.mlflow.key": "val"},
        {"tags.foo.bar": "foobar"},
        {"tags.datetime": NESTED_TAGS["datetime"]},
        {"tags.a_list": ["foo", "bar"]},
        {"tags.a_list": "foo"},  # MongoDB matches an element of a list
    ]
    exp = api.create_exp("test", tags=NESTED_TAGS)
    run = api.start_run(exp, "test", tags=NESTED_TAGS)
    api.create_model("test", tags=NESTED_TAGS)
    mv = api.log_model_version("test", run, dumper, tags=NESTED_TAGS)
    for query in queries:
        assert one(api.find_exps(query)).id == exp.id  # type: ignore[attr-defined]
        assert one(api.find_runs({**query, "exp.id": exp.id})).id == run.id  # type: ignore[attr-defined]
        assert one(api.find_models(query)).name == "test"  # type: ignore[attr-defined]
        assert one(api.find_model_versions(query)).version == mv.version  # type: ignore[attr-defined]
        run_query = {"run." + k: v for k, v in query.items()}
        assert one(api.find_model_versions(run_query)).version == mv.version  # type: ignore[attr-defined]


def test_nested_params_and_metrics(api: BaseMlflowApi) -> None:
    with api.get_or_create_exp("test").start_run("nested") as run:
        run.set_tags({"ns": {"day": datetime(2024, 5, 17)}})
        run.log_params({"ns": {"key": True}}).log_metrics({"ns": {"key": 42}})
    assert run.params == {"ns": {"key": True}} and run.metrics == {"ns": {"key": 42}}
    assert run.tags["ns"]["day"] == datetime(2024, 5, 17)


def test_run_lifecycle_and_children(api: BaseMlflowApi) -> None:
    exp = api.get_or_create_exp("test")
    with exp.start_run("parent") as parent:
        assert parent.status == mlopus.mlflow.RunStatus.RUNNING and parent.start_time
        child = parent.start_child("child")
        assert one(parent.children).id == child.id  # type: ignore[attr-defined]
        assert one(api.find_child_runs(parent.id)).id == child.id  # type: ignore[attr-defined]
    assert parent.status == mlopus.mlflow.RunStatus.FINISHED and parent.end_time is not None
    assert parent.resume().status == mlopus.mlflow.RunStatus.RUNNING
    assert api.resume_run(child.id).status == mlopus.mlflow.RunStatus.RUNNING
    with pytest.raises(ZeroDivisionError), exp.start_run("fails") as failing:
        1 / 0  # noqa: B018
    assert api.get_run(failing.id).status == mlopus.mlflow.RunStatus.FAILED
    scheduled = exp.create_run("later")
    assert scheduled.status == mlopus.mlflow.RunStatus.SCHEDULED
    assert api.end_run(scheduled, succeeded=False).status == mlopus.mlflow.RunStatus.FAILED


def test_artifacts(api: BaseMlflowApi, tmp_path: Path) -> None:
    """mlopus' test_artifacts: replace at a path, write protection, offline reads, cleaning,
    exports refused into the cache, exported caches, linked placement."""
    path_in_run = "run_artifact"
    run_id = api.start_run(api.get_or_create_exp("test"), "test").id
    api.log_run_artifact(run_id, lambda p: p.write_text("ok"), path_in_run, use_cache=True)
    cached = api.get_run_artifact(run_id, path_in_run)
    if os.geteuid() == 0:  # root writes through any mode: check the mode itself
        assert not cached.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    else:
        with pytest.raises(PermissionError):  # a cached file cannot be rewritten by hand
            cached.write_text("bla")
    api.log_run_artifact(run_id, dumper, path_in_run, use_cache=True)  # a folder replaces the file
    assert len(api.list_run_artifacts(run_id, path_in_run)) == len(ARTIFACT)  # type: ignore[arg-type]
    assert api.in_offline_mode.load_run_artifact(run_id, loader, path_in_run) == ARTIFACT
    api.clean_cached_run_artifact(run_id, path_in_run)
    with pytest.raises(FileNotFoundError):
        api.in_offline_mode.get_run_artifact(run_id, path_in_run)
    assert api.cache_dir is not None
    for path in (api.cache_dir, api.cache_dir / "subdir", api.cache_dir.parent):
        with pytest.raises(paths.IllegalPath):  # not into the cache, inside it or above it
            api.export_run_artifact(run_id, path)
    export = tmp_path / "elsewhere" / "export"
    api.export_run_artifact(run_id, export, path_in_run)
    exported_api = api.in_offline_mode.copy(update={"cache_dir": export})
    assert len(exported_api.list_run_artifacts(run_id, path_in_run)) == len(ARTIFACT)  # type: ignore[arg-type]
    exported_api.place_run_artifact(run_id, copy := tmp_path / "copy", path_in_run, link=True)
    assert loader(copy) == ARTIFACT
    for dirpath, dirnames, filenames in os.walk(copy):
        for dirname in dirnames:
            assert not (Path(dirpath) / dirname).is_symlink()
        for filename in filenames:
            assert (filepath := Path(dirpath) / filename).is_symlink()
            assert filepath.resolve().relative_to(export.resolve())
    api.clean_all_cache()
    assert not any((api.cache_dir / "runs").glob("*"))


def test_logging_again_replaces_file_and_folder(api: BaseMlflowApi, tmp_path: Path) -> None:
    run = api.start_run(api.get_or_create_exp("test"), "test")
    run.log_artifact(dumper, path_in_run="a")
    names = {o.Name for o in run.list_artifacts("a")}  # type: ignore[union-attr]
    assert names == set(ARTIFACT)
    assert loader(run.get_artifact("a")) == ARTIFACT
    run.log_artifact(lambda p: p.write_text("file now"), path_in_run="a")
    listed = run.list_artifacts("a")
    assert not isinstance(listed, list) and listed.Name == "a" and not listed.IsDir
    assert run.get_artifact("a").read_text() == "file now"
    assert [f.path for f in api.client.list_run_artifact(run.id)] == ["a"]
    run.log_artifact(lambda p: p.mkdir() or (p / "z").write_text("z"), path_in_run="a")
    assert [f.path for f in api.client.list_run_artifact(run.id)] == ["a/z"]
    assert loader(run.get_artifact("a")) == {"z": "z"}
    # another client logged over it: this one's cached copy is pruned on the next read
    other = api.model_copy(update={"cache_dir": tmp_path / "other-cache"})
    other.log_run_artifact(run.id, dumper, "a")
    assert (
        loader(api.copy(update={"always_pull_artifacts": True}).get_run_artifact(run.id, "a"))
        == ARTIFACT
    )


def test_model_versions_cache_and_export_meta(api: BaseMlflowApi, tmp_path: Path) -> None:
    with api.get_or_create_exp("test").start_run("train") as run:
        mv = api.get_or_create_model("m").log_version(run, dumper)
    assert mv.model.name == "m" and mv.run.id == run.id and mv.run.exp.name == "test"
    assert mv.path_in_run == "m" and mv.load_artifact(loader) == ARTIFACT
    listed = mv.list_artifacts()
    assert isinstance(listed, list) and sorted(o.Name for o in listed) == sorted(ARTIFACT)
    api.clean_all_cache()
    with pytest.raises(FileNotFoundError):
        api.in_offline_mode.get_model("m")
    api.get_model("m").get_version(mv.version).cache()
    offline = api.in_offline_mode.get_model("m").get_version(mv.version)
    assert offline.load_artifact(loader) == ARTIFACT and offline.run.exp.name == "test"
    api.clean_cached_model_artifact(mv)
    with pytest.raises(FileNotFoundError):
        api.in_offline_mode.get_model_artifact(("m", mv.version))
    assert api.cache_model_artifact(mv).is_dir()
    mv.clean_cached_artifact()
    # metadata of each kind, cached and exported
    assert api.cache_exp_meta(run.exp).id == run.exp.id
    assert api.cache_run_meta(run.id).id == run.id
    assert api.cache_model_meta("m").name == "m"
    assert api.cache_model_version_meta(mv).version == mv.version
    export = tmp_path / "export"
    mv.export(export)
    run.export_meta(export)
    api.get_model("m").export_meta(export)
    generic = mlopus.mlflow.get_api(plugin="generic", conf={"cache_dir": str(export)})
    exported = generic.get_model_version(("m", mv.version))
    assert exported.load_artifact(loader) == ARTIFACT and exported.run.id == run.id
    assert generic.get_exp(run.exp.id).name == "test"
    with pytest.raises(paths.IllegalPath):
        api.export_model_version_meta(mv, api.cache_dir)  # type: ignore[arg-type]
    with pytest.raises(paths.IllegalPath):
        api.export_model_artifact(mv, api.cache_dir / "x")  # type: ignore[operator]


def test_offline_pull_and_always_pull(api: BaseMlflowApi) -> None:
    run = api.start_run(api.get_or_create_exp("test"), "test")
    run.log_artifact(dumper, path_in_run="a")
    api.cache_run_meta(run)
    api.client.list_run_artifact(run.id)  # the listing only, not the files
    api.cache_run_artifact(run.id, "a")
    api.clean_cached_run_artifact(run.id)
    with pytest.raises(FileNotFoundError):
        api.in_offline_mode.get_run_artifact(run.id, "a")
    puller = api.copy(update={"offline_mode": True, "pull_artifacts_in_offline_mode": True})
    assert puller.load_run_artifact(run.id, loader, "a") == ARTIFACT
    assert api.always_pull_artifacts is False  # mlopus' default: a cache hit is used as is


def test_cached_files_are_write_protected_and_temp_artifacts(api: BaseMlflowApi) -> None:
    run = api.start_run(api.get_or_create_exp("test"), "test")
    run.log_artifact(dumper, path_in_run="a", keep_the_source=True)
    cached = run.get_artifact("a")
    for path in cached.iterdir():
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert api.temp_artifacts_dir is not None and any(api.temp_artifacts_dir.iterdir())
    api.clean_temp_artifacts()
    assert not api.temp_artifacts_dir.exists()


def test_keep_the_source_false_removes_a_path_source(api: BaseMlflowApi, tmp_path: Path) -> None:
    run = api.start_run(api.get_or_create_exp("test"), "test")
    dumper(source := tmp_path / "src")
    run.log_artifact(source, keep_the_source=False)
    assert not source.exists() and loader(run.get_artifact("src")) == ARTIFACT
    with pytest.raises(mlopus.mlflow.exceptions.FailedToPublishArtifact):
        run.log_artifact(lambda p: (_ for _ in ()).throw(OSError("disk full")), "x")


def test_progress_bar(store_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    api = mlopus.mlflow.get_api(
        conf={"tracking_uri": store_url, "cache_dir": str(tmp_path / "cache")}
    )  # file_transfer.prog_bar defaults to True, as in mlopus
    run = api.start_run(api.get_or_create_exp("test"), "test")
    run.log_artifact(dumper, path_in_run="a", use_cache=True)
    err = capfd.readouterr().err
    assert "uploading 3/3 files [" in err and "downloading 3/3 files [" in err
    quiet = api.copy(update={"file_transfer": {"prog_bar": False}})
    quiet.log_run_artifact(run.id, dumper, "b")
    assert "files [" not in capfd.readouterr().err


# --- the introduction notebooks, as a script --------------------------------------------------


def test_introduction_notebooks_run(tmp_path: Path) -> None:
    """mlopus' examples/1_introduction (Part 1, and Part 2's use of the MLflow API), with
    ``import mlopus`` changed to ``from keel.compat import mlopus`` and nothing else."""
    project = Path(__file__).parent / "projects" / "mlopus_intro"
    env = {**os.environ, "KEEL_STORE": str(tmp_path / "store"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(project / "intro.py")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "introduction done" in done.stdout


def test_keel_client_has_the_same_verbs(store_url: str, tmp_path: Path) -> None:
    """mlopus' names on keel's own client and handles."""
    import keel

    client = keel.Client(store=store_url, artifacts=str(tmp_path / "a"), cache_dir=tmp_path / "c")
    with client.start_run("e") as run:
        run.log_artifact(dumper, "m")
        mv = run.log_model_version("m", dumper)
    assert run.url == client.get_run_url(run) and run.exp.url == client.get_exp_url(run.exp)
    assert mv.url.endswith("models/m#v1") and client.get_model("m").url.endswith("models/m")
    assert run.resume().status == "running"
    assert [f.path for f in client.list_run_artifacts(run)] == ["m/1", "m/2", "m/3"]
    client.clean_all_cache()
    mv.cache()
    assert loader(client.in_offline_mode.get_model_artifact(("m", 1))) == ARTIFACT
    assert client.copy(update={"offline": True}).offline
