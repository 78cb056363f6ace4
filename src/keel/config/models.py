"""The sections of keel.yml as pydantic models.

Unknown keys are errors everywhere except where a section is open by design: ``dbms``
entries (extra keys are SQLAlchemy ``create_engine`` arguments) and ``model`` (extra keys
are the model's own settings, handed to model code). ``datasources`` and ``datasinks`` are
kept as plain mappings here and checked by :mod:`keel.data` against the model of each entry's
type, once ``plugins`` have been imported and every type is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class Section(BaseModel):
    """A closed section: every key must be known."""

    model_config = ConfigDict(extra="forbid")


class StoreSection(Section):
    """Where metadata and artifacts live (``store: URL`` is short for ``store: {url: URL}``)."""

    url: str | None = None
    artifacts: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)


class ModelStoreSection(Section):
    """ML Launchpad's ``model_store: {location: DIR}``: an embedded keel store in DIR.

    DIR is read relative to the config file. It is another way to write ``store: DIR``, so a
    config giving both is refused (keep one).
    """

    location: str = Field(min_length=1)


class DbmsSection(BaseModel):
    """A named database connection used by ``dbms.<name>`` data sources and sinks.

    ``type: sql`` (the default) takes a SQLAlchemy ``connection_string``; ``type: oracle``
    may give ``host``/``port``/``service_name``/``user``/``password`` instead. ``options``
    become the driver's ``connect_args``; any other key is passed to ``create_engine``. Any
    other ``type`` (``impala``, ``hive``…) is served by a plugin registered as
    ``dbms.<type>`` (checked when a data source uses the connection).
    """

    model_config = ConfigDict(extra="allow")

    # Anything that may carry a credential stays out of repr (and so out of logs).
    type: str = Field(default="sql", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    connection_string: str | None = Field(default=None, repr=False)
    options: dict[str, Any] = Field(default_factory=dict, repr=False)
    host: str | None = None
    port: int | None = None
    service_name: str | None = None
    user: str | None = Field(default=None, repr=False)
    password: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _has_target(self) -> DbmsSection:
        if self.connection_string is None and self.type in ("sql", "oracle"):
            if self.type == "sql":
                raise ValueError(
                    "connection_string is required, e.g. postgresql+psycopg://user@host/db"
                )
            if not (self.host and self.service_name):
                raise ValueError("an oracle connection needs host and service_name")
        return self

    @property
    def engine_kwargs(self) -> dict[str, Any]:
        """The extra keys, meant for ``sqlalchemy.create_engine``."""
        return dict(self.model_extra or {})


class ModelSection(BaseModel):
    """The model keel trains and serves; extra keys are the model's own settings."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    version: str | None = None  # the label of the versions trained from this config
    module: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class ApiSection(BaseModel):
    """The prediction API built from config (filled in by the serving issue)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)


class JobsSection(Section):
    """Where train, retest, generate-dataset and pipeline jobs run (``keel jobs``).

    ``executor`` is ``local`` (a process per job on this machine), ``dask`` (a Dask
    distributed cluster at ``scheduler``, or env ``KEEL_DASK_SCHEDULER``) or the name of an
    executor a plugin registers (``options`` are its keyword arguments). The name is checked
    when a job is submitted, once plugins are loaded.
    """

    executor: str = Field(default="local", pattern=NAME_PATTERN)
    # dask: the scheduler's address, e.g. tcp://10.0.0.5:8786
    scheduler: str | None = None
    # stop a job after this many seconds of running (None: no limit)
    timeout_s: float | None = Field(default=None, gt=0)
    # where job records live (default: jobs/ beside an embedded store, else in the cache)
    jobs_dir: str | None = None
    # local: how many jobs run at once (default: the number of CPUs)
    max_parallel: int | None = Field(default=None, ge=1)
    # dask: how long to wait for the scheduler to answer
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # dask batch-predict: the size of the pieces a CSV source is split into
    partition_mb: float = Field(default=64.0, gt=0)
    # keyword arguments of a plugin's executor
    options: dict[str, Any] = Field(default_factory=dict)
    # environment variables a job process receives besides keel's own allow-list (the
    # store's credentials, PATH, locale…); never the server's session key
    env: list[str] = Field(default_factory=list)


class ServerSection(Section):
    """The platform server (``keel server``): access, uploads and pipeline jobs."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Anyone may read without logging in (never write); off unless the config says so.
    anonymous_read: bool = False
    max_upload_mb: float = Field(default=50.0, gt=0)
    job_timeout_s: float = Field(default=600.0, gt=0)
    # The address space a pipeline job (and get_params) may take, in MB; null: no limit.
    job_memory_mb: int | None = Field(default=2048, ge=64)
    # Mark the session cookie Secure on every answer, for TLS ended where keel cannot see
    # it; over https (or X-Forwarded-Proto: https from a trusted proxy) it is anyway.
    secure_cookies: bool = False
    # Signs session cookies; every replica behind a load balancer needs the same one.
    secret_key_var: str = "KEEL_SECRET_KEY"
    # the key itself, when keel.yml names another variable: ``secret_key_var: MY_KEY`` is
    # read as a secret reference (like every ``*_var`` key) and arrives here as its value
    secret_key: str | None = Field(default=None, repr=False)
    # Uploaded pipelines, input files, uploads in flight (relative to keel.yml); replicas
    # must share it. Default: server/ beside an embedded store, else in the local cache.
    work_dir: str | None = None
    # Request limits, checked before a body is read (413 over them): JSON and form bodies of
    # logged-in callers; anything a caller without credentials may send (the login form,
    # anonymous MLflow searches); how deep a JSON body or query may nest.
    max_request_mb: float = Field(default=8.0, gt=0)
    # an artifact streamed to the store through the server (a blob, MLflow's artifact proxy)
    max_artifact_mb: float = Field(default=10240.0, gt=0)
    max_anonymous_request_kb: float = Field(default=64.0, gt=0)
    max_json_depth: int = Field(default=32, ge=2, le=500)
    # MLflow's --default-artifact-root: an MLflow experiment without a location of its own
    # keeps its files at <root>/<experiment id> (MLflow's client writes there itself); null:
    # mlflow-artifacts:/<id>, through the server into keel's artifact store.
    mlflow_artifact_root: str | None = None
    # Slow clients: the time to send a request's headers, and the longest pause in a body.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    # The longest a query may run (PostgreSQL statement_timeout, SQLite, $regex matching).
    query_timeout_s: float = Field(default=10.0, gt=0)
    # Failed logins: this many per user or client address are free, then each waits twice
    # as long as the one before (429 with Retry-After), up to login_max_delay_s.
    login_free_attempts: int = Field(default=5, ge=1)
    login_max_delay_s: float = Field(default=900.0, gt=0)


DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|min|h|d|w)\s*$"


class DriftTestSection(Section):
    """One drift test and its threshold (``threshold`` omitted: the test's default)."""

    test: str = Field(pattern=r"^(auto|ks|chisquare|z|wasserstein|jensenshannon|psi)$")
    threshold: float | None = Field(default=None, gt=0)


class LabelsSection(Section):
    """Late ground truth: a data source whose rows carry an invocation's request id and the
    true value, joined to the records to track the model's metric per window."""

    source: str = Field(min_length=1)
    id_column: str = "request_id"
    label_column: str = Field(min_length=1)
    # the output field compared with the label (a flattened output name, e.g. ``species``)
    prediction: str = Field(min_length=1)
    metric: str = Field(default="auto", pattern=r"^(auto|accuracy|mae|rmse)$")


class MonitoringSection(Section):
    """How a model's live inputs and outputs are compared with its training data.

    The defaults are Evidently's: for references of up to ``small_reference_rows`` rows KS
    (numbers), chi-squared (categories) and a Z-test (binary) at p < 0.05; above that
    Wasserstein distance normalised by the reference's standard deviation (numbers) and
    Jensen-Shannon distance (categories) at 0.1; the dataset drifts when ``drift_share`` of the
    features drift.
    """

    enabled: bool = True  # reference profile at train, live profiles while serving
    reference: str | None = None  # data source of the reference (default: what training read)
    features: list[str] | None = None  # input columns compared (default: every one seen)
    exclude: list[str] = Field(default_factory=list)  # e.g. the label column of the train data
    outputs: bool = True  # profile and compare the model's outputs too
    output_sample_rows: int = Field(default=10_000, ge=1)
    window: str = Field(default="1h", pattern=DURATION_PATTERN)  # live profile windows
    flush_s: float = Field(default=30.0, gt=0)  # a live window's profile is stored this often
    small_reference_rows: int = Field(default=1_000, ge=1)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    numeric: DriftTestSection | None = None  # one test for every number feature
    categorical: DriftTestSection | None = None  # one test for every category feature
    per_feature: dict[str, DriftTestSection] = Field(default_factory=dict)
    labels: LabelsSection | None = None
    # quantile sketch size: k=1000 has a rank error of ~0.35% (Wasserstein within ~0.015 of
    # the exact value on a million rows); 200 is 5x smaller and ~5x less precise
    kll_k: int = Field(default=1000, ge=8, le=65535)
    max_categories: int = Field(default=1024, ge=8, le=1 << 20)


class SageMakerVpcSection(Section):
    """ML2P's ``vpc_config``: the security groups and subnets jobs and endpoints run in."""

    security_groups: list[str] = Field(min_length=1)
    subnets: list[str] = Field(min_length=1)


class SageMakerTrainSection(Section):
    """How ``keel sagemaker training-job create`` trains (unset keys: ``sagemaker:``'s)."""

    instance_type: str | None = None  # e.g. ml.m5.large
    image: str | None = None  # ECR image URI (default: sagemaker.image)
    role: str | None = None  # IAM role ARN (default: sagemaker.role)
    volume_gb: int = Field(default=20, ge=1)
    max_runtime_s: int = Field(default=3600, ge=1)
    # SageMaker's HyperParameters (strings on the wire): the run's params in keel
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    vpc_config: SageMakerVpcSection | None = None


class SageMakerDeploySection(Section):
    """How ``keel sagemaker model|endpoint create`` serve (unset keys: ``sagemaker:``'s)."""

    instance_type: str | None = None  # e.g. ml.t2.medium
    image: str | None = None
    role: str | None = None
    record_invokes: bool = False  # ML2P_RECORD_INVOKES: each invocation recorded to S3
    instance_count: int = Field(default=1, ge=1)
    workers: int | None = Field(default=None, ge=1)  # SAGEMAKER_MODEL_SERVER_WORKERS
    vpc_config: SageMakerVpcSection | None = None


class SageMakerSection(Section):
    """AWS SageMaker, where ``keel sagemaker …`` trains and serves (ML2P's ml2p.yml keys).

    ``bucket`` is ML2P's ``s3folder``: datasets go to ``{bucket}/datasets/NAME/``, training
    output to ``{bucket}/models/``. Names of jobs, models and endpoints are prefixed with
    ``project-`` (default: the model's name). ``endpoint_url`` points every AWS client at
    another server (moto, LocalStack); botocore's ``AWS_ENDPOINT_URL*`` variables work too.
    """

    bucket: str
    role: str | None = None
    image: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    project: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9\-]*$")
    train: SageMakerTrainSection = Field(default_factory=SageMakerTrainSection)
    deploy: SageMakerDeploySection = Field(default_factory=SageMakerDeploySection)
    vpc_config: SageMakerVpcSection | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("bucket")
    @classmethod
    def _s3_folder(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?", value):
            raise ValueError(
                "expected an S3 folder s3://BUCKET[/PREFIX] (bucket names: 3-63 lower-case "
                "letters, digits, dots, dashes), e.g. s3://my-models/iris"
            )
        return value


class KeelConfig(Section):
    """The whole of keel.yml."""

    project: str | None = Field(default=None, pattern=NAME_PATTERN)
    store: StoreSection = Field(default_factory=StoreSection)
    model_store: ModelStoreSection | None = None
    plugins: list[str] = Field(default_factory=list)
    dbms: dict[str, DbmsSection] = Field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    datasinks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model: ModelSection | None = None
    api: ApiSection | None = None
    jobs: JobsSection | None = None
    server: ServerSection = Field(default_factory=ServerSection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)
    sagemaker: SageMakerSection | None = None

    @field_validator("store", mode="before")
    @classmethod
    def _store_url(cls, value: Any) -> Any:
        if value is None:
            return {}
        return {"url": value} if isinstance(value, str) else value

    @field_validator("model_store", mode="after")
    @classmethod
    def _one_store(cls, value: Any, info: ValidationInfo) -> Any:
        store = info.data.get("store")
        if value is not None and store is not None and (store.url or store.artifacts):
            raise ValueError(
                "store: and model_store: both say where models are kept: keep one "
                "(model_store: {location: DIR} is short for store: DIR)"
            )
        return value

    def resolved_store(self, base_dir: Path) -> StoreSection:
        """``store:``, or the embedded store ``model_store.location`` names (relative to
        ``base_dir``, the config file's folder)."""
        if self.model_store is None:
            return self.store
        folder = (base_dir / Path(self.model_store.location).expanduser()).resolve()
        return self.store.model_copy(update={"url": str(folder)})

    @field_validator("dbms", "datasources", "datasinks", "plugins", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any, info: ValidationInfo) -> Any:
        # "datasources:" with nothing under it is YAML null: treat as empty.
        if value is None:
            return [] if info.field_name == "plugins" else {}
        return value
