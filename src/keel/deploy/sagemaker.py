"""A model's way through AWS SageMaker with ML2P's verbs, recorded in keel's store.

:class:`SageMaker` is the Python API behind ``keel sagemaker``: datasets in S3, training
jobs, models and endpoints in SageMaker, invocations through ``sagemaker-runtime``. The
requests are built by :mod:`keel.deploy.sagemaker_requests` from
:class:`~keel.deploy.sagemaker_settings.SageMakerSettings` (keel.yml's ``sagemaker:`` or an
ml2p.yml); boto3 is imported only when a call is made.

Lineage: with a keel client, every training job is also a keel run (kind ``train``, in the
model's experiment) and what it trained a keel model version:

* ``create_training_job`` starts the run, tagged ``sagemaker_training_job`` (full name),
  ``sagemaker_training_job_arn`` and ``sagemaker_dataset`` (S3 URI); its params are the
  hyperparameters;
* ``describe_training_job`` / ``wait_training_job`` bring SageMaker's status and final
  metrics into the run; once the job is ``Completed`` they download its ``model.tar.gz``
  and register the keel version in it (:func:`keel.deploy.model_dir.register_model_dir`;
  a folder without ``keel-version.json``, as an ML2P container writes, becomes a version of
  the keel model as it is), tagged with the job, then end the run;
* ``create_model`` tags that version ``sagemaker_model`` / ``sagemaker_model_arn``;
  ``create_endpoint`` tags it ``sagemaker_endpoint`` / ``sagemaker_endpoint_arn``.

So ``keel models show NAME@N`` and the UI say where a version runs. AWS errors become one
line (:class:`keel.errors.KeelError` and its kin).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.deploy import sagemaker_requests as requests
from keel.deploy.sagemaker_settings import (
    SageMakerSettings,
    model_name_for_endpoint,
    settings_from_config,
    training_job_name_for_model,
    validate_name,
)
from keel.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    KeelError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from keel.config import Config
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi, RunApi

__all__ = [
    "ENDPOINT_TAG",
    "JOB_TAG",
    "MODEL_TAG",
    "SageMaker",
    "SageMakerSettings",
    "settings_from_config",
]

log = logging.getLogger(__name__)

#: tags keel puts on runs and model versions
JOB_TAG = "sagemaker_training_job"
JOB_ARN_TAG = "sagemaker_training_job_arn"
DATASET_TAG = "sagemaker_dataset"
MODEL_TAG = "sagemaker_model"
MODEL_ARN_TAG = "sagemaker_model_arn"
ENDPOINT_TAG = "sagemaker_endpoint"
ENDPOINT_ARN_TAG = "sagemaker_endpoint_arn"
VERSION_TAG = "keel_model_version"

#: SageMaker's training job statuses and the keel run status each ends with
FINAL_STATUS = {"Completed": "finished", "Failed": "failed", "Stopped": "killed"}
#: the largest model.tar.gz keel unpacks (a guard against a damaged or hostile archive)
MAX_MODEL_BYTES = 20 * 1024**3


class SageMaker:
    """SageMaker and S3 for one project, with its lineage in a keel store.

    Args:
        settings: what to call AWS with (:func:`settings_from_config`).
        client: the keel store runs and versions are recorded in (None: no lineage).
        session: a ``boto3.session.Session`` (default: a new one in ``settings.region``).

    Example:
        >>> sm = SageMaker.from_config(load_config("keel.yml"), client=keel.Client())
        >>> sm.create_dataset("iris-20240131")                      # doctest: +SKIP
        >>> sm.upload_dataset("iris-20240131", "data/iris_train.csv")  # doctest: +SKIP
        >>> sm.create_training_job("iris-1-0", "iris-20240131")      # doctest: +SKIP
        >>> sm.wait_training_job("iris-1-0")                         # doctest: +SKIP
        >>> sm.create_model("iris-1-0-0")                            # doctest: +SKIP
        >>> sm.create_endpoint("iris-1-0-0-live")                    # doctest: +SKIP
        >>> sm.invoke_endpoint("iris-1-0-0-live", '{"sepal_length": 5.1}')  # doctest: +SKIP
    """

    def __init__(
        self, settings: SageMakerSettings, client: Client | None = None, session: Any = None
    ) -> None:
        self.settings = settings
        self.client = client
        self._session = session
        self._clients: dict[str, Any] = {}

    @classmethod
    def from_config(
        cls, config: Config, client: Client | None = None, session: Any = None
    ) -> SageMaker:
        return cls(settings_from_config(config), client=client, session=session)

    # --- AWS clients --------------------------------------------------------------------

    def aws(self, service: str) -> Any:
        """The boto3 client of ``service`` (``s3``, ``sagemaker``, ``sagemaker-runtime``),
        at ``settings.endpoint_url`` when set (else botocore's ``AWS_ENDPOINT_URL*``)."""
        if service not in self._clients:
            with _aws_errors(f"{service} client"):
                if self._session is None:
                    try:
                        import boto3
                    except ImportError:
                        raise ConfigError(
                            "keel sagemaker needs boto3, which is not installed: "
                            "pip install 'keel[aws]'"
                        ) from None
                    self._session = boto3.session.Session(region_name=self.settings.region)
                kwargs = {}
                if self.settings.endpoint_url:
                    kwargs["endpoint_url"] = self.settings.endpoint_url
                self._clients[service] = self._session.client(service, **kwargs)
        return self._clients[service]

    def _call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        with _aws_errors(f"{service} {operation}"):
            return dict(getattr(self.aws(service), operation)(**params))

    # --- datasets -----------------------------------------------------------------------

    def create_dataset(self, dataset: str) -> dict[str, Any]:
        """Make a dataset folder in S3 holding a README.rst (as ML2P does)."""
        validate_name(dataset, "dataset")
        key = self.settings.s3.path(f"/datasets/{dataset}/README.rst")
        body = f"Dataset {dataset} for project {self.settings.project}.".encode()
        self._call("s3", "put_object", Bucket=self.settings.s3.bucket, Key=key, Body=body)
        return {"Dataset": dataset, "S3Uri": f"s3://{self.settings.s3.bucket}/{key}"}

    def upload_dataset(
        self, dataset: str, src: str | Path, dst: str | None = None
    ) -> dict[str, Any]:
        """Upload the file ``src`` into a dataset as ``dst`` (default: its own name)."""
        from keel.paths import check_relative_path

        validate_name(dataset, "dataset")
        source = Path(src)
        if not source.is_file():
            raise InvalidInput(f"{source}: no such file to upload")
        name = check_relative_path(dst or source.name, "DST")
        key = self.settings.s3.path(f"/datasets/{dataset}/{name}")
        with source.open("rb") as f, _aws_errors("s3 upload_fileobj"):
            self.aws("s3").upload_fileobj(Fileobj=f, Bucket=self.settings.s3.bucket, Key=key)
        return {
            "Dataset": dataset,
            "S3Uri": f"s3://{self.settings.s3.bucket}/{key}",
            "Size": source.stat().st_size,
        }

    def list_datasets(self) -> list[str]:
        """The project's datasets (the folders under ``{bucket}/datasets/``)."""
        prefix = self.settings.s3.path("/datasets/")
        names: list[str] = []
        with _aws_errors("s3 list_objects_v2"):
            pages = self.aws("s3").get_paginator("list_objects_v2")
            for page in pages.paginate(
                Bucket=self.settings.s3.bucket, Prefix=prefix, Delimiter="/"
            ):
                for item in page.get("CommonPrefixes", []):
                    names.append(item["Prefix"][len(prefix) :].rstrip("/"))
        return names

    def list_dataset_files(self, dataset: str) -> list[dict[str, Any]]:
        """The files of a dataset: ``{"filename", "size"}`` each (ML2P's ``dataset ls``)."""
        validate_name(dataset, "dataset")
        prefix = self.settings.s3.path(f"/datasets/{dataset}/")
        found: list[dict[str, Any]] = []
        with _aws_errors("s3 list_objects_v2"):
            pages = self.aws("s3").get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.settings.s3.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found.append({"filename": item["Key"][len(prefix) :], "size": item["Size"]})
        return found

    # --- training jobs ------------------------------------------------------------------

    def training_job_request(
        self, training_job: str, dataset: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The ``create_training_job`` request, names checked (nothing is sent)."""
        validate_name(training_job, "training-job")
        return requests.mk_training_job(self.settings, training_job, dataset, params)

    def create_training_job(
        self, training_job: str, dataset: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start a training job on ``dataset``'s files (and a keel run recording it).

        ``params`` are hyperparameters on top of ``sagemaker.train.hyperparameters``. A
        dataset with no file in S3 is refused before anything is started.
        """
        request = self.training_job_request(training_job, dataset, params)
        if not self._dataset_has_files(dataset):
            raise InvalidInput(
                f"dataset {dataset} has no files at {requests.dataset_url(self.settings, dataset)}"
                f"/: upload some with `keel sagemaker dataset up {dataset} FILE`"
            )
        response = self._call("sagemaker", "create_training_job", **request)
        run = self._start_job_run(request, response.get("TrainingJobArn"))
        if run is not None:
            response["KeelRunId"] = run.id
        return response

    def _dataset_has_files(self, dataset: str) -> bool:
        prefix = self.settings.s3.path(f"/datasets/{dataset}/")
        found = self._call(
            "s3", "list_objects_v2", Bucket=self.settings.s3.bucket, Prefix=prefix, MaxKeys=1
        )
        return bool(found.get("KeyCount") or found.get("Contents"))

    def _experiment(self) -> str:
        return self.settings.keel_model or self.settings.project

    def _start_job_run(self, request: dict[str, Any], arn: str | None) -> RunApi | None:
        if self.client is None:
            return None
        full = request["TrainingJobName"]
        tags = {
            JOB_TAG: full,
            DATASET_TAG: request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"],
            "sagemaker_image": request["AlgorithmSpecification"]["TrainingImage"],
            "sagemaker_instance_type": request["ResourceConfig"]["InstanceType"],
        }
        if arn:
            tags[JOB_ARN_TAG] = arn
        if self.settings.keel_model:
            tags["model"] = self.settings.keel_model
        run = self.client.start_run(
            self._experiment(), name=f"sagemaker {full}", kind="train", tags=tags
        )
        if request.get("HyperParameters"):
            run.log_params(request["HyperParameters"])
        return run

    def job_run(self, training_job: str) -> RunApi | None:
        """The keel run of a training job (None without a client or when none was made)."""
        if self.client is None:
            return None
        found = self.client.find_runs(
            {f"tags.{JOB_TAG}": self.settings.full_name(training_job)},
            sort=[("start_time", -1)],
            limit=1,
        )
        return found[0] if found else None

    def job_version(self, training_job: str) -> ModelVersionApi | None:
        """The keel model version a training job registered (None before it has)."""
        return self._tagged_version(JOB_TAG, self.settings.full_name(training_job))

    def _tagged_version(self, tag: str, value: str) -> ModelVersionApi | None:
        if self.client is None:
            return None
        found = self.client.find_model_versions(
            {f"tags.{tag}": value}, sort=[("created_at", -1)], limit=1
        )
        return found[0] if found else None

    def describe_training_job(self, training_job: str) -> dict[str, Any]:
        """SageMaker's description of a training job, after bringing its status, metrics
        and (once Completed) its model into keel; ``Keel`` says the run and version."""
        full = self.settings.full_name(training_job)
        described = self._call("sagemaker", "describe_training_job", TrainingJobName=full)
        lineage = self._sync_job(training_job, described)
        if lineage:
            described["Keel"] = lineage
        return described

    def wait_training_job(
        self, training_job: str, delay: float = 10, max_attempts: int = 30
    ) -> dict[str, Any]:
        """Wait until a training job completed or stopped (ML2P's waiter: every ``delay``
        seconds, ``max_attempts`` times), then describe it (see
        :meth:`describe_training_job`). A failed job raises :class:`KeelError` once its
        run is marked failed."""
        full = self.settings.full_name(training_job)
        try:
            with _aws_errors(f"waiting for training job {full}"):
                waiter = self.aws("sagemaker").get_waiter("training_job_completed_or_stopped")
                waiter.wait(
                    TrainingJobName=full,
                    WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts},
                )
        except KeelError:
            # a Failed job stops the waiter too: record it in the run before reporting
            with contextlib.suppress(KeelError):
                self.describe_training_job(training_job)
            raise
        return self.describe_training_job(training_job)

    def list_training_jobs(self) -> list[dict[str, Any]]:
        """The project's training jobs (names starting with ``{project}-``)."""
        return self._list("list_training_jobs", "TrainingJobSummaries", "TrainingJobName")

    def _list(self, operation: str, key: str, name_key: str) -> list[dict[str, Any]]:
        prefix = self.settings.project + "-"
        found: list[dict[str, Any]] = []
        with _aws_errors(f"sagemaker {operation}"):
            for page in self.aws("sagemaker").get_paginator(operation).paginate():
                found += [item for item in page[key] if item[name_key].startswith(prefix)]
        return found

    def _sync_job(self, training_job: str, described: dict[str, Any]) -> dict[str, Any]:
        """Bring a described job into its keel run; the run id and version ref."""
        if self.client is None:
            return {}
        full = described["TrainingJobName"]
        run = self.job_run(training_job)
        if run is None:
            run = self._adopt_job(described)
        version = self.job_version(training_job)
        status = described.get("TrainingJobStatus")
        if run.status in ("running", "scheduled"):
            metrics = {
                m["MetricName"]: m["Value"]
                for m in described.get("FinalMetricDataList", [])
                if isinstance(m.get("Value"), int | float)
            }
            if metrics:
                run.log_metrics(metrics)
            if status == "Completed" and version is None:
                version = self._register_model(training_job, described, run)
            if status in FINAL_STATUS:
                if version is not None:
                    run.set_tags({VERSION_TAG: f"{version.model}@{version.version}"})
                reason = described.get("FailureReason") or f"training job {full}: {status}"
                run.end(FINAL_STATUS[status], error=None if status == "Completed" else reason)
        lineage: dict[str, Any] = {"RunId": run.id}
        if version is not None:
            lineage["ModelVersion"] = f"{version.model}@{version.version}"
        return lineage

    def _adopt_job(self, described: dict[str, Any]) -> RunApi:
        """A run for a job started outside keel (ML2P's CLI, the console)."""
        channel = (described.get("InputDataConfig") or [{}])[0]
        request = {
            "TrainingJobName": described["TrainingJobName"],
            "InputDataConfig": [channel or {"DataSource": {"S3DataSource": {"S3Uri": ""}}}],
            "AlgorithmSpecification": described.get("AlgorithmSpecification", {}),
            "ResourceConfig": described.get("ResourceConfig", {}),
            "HyperParameters": described.get("HyperParameters"),
        }
        request["AlgorithmSpecification"].setdefault("TrainingImage", "")
        request["ResourceConfig"].setdefault("InstanceType", "")
        run = self._start_job_run(request, described.get("TrainingJobArn"))
        assert run is not None
        return run

    def _register_model(
        self, training_job: str, described: dict[str, Any], run: RunApi
    ) -> ModelVersionApi:
        """Download the job's model.tar.gz and register the version in it."""
        from keel.deploy.model_dir import is_model_dir, read_model_dir, register_model_dir

        assert self.client is not None
        full = described["TrainingJobName"]
        url = (described.get("ModelArtifacts") or {}).get(
            "S3ModelArtifacts"
        ) or requests.model_data_url(self.settings, training_job)
        tags = {JOB_TAG: full}
        if described.get("TrainingJobArn"):
            tags[JOB_ARN_TAG] = described["TrainingJobArn"]
        work = Path(tempfile.mkdtemp(prefix="keel-sagemaker-"))
        try:
            folder = work / "model"
            self._download_model(url, work / "model.tar.gz", folder)
            if is_model_dir(folder):
                info = read_model_dir(folder)
                numbers = {k: v for k, v in info.metrics.items() if isinstance(v, int | float)}
                if numbers:
                    run.log_metrics(numbers)
                return register_model_dir(self.client, folder, run=run, tags=tags)
            # an ML2P container's /opt/ml/model: the folder as it is is the version
            name = self.settings.need(
                self.settings.keel_model, "model.name", f"register the model of {full}"
            )
            return run.log_model_version(name, folder, path_in_run="model", tags=tags)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _download_model(self, url: str, archive: Path, folder: Path) -> None:
        import tarfile

        bucket, _, key = url[len("s3://") :].partition("/")
        if not url.startswith("s3://") or not key:
            raise KeelError(f"training job model {url!r} is not an s3:// URL")
        with archive.open("wb") as f, _aws_errors(f"downloading {url}"):
            self.aws("s3").download_fileobj(Bucket=bucket, Key=key, Fileobj=f)
        folder.mkdir()
        try:
            with tarfile.open(archive, "r:gz") as tar:
                total = sum(m.size for m in tar.getmembers())
                if total > MAX_MODEL_BYTES:
                    raise KeelError(f"{url} unpacks to {total} bytes, more than keel takes")
                # "data": no absolute paths, links out of the folder, devices or setuid bits
                tar.extractall(folder, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise KeelError(f"{url} is not a readable model.tar.gz: {exc}") from None

    # --- models -------------------------------------------------------------------------

    def model_request(
        self, model_name: str, training_job: str | None = None, keel_version: str | None = None
    ) -> dict[str, Any]:
        """The ``create_model`` request (nothing is sent); the training job defaults to
        the model name without its patch number, as in ML2P."""
        validate_name(model_name, "model")
        job = training_job or training_job_name_for_model(model_name)
        return requests.mk_model(self.settings, model_name, job, keel_version)

    def create_model(self, model_name: str, training_job: str | None = None) -> dict[str, Any]:
        """Create a SageMaker model from a training job's model.tar.gz, and tag the keel
        version that job registered with it."""
        validate_name(model_name, "model")
        job = training_job or training_job_name_for_model(model_name)
        version = self._version_of_job(job)
        ref = f"{version.model}@{version.version}" if version is not None else None
        request = self.model_request(model_name, job, ref)
        response = self._call("sagemaker", "create_model", **request)
        if version is not None:
            version.set_tags(
                {MODEL_TAG: request["ModelName"], MODEL_ARN_TAG: response.get("ModelArn", "")}
            )
            response["Keel"] = {"ModelVersion": ref}
        return response

    def _version_of_job(self, training_job: str) -> ModelVersionApi | None:
        """The job's keel version; a job not described since it completed is first."""
        if self.client is None:
            return None
        version = self.job_version(training_job)
        if version is not None:
            return version
        try:
            self.describe_training_job(training_job)
        except KeelError as exc:  # a job keel cannot see: the model is made without lineage
            log.info("no keel version for training job %s: %s", training_job, exc)
            return None
        return self.job_version(training_job)

    def describe_model(self, model_name: str) -> dict[str, Any]:
        return self._call(
            "sagemaker", "describe_model", ModelName=self.settings.full_name(model_name)
        )

    def list_models(self) -> list[dict[str, Any]]:
        return self._list("list_models", "Models", "ModelName")

    def delete_model(self, model_name: str) -> dict[str, Any]:
        return self._call(
            "sagemaker", "delete_model", ModelName=self.settings.full_name(model_name)
        )

    # --- endpoints ----------------------------------------------------------------------

    def create_endpoint(self, endpoint_name: str, model_name: str | None = None) -> dict[str, Any]:
        """Create the endpoint config and the endpoint serving a model (default: the
        endpoint name without its -live/-analysis/-test suffix), and tag the keel version
        it serves with the endpoint."""
        validate_name(endpoint_name, "endpoint")
        model = model_name or model_name_for_endpoint(endpoint_name)
        config = requests.mk_endpoint_config(self.settings, endpoint_name, model)
        endpoint = requests.mk_endpoint(self.settings, endpoint_name)
        self._call("sagemaker", "create_endpoint_config", **config)
        response = self._call("sagemaker", "create_endpoint", **endpoint)
        version = self._tagged_version(MODEL_TAG, self.settings.full_name(model))
        if version is not None:
            version.set_tags(
                {
                    ENDPOINT_TAG: endpoint["EndpointName"],
                    ENDPOINT_ARN_TAG: response.get("EndpointArn", ""),
                }
            )
            response["Keel"] = {"ModelVersion": f"{version.model}@{version.version}"}
        return response

    def describe_endpoint(self, endpoint_name: str) -> dict[str, Any]:
        """SageMaker's description, with ``EndpointUrl`` (the invocation URL), as ML2P's."""
        described = self._call(
            "sagemaker", "describe_endpoint", EndpointName=self.settings.full_name(endpoint_name)
        )
        described["EndpointUrl"] = endpoint_url_for_arn(described.get("EndpointArn", ""))
        return described

    def wait_endpoint(
        self, endpoint_name: str, delay: float = 10, max_attempts: int = 30
    ) -> dict[str, Any]:
        """Wait until the endpoint is InService (ML2P's waiter), then describe it."""
        full = self.settings.full_name(endpoint_name)
        with _aws_errors(f"waiting for endpoint {full}"):
            self.aws("sagemaker").get_waiter("endpoint_in_service").wait(
                EndpointName=full, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
            )
        return self.describe_endpoint(endpoint_name)

    def list_endpoints(self) -> list[dict[str, Any]]:
        return self._list("list_endpoints", "Endpoints", "EndpointName")

    def delete_endpoint(self, endpoint_name: str) -> list[dict[str, Any]]:
        """Delete the endpoint and its config (ML2P's two responses); the keel version it
        served is tagged ``sagemaker_endpoint_deleted``."""
        full = self.settings.full_name(endpoint_name)
        answers = [
            self._call("sagemaker", "delete_endpoint", EndpointName=full),
            self._call(
                "sagemaker",
                "delete_endpoint_config",
                EndpointConfigName=self.settings.full_name(endpoint_name + "-config"),
            ),
        ]
        version = self._tagged_version(ENDPOINT_TAG, full)
        if version is not None:
            version.set_tags({ENDPOINT_TAG: "", "sagemaker_endpoint_deleted": full})
        return answers

    def invoke_endpoint(self, endpoint_name: str, json_data: str | bytes) -> dict[str, Any]:
        """Make a prediction: POST ``json_data`` to the endpoint (ML2P's request: JSON in,
        JSON accepted); the answer's ``Body`` is parsed JSON (text if it is not JSON)."""
        body = json_data.encode("utf-8") if isinstance(json_data, str) else json_data
        try:
            json.loads(body)
        except ValueError as exc:
            raise InvalidInput(
                f"the data to invoke {endpoint_name} with is not JSON: {exc}"
            ) from None
        response = self._call(
            "sagemaker-runtime",
            "invoke_endpoint",
            EndpointName=self.settings.full_name(endpoint_name),
            Body=body,
            ContentType="application/json",
            Accept="application/json",
        )
        raw = response["Body"].read()
        try:
            response["Body"] = json.loads(raw)
        except ValueError:
            response["Body"] = raw.decode("utf-8", errors="replace")
        return response


def endpoint_url_for_arn(endpoint_arn: str) -> str | None:
    """The invocation URL of an endpoint ARN (ML2P's ``endpoint_url_for_arn``)."""
    import re

    match = re.match(
        r"^arn:aws:sagemaker:(?P<region>[^:]*):(?P<account>[^:]*):endpoint/(?P<endpoint>.*)$",
        endpoint_arn,
    )
    if not match:
        return None
    return (
        "https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint}/invocations".format(
            **match.groupdict()
        )
    )


@contextlib.contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    """botocore's exceptions as one keel error line saying what failed and what to do."""
    from botocore import exceptions as bx

    try:
        yield
    except bx.NoRegionError:
        raise ConfigError(
            f"{what}: no AWS region: set sagemaker.region in keel.yml or AWS_DEFAULT_REGION"
        ) from None
    except (bx.NoCredentialsError, bx.PartialCredentialsError) as exc:
        raise ConfigError(
            f"{what}: {exc}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except bx.EndpointConnectionError as exc:
        raise StoreUnavailable(
            f"{what}: {exc} (check sagemaker.endpoint_url or AWS_ENDPOINT_URL, and the network)"
        ) from None
    except bx.ParamValidationError as exc:
        raise InvalidInput(f"{what}: {' '.join(str(exc).split())}") from None
    except bx.WaiterError as exc:
        last = exc.last_response or {}
        reason = last.get("FailureReason") or last.get("Error", {}).get("Message") or exc.reason
        status = last.get("TrainingJobStatus") or last.get("EndpointStatus") or ""
        raise KeelError(f"{what}: {status + ': ' if status else ''}{reason}") from None
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", str(exc))
        kind = (
            Conflict if "already exist" in message.lower() or code == "ResourceInUse" else KeelError
        )
        raise kind(f"{what}: {code}: {message}") from None
    except bx.BotoCoreError as exc:
        raise KeelError(f"{what}: {exc}") from None
