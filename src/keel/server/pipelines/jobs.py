"""Training and running uploaded pipelines as jobs, away from the web worker.

:class:`PipelineJobs` (web side) turns a Train or Run request into a :class:`~keel.jobs.JobSpec`
and hands it to the server's executor; the store settings reach the job through its
environment (never its files). :func:`train_job` and :func:`run_job` are what the job's
process calls:

* ``train_job`` trains through keel's lifecycle with the mlopen adapter: a tracked run of
  kind ``train`` in the experiment named after the pipeline, producing the next version of
  the model of that name. The input file is the one ``train`` data source (``inpt``).
* ``run_job`` calls the pipeline's ``run_pipeline`` on an input file with the form's params,
  with the objects its latest (or chosen) version saved, in a tracked run of kind
  ``pipeline-run``; the code is the pipeline as uploaded now. Its ``preds`` are stored on
  the run (see :mod:`keel.server.pipelines.results`).

A pipeline that raises leaves its run failed with the traceback; the job fails with the
pipeline's own error line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, NotFound

if TYPE_CHECKING:
    from keel.config import Config
    from keel.jobs import Executor, Job
    from keel.server.pipelines.store import Pipeline, PipelineStore
    from keel.tracking.client import Client

TRAIN_TARGET = "keel.server.pipelines.jobs:train_job"
RUN_TARGET = "keel.server.pipelines.jobs:run_job"
#: the label that marks the server's pipeline jobs (the executor may run other work too)
APP_LABEL = "pipelines"


class PipelineFailed(KeelError):
    """The pipeline's own code raised; its run (``run_id``) is marked failed."""

    def __init__(self, message: str, run_id: str | None) -> None:
        super().__init__(message)
        self.run_id = run_id


# --------------------------------------------------------------------------- web side


@dataclass
class PipelineJobs:
    """Submitting and finding the jobs of the server's pipelines."""

    executor: Executor
    store: PipelineStore
    client: Client
    timeout_s: float
    memory_mb: int | None = None

    def submit_train(
        self,
        pipeline: Pipeline,
        input_name: str,
        params: dict[str, Any],
        submitted_by: str,
        test_input: str | None = None,
    ) -> Job:
        args = {
            **self._common(pipeline, input_name, params, submitted_by),
            "test_path": str(self.store.input_path(test_input)) if test_input else None,
        }
        return self._submit(pipeline, "train", TRAIN_TARGET, args, input_name)

    def submit_run(
        self,
        pipeline: Pipeline,
        input_name: str,
        params: dict[str, Any],
        submitted_by: str,
        version: int | None = None,
    ) -> Job:
        args = {**self._common(pipeline, input_name, params, submitted_by), "version": version}
        return self._submit(pipeline, "run", RUN_TARGET, args, input_name)

    def _common(
        self, pipeline: Pipeline, input_name: str, params: dict[str, Any], submitted_by: str
    ) -> dict[str, Any]:
        return {
            "pipeline": pipeline.name,
            "code_dir": str(pipeline.code_dir),
            "module": pipeline.module,
            "input_name": input_name,
            "input_path": str(self.store.input_path(input_name)),
            "params": params,
            "submitted_by": submitted_by,
        }

    def _submit(
        self, pipeline: Pipeline, kind: str, target: str, args: dict[str, Any], input_name: str
    ) -> Job:
        from keel.jobs import JobSpec
        from keel.server.settings import absolute_location

        settings = self.client.settings
        env = {
            # the job runs in the pipeline's folder: a relative store would be another one
            "KEEL_STORE": absolute_location(settings.store),
            "KEEL_ARTIFACTS": absolute_location(settings.artifacts),
            "KEEL_PROJECT": settings.project,
            "KEEL_CACHE_DIR": str(settings.cache_dir),
            "PYTHONDONTWRITEBYTECODE": "1",  # keep the pipeline's folder as uploaded
        }
        if settings.storage_options:  # the job's client reaches the artifacts as the server's
            env["KEEL_STORAGE_OPTIONS"] = json.dumps(dict(settings.storage_options))
        spec = JobSpec(
            target=target,
            args=args,
            name=f"{kind} {pipeline.name} on {input_name}",
            cwd=str(pipeline.code_dir),  # mlopen code may open its support files by name
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            env=env,
            labels={"app": APP_LABEL, "pipeline": pipeline.name, "kind": kind},
        )
        return self.executor.submit(spec)

    def get(self, job_id: str) -> Job:
        """A pipeline job by id (other jobs of the executor are not found here)."""
        job = self.executor.status(job_id)
        if job.labels.get("app") != APP_LABEL:
            raise NotFound(f"no pipeline job {job_id!r}")
        return job

    def list(self, pipeline: str | None = None, limit: int = 50) -> list[Job]:
        labels = {"app": APP_LABEL, **({"pipeline": pipeline} if pipeline else {})}
        return self.executor.list(labels=labels, limit=limit)


# --------------------------------------------------------------------------- job side


def _client(tags: dict[str, Any], stores: dict[str, str | None] | None = None) -> Client:
    """The store client of a job: every run it starts carries ``tags`` from its start (so a
    run stopped half-way is still found by them) and is reported to the job at once.
    ``stores`` (``store``, ``artifacts``, ``project``; the CLI's) wins over the environment."""
    from keel.jobs import report
    from keel.tracking.client import Client

    class ReportingClient(Client):
        def start_run(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["tags"] = {**(kwargs.get("tags") or {}), **tags}
            run = super().start_run(*args, **kwargs)
            report(run_id=run.id, record_on_run=True)  # the job's outcome is tagged on it
            return run

    stores = stores or {}
    return ReportingClient(
        store=stores.get("store") or os.environ.get("KEEL_STORE"),
        artifacts=stores.get("artifacts") or os.environ.get("KEEL_ARTIFACTS"),
        project=stores.get("project") or os.environ.get("KEEL_PROJECT"),
    )


def _config(
    pipeline: str,
    module: str,
    code_dir: str,
    train_path: str | None = None,
    test_path: str | None = None,
    params: dict[str, Any] | None = None,
) -> Config:
    """The keel.yml a pipeline stands for: its control file as the model module, the chosen
    input files as its ``train`` and ``test`` sources."""
    import yaml

    from keel.config import parse_config

    def source(path: str, tag: str) -> dict[str, Any]:
        # Braces are placeholders in data paths: a file named {x}.csv stays itself.
        escaped = path.replace("{", "{{").replace("}", "}}")
        return {"type": "binary_file", "path": escaped, "tags": [tag]}

    sources = {}
    if train_path:
        sources["pipeline_input"] = source(train_path, "train")
    if test_path:
        sources["pipeline_test_input"] = source(test_path, "test")
    document = {
        "model": {"name": pipeline, "module": module, "params": dict(params or {})},
        "datasources": sources,
    }
    return parse_config(yaml.safe_dump(document, sort_keys=False), env={}, base_dir=code_dir)


def _tags(pipeline: str, input_name: str, submitted_by: str) -> dict[str, Any]:
    from keel.jobs import current_job_id

    tags = {"pipeline": pipeline, "input": input_name, "submitted_by": submitted_by}
    job_id = current_job_id()
    if job_id:
        tags["job"] = job_id
    return tags


def _failed(exc: Exception, run_id: str | None) -> PipelineFailed:
    """The pipeline's own error line (the run's failure holds the whole traceback)."""
    cause = exc.__cause__ or exc
    lines = str(cause).strip().splitlines()
    line = f"{type(cause).__name__}: {lines[0][:400]}" if lines else type(cause).__name__
    return PipelineFailed(line, run_id)


def train_job(
    *,
    pipeline: str,
    code_dir: str,
    module: str,
    input_name: str,
    input_path: str,
    params: dict[str, Any],
    submitted_by: str = "",
    test_path: str | None = None,
    stores: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Train ``pipeline`` on an input file: a tracked ``train`` run and a model version.

    ``stores`` names the store to use (``keel pipeline train``); a job reads its environment.
    """
    from keel.lifecycle import RunFailed, train

    client = _client(_tags(pipeline, input_name, submitted_by), stores)
    config = _config(pipeline, module, code_dir, input_path, test_path, params)
    try:
        result = train(config, client=client, fresh=True, test=bool(test_path))
    except RunFailed as exc:
        raise _failed(exc, exc.run_id) from exc.__cause__ or exc
    finally:
        client.flush()
    result.version.set_tags({"pipeline": pipeline, "input": input_name})
    client.close()
    return {
        "run_id": result.run.id,
        "model": result.version.model,
        "version": result.version.version,
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, int | float)},
    }


def run_job(
    *,
    pipeline: str,
    code_dir: str,
    module: str,
    input_name: str,
    input_path: str,
    params: dict[str, Any],
    submitted_by: str = "",
    version: int | None = None,
    stores: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Run ``pipeline`` on an input file: a tracked ``pipeline-run`` holding its results.

    ``stores`` names the store to use (``keel pipeline run``); a job reads its environment.
    """
    from keel.lifecycle import RunFailed
    from keel.lifecycle.project import Project
    from keel.lifecycle.runs import scratch, tracked_run
    from keel.lifecycle.tracker import RunTracker
    from keel.models.report import tracking
    from keel.server.pipelines.results import store_results

    client = _client(_tags(pipeline, input_name, submitted_by), stores)
    project = Project(_config(pipeline, module, code_dir), client)
    try:
        with (
            scratch("pipeline-run") as work,
            tracked_run(project, "pipeline-run", f"run {pipeline}", {}) as run,
        ):
            tracker = RunTracker(run)
            if params:
                run.log_params({f"params.{k}": v for k, v in params.items()})
            module, fitted, used = _pipeline_code(project, client, version, work)
            if used:
                run.set_tags({"model_version": used})
            with tracking(tracker):
                preds = _call_run_pipeline(module, fitted, input_path, params, input_name)
            summary = store_results(run, preds)
            run.set_tags({"rows": summary.rows, "graphs": summary.graphs})
    except RunFailed as exc:
        raise _failed(exc, exc.run_id) from exc.__cause__ or exc
    finally:
        project.close()
        client.flush()
    client.close()
    return {"run_id": run.id, "rows": summary.rows, "graphs": summary.graphs}


def _pipeline_code(
    project: Any, client: Client, version: int | None, work: Path
) -> tuple[Any, dict[str, Any], str | None]:
    """The pipeline's module (as uploaded now), what its version saved (empty when it was
    never trained: mlopen pipelines such as knn need no training) and that version."""
    from keel.models.styles import import_model_module

    name = project.name
    ref = f"{name}@{version if version is not None else 'latest'}"
    try:
        client.get_model_version(ref)
    except NotFound:
        if version is not None:
            raise InvalidInput(f"pipeline {name} has no trained version {version}") from None
        fitted: dict[str, Any] = {"models": [], "args": {}}
        used = None
    else:
        from keel.lifecycle.loading import load_version

        loaded = load_version(project, client, ref, "predict", live_code=True, work_dir=work)
        fitted, used = loaded.fitted or {"models": [], "args": {}}, loaded.ctx.version
    module = import_model_module(project.model_conf["module"], project.config.base_dir)
    return module, fitted, used


def _call_run_pipeline(
    module: Any, fitted: dict[str, Any], input_path: str, params: dict[str, Any], input_name: str
) -> dict[str, Any]:
    """mlopen's call: ``run_pipeline(input, model, args, params)``, its preds made plain.

    ``input`` is a file object like the Django ``File`` mlopen gave (named as the input file
    was uploaded); ``params`` is always a dict (mlopen passed its form's, possibly empty), its
    ``file``/``upload`` parameters file objects too.
    """
    from keel.compat.mlopen.adapter import MlopenModel, call_run_pipeline, with_files
    from keel.compat.mlopen.files import PipelineFile

    files = MlopenModel(module).file_params(run=True)
    inputs = PipelineFile(input_path, name=input_name)
    name = module.__name__.rpartition(".")[2]
    return call_run_pipeline(module, fitted, inputs, with_files(dict(params), files), name)
