"""ML Launchpad's ``mllaunchpad.config``: reading a config file into a dict, checked by keel.

``get_validated_config(filename)`` returns the config as the plain dict ML Launchpad code
expects (``conf["model"]["name"]``), read and checked by :mod:`keel.config` (``!include``,
environment variables, every section and data source type), plus ML Launchpad's own
requirements (``model: name, version, module`` and where models are kept). The dict
remembers the keel config it came from (:func:`keel_config`), so the functions of
:mod:`keel.compat.launchpad` take it as ML Launchpad's did; a dict changed or built by hand
is checked again when used.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.config import Config
    from keel.tracking.client import Client

__all__ = [
    "CONFIG_DEFAULT",
    "LaunchpadConfig",
    "get_validated_config",
    "get_validated_config_str",
    "keel_config",
]

CONFIG_DEFAULT = "./LAUNCHPAD_CFG.yml"
CONFIG_ENV = "LAUNCHPAD_CFG"

_REQUIRED_MODEL_KEYS = ("name", "version", "module")


class LaunchpadConfig(dict):  # type: ignore[type-arg]
    """The config as a plain dict, remembering the checked keel config behind it."""

    keel: Config
    _as_read: dict[str, Any]

    @classmethod
    def of(cls, config: Config) -> LaunchpadConfig:
        raw = copy.deepcopy(config.raw)
        made = cls(raw)
        made.keel = config
        made._as_read = copy.deepcopy(raw)
        return made

    def __deepcopy__(self, memo: dict[int, Any]) -> LaunchpadConfig:
        made = LaunchpadConfig(copy.deepcopy(dict(self), memo))
        made.keel = self.keel
        made._as_read = self._as_read
        return made


def get_validated_config(filename: str | os.PathLike[str] | None = None) -> LaunchpadConfig:
    """Read and check the config file ``filename``.

    Default: the file named by the environment variable ``LAUNCHPAD_CFG``, else
    ``./LAUNCHPAD_CFG.yml``. Relative paths in it (data files, ``model_store.location``)
    are read against the file's folder.
    """
    from keel.config import load_config

    path = filename if filename is not None else os.environ.get(CONFIG_ENV) or CONFIG_DEFAULT
    config = load_config(path)
    return _checked(config)


def get_validated_config_str(
    io: str | bytes | IO[str] | IO[bytes], base_dir: str | os.PathLike[str] = "."
) -> LaunchpadConfig:
    """Read and check a config given as text, bytes or an open file.

    Relative paths in it are read against ``base_dir`` (default: the working folder).
    """
    from keel.config import parse_config

    text: Any = io if isinstance(io, str | bytes) else io.read()
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return _checked(parse_config(text, base_dir=base_dir))


def _checked(config: Config) -> LaunchpadConfig:
    raw = config.raw
    where = config.describe()
    model = raw.get("model")
    if not isinstance(model, dict):
        raise ConfigError(
            f"{where}: missing key model: ML Launchpad configs need model: "
            "{name: ..., version: ..., module: ...}"
        )
    for key in _REQUIRED_MODEL_KEYS:
        if key not in model:
            raise ConfigError(f"{config.where(('model',))}: missing key model:{key}; add it")
    if not config.settings.store.url and config.settings.model_store is None:
        raise ConfigError(
            f"{where}: missing key model_store:location; add model_store: {{location: DIR}} "
            "(or keel's store:)"
        )
    api = raw.get("api")
    if isinstance(api, dict) and "version" in api:
        raise ConfigError(
            f"{config.where(('api', 'version'))}: api:version is not allowed; the API's "
            "version comes from model:version"
        )
    return LaunchpadConfig.of(config)


def keel_config(conf: dict[str, Any] | Config | str | os.PathLike[str] | None) -> Config:
    """The keel config behind ``conf`` (a dict from :func:`get_validated_config`, a dict
    built or changed by hand, a keel config, or a file path)."""
    from keel.config import Config, parse_config

    if isinstance(conf, Config):
        return conf
    if conf is None or isinstance(conf, str | os.PathLike):
        return get_validated_config(conf).keel
    if not isinstance(conf, dict):
        raise ConfigError(
            f"expected the config dict from get_validated_config(), got {type(conf).__name__}"
        )
    known = getattr(conf, "keel", None)
    if known is not None and dict(conf) == getattr(conf, "_as_read", None):
        return known  # type: ignore[no-any-return]
    import yaml

    base = known.base_dir if known is not None else Path.cwd()
    try:
        text = yaml.safe_dump(dict(conf), sort_keys=False)
    except yaml.YAMLError as exc:
        raise ConfigError(f"the config dict cannot be read as YAML: {exc}") from None
    return _checked(parse_config(text, base_dir=base)).keel


def client_for(config: Config) -> Client:
    """The tracking client of ``config``'s store (also for configs read from text)."""
    from keel.tracking.client import Client

    if config.path is not None and config.path.is_file():
        return Client(config=config.path)
    store = config.store
    return Client(
        store=os.environ.get("KEEL_STORE") or store.url,
        artifacts=os.environ.get("KEEL_ARTIFACTS") or store.artifacts,
        project=os.environ.get("KEEL_PROJECT") or config.project,
        storage_options=dict(store.storage_options) or None,
    )
