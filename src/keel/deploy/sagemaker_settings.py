"""What ``keel sagemaker`` needs to know about AWS, read from keel.yml or an ml2p.yml, and
ML2P's naming rules.

Two sources give the same :class:`SageMakerSettings`:

* keel.yml's ``sagemaker:`` section (:class:`keel.config.models.SageMakerSection`):
  ``bucket``, ``role``, ``image`` (defaults of ``train:`` and ``deploy:``), ``region``,
  ``endpoint_url``, ``project`` (the name prefix; default the model's name), ``train:``,
  ``deploy:``, ``vpc_config``, ``tags``;
* an ML2P project's ml2p.yml, unchanged: ``project``, ``s3folder``, ``defaults.image|role``,
  ``train:``/``deploy:``/``dataset:`` sections (a section's key wins over ``defaults``), and
  the ``models:`` entry in use (``ML2P_MODEL_CLS``).

Names follow ML2P (:func:`validate_name`): datasets ``NAME-YYYYMMDD``, training jobs
``NAME-X-Y[-dev]``, models ``NAME-X-Y-Z[-dev]``, endpoints
``NAME-X-Y-Z[-dev][-live|-analysis|-test]``; in AWS each is prefixed with ``{project}-``.
Nothing here talks to AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from keel.config import Config

__all__ = [
    "S3Folder",
    "SageMakerSettings",
    "model_name_for_endpoint",
    "settings_from_config",
    "training_job_name_for_model",
    "validate_name",
]

#: ML2P's name patterns (ml2p/cli_commands/utils.py VALIDATION_REGEXES)
NAME_PATTERNS = {
    "dataset": r"^(?P<model>[a-zA-Z0-9\-]+)-(?P<date>[0-9]{8})$",
    "training-job": (
        r"^(?P<model>[a-zA-Z0-9\-]+)-(?P<major>[0-9]+)-(?P<minor>[0-9]+)"
        r"(?P<training_suffix>\-dev)?$"
    ),
    "model": (
        r"^(?P<model>[a-zA-Z0-9\-]+)-(?P<major>[0-9]+)-(?P<minor>[0-9]+)"
        r"-(?P<patch>[0-9]+)(?P<model_suffix>\-dev)?$"
    ),
    "endpoint": (
        r"^(?P<model>[a-zA-Z0-9\-]+)-(?P<major>[0-9]+)-(?P<minor>[0-9]+)"
        r"-(?P<patch>[0-9]+)"
        r"(?P<model_suffix>\-dev)?(?P<endpoint_suffix>\-(live|analysis|test))?$"
    ),
}
#: what each name looks like, for the error (ML2P's messages, with the format its regex has)
NAME_FORMATS = {
    "dataset": ("dataset", "<model-name>-YYYYMMDD", "iris-20240131"),
    "training-job": ("training job", "<model-name>-X-Y[-dev]", "iris-1-0"),
    "model": ("model", "<model-name>-X-Y-Z[-dev]", "iris-1-0-0"),
    "endpoint": ("endpoint", "<model-name>-X-Y-Z[-dev][-live|-analysis|-test]", "iris-1-0-0-live"),
}
#: SageMaker's own rule for job, model, endpoint and endpoint-config names
AWS_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def validate_name(name: str, resource: str) -> str:
    """``name`` if it follows ML2P's convention for ``resource`` (``dataset``,
    ``training-job``, ``model``, ``endpoint``); else one :class:`InvalidInput` line."""
    what, shape, example = NAME_FORMATS[resource]
    if re.match(NAME_PATTERNS[resource], name) is None:
        raise InvalidInput(
            f"{what} name {name!r}: {what} names have the format {shape}, e.g. {example} "
            "(ML2P's naming)"
        )
    return name


def training_job_name_for_model(model_name: str) -> str:
    """ML2P's default training job of a model: ``iris-1-2-3`` → ``iris-1-2``."""
    match = re.match(NAME_PATTERNS["model"], validate_name(model_name, "model"))
    assert match is not None
    return "{model}-{major}-{minor}".format(**match.groupdict())


def model_name_for_endpoint(endpoint_name: str) -> str:
    """ML2P's default model of an endpoint: ``iris-1-2-3-live`` → ``iris-1-2-3``."""
    match = re.match(NAME_PATTERNS["endpoint"], validate_name(endpoint_name, "endpoint"))
    assert match is not None
    groups = match.groupdict()
    groups["model_suffix"] = groups["model_suffix"] or ""
    return "{model}-{major}-{minor}-{patch}{model_suffix}".format(**groups)


@dataclass(frozen=True)
class S3Folder:
    """An ``s3://bucket/prefix`` folder (ML2P's ``S3URL``)."""

    folder: str

    @property
    def bucket(self) -> str:
        return self.folder[len("s3://") :].split("/", 1)[0]

    @property
    def root(self) -> str:
        return self.folder[len("s3://") :].partition("/")[2].strip("/")

    def path(self, suffix: str) -> str:
        """The key of ``suffix`` under the folder (``prefix/suffix``)."""
        return (self.root + "/" + suffix.lstrip("/")).lstrip("/")

    def url(self, suffix: str = "") -> str:
        """``s3://bucket/prefix/suffix`` (``url()`` ends with ``/``, as ML2P's)."""
        return f"s3://{self.bucket}/{self.path(suffix)}"


@dataclass(frozen=True)
class Resources:
    """Where a training job or a model runs: image, role, instances, network."""

    image: str | None
    role: str | None
    instance_type: str | None
    vpc_config: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class SageMakerSettings:
    """Everything the SageMaker requests are built from.

    Attributes:
        project: the prefix of every name in AWS (``{project}-{name}``).
        s3: the project's S3 folder (datasets, models, recorded invocations).
        keel_model: the keel model name the trained versions are registered under.
        model_cls: ML2P's ``module.Class`` of the model (``ML2P_MODEL_CLS``), when an
            ml2p.yml's ``models:`` entry is in use.
        source: where the settings come from, for errors (``keel.yml line 12``).
        ml2p: read from an ml2p.yml (tags then say ``ml2p-project`` as ML2P's do).
    """

    project: str
    s3: S3Folder
    source: str
    train: Resources
    deploy: Resources
    keel_model: str | None = None
    model_cls: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    volume_gb: int = 20
    max_runtime_s: int = 3600
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    record_invokes: bool = False
    instance_count: int = 1
    workers: int | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)
    ml2p: bool = False

    def full_name(self, name: str) -> str:
        """``{project}-{name}``, checked against SageMaker's rule for names."""
        full = f"{self.project}-{name}"
        if not AWS_NAME.match(full):
            raise InvalidInput(
                f"{full!r} is not a SageMaker name (at most 63 letters, digits and dashes, "
                f"from project {self.project!r} in {self.source} and {name!r}): shorten it"
                + ("" if AWS_NAME.match(self.project) else " and set sagemaker.project")
            )
        return full

    def tags(self) -> list[dict[str, str]]:
        """The tags of every resource: the project's (ML2P's ``ml2p-project`` for an
        ml2p.yml, ``keel-project`` otherwise) and ``sagemaker.tags``."""
        key = "ml2p-project" if self.ml2p else "keel-project"
        return [{"Key": key, "Value": self.project}] + [
            {"Key": k, "Value": v} for k, v in self.extra_tags.items()
        ]

    def need(self, value: Any, key: str, action: str) -> Any:
        """``value``, or a ConfigError naming the missing key and what it is needed for."""
        if value in (None, ""):
            raise ConfigError(f"{self.source}: {key} is not set; it is needed to {action}")
        return value


def settings_from_config(config: Config) -> SageMakerSettings:
    """The SageMaker settings of keel.yml's ``sagemaker:`` section or of an ml2p.yml."""
    from keel.config.ml2p_file import Ml2pDocument

    if isinstance(config.document, Ml2pDocument):
        return _from_ml2p(config, config.document)
    section = config.settings.sagemaker
    if section is None:
        where = (
            f"{config.path} has no sagemaker: section"
            if config.path is not None
            else "no keel.yml found (looked for -c, KEEL_CONFIG, ./keel.yml, ./ml2p.yml)"
        )
        raise ConfigError(
            f"{where}: keel sagemaker needs one, e.g. sagemaker: {{bucket: "
            "s3://my-models/iris, role: arn:aws:iam::123456789012:role/sagemaker, image: "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris:1} (see docs/deploy.md)"
        )
    model_name = config.settings.model.name if config.settings.model is not None else None
    project = section.project or model_name or config.settings.project
    source = config.where(("sagemaker",))
    if not project:
        raise ConfigError(
            f"{source}: sagemaker.project is not set and there is no model.name to take it "
            "from: set sagemaker.project (the prefix of every SageMaker name)"
        )

    def vpc(own: Any) -> dict[str, list[str]] | None:
        chosen = own or section.vpc_config
        if chosen is None:
            return None
        return {"SecurityGroupIds": list(chosen.security_groups), "Subnets": list(chosen.subnets)}

    train, deploy = section.train, section.deploy
    return SageMakerSettings(
        project=project,
        s3=S3Folder(section.bucket),
        source=source,
        train=Resources(
            train.image or section.image,
            train.role or section.role,
            train.instance_type,
            vpc(train.vpc_config),
        ),
        deploy=Resources(
            deploy.image or section.image,
            deploy.role or section.role,
            deploy.instance_type,
            vpc(deploy.vpc_config),
        ),
        keel_model=model_name,
        region=section.region,
        endpoint_url=section.endpoint_url,
        volume_gb=train.volume_gb,
        max_runtime_s=train.max_runtime_s,
        hyperparameters=dict(train.hyperparameters),
        record_invokes=deploy.record_invokes,
        instance_count=deploy.instance_count,
        workers=deploy.workers,
        extra_tags=dict(section.tags),
    )


def _from_ml2p(config: Config, document: Any) -> SageMakerSettings:
    """ML2P's ModellingProject: a section's key, else ``defaults``'s."""
    cfg: dict[str, Any] = document.ml2p
    defaults = cfg.get("defaults") or {}

    def where(loc: tuple[str, ...]) -> str:
        """The ml2p.yml line of ``loc`` (the translated document keeps keel's keys' only)."""
        import os

        from keel.config.yamlfile import load_document

        if config.path is None:
            return "ml2p.yml"
        try:
            return load_document(config.path, os.environ).where(loc)
        except (ConfigError, OSError):
            return str(config.path)

    def get(section: str, key: str, default: Any = None) -> Any:
        own = cfg.get(section) or {}
        return own[key] if key in own else defaults.get(key, default)

    def vpc(section: str) -> dict[str, list[str]] | None:
        value = get(section, "vpc_config")
        if value is None:
            return None
        here = where((section, "vpc_config"))
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("security_groups"), list)
            or not isinstance(value.get("subnets"), list)
        ):
            raise ConfigError(
                f"{here}: vpc_config needs the keys security_groups and subnets, each a list of ids"
            )
        if not value["security_groups"]:
            raise ConfigError(f"{here}: vpc_config must contain at least one security group id")
        if not value["subnets"]:
            raise ConfigError(f"{here}: vpc_config must contain at least one subnet id")
        return {"SecurityGroupIds": value["security_groups"], "Subnets": value["subnets"]}

    def integer(section: str, key: str, default: int) -> int:
        value = get(section, key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where((section, key))}: {key} must be a whole number >= 1")
        return value

    model_type = document.model_type
    model_cls = document.model_types.get(model_type) if model_type else None
    workers = get("deploy", "workers")
    return SageMakerSettings(
        project=str(cfg["project"]),
        s3=S3Folder(str(cfg["s3folder"])),
        source=str(config.path) if config.path is not None else "ml2p.yml",
        train=Resources(
            get("train", "image"), get("train", "role"), get("train", "instance_type"), vpc("train")
        ),
        deploy=Resources(
            get("deploy", "image"),
            get("deploy", "role"),
            get("deploy", "instance_type"),
            vpc("deploy"),
        ),
        keel_model=model_type,
        model_cls=model_cls,
        region=defaults.get("region"),  # not ML2P's: AWS_DEFAULT_REGION otherwise
        endpoint_url=None,
        volume_gb=integer("train", "volume_gb", 20),
        max_runtime_s=integer("train", "max_runtime_s", 3600),
        hyperparameters=dict(get("train", "hyperparameters") or {}),
        record_invokes=bool(get("deploy", "record_invokes", False)),
        instance_count=integer("deploy", "instance_count", 1),
        workers=integer("deploy", "workers", 1) if workers is not None else None,
        ml2p=True,
    )
