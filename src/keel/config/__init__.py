"""keel.yml: where it is found, how it is read, and the typed sections it holds.

The file is the first of: an explicit path (``-c FILE``), env ``KEEL_CONFIG``,
``./keel.yml``, env ``LAUNCHPAD_CFG``, ``./LAUNCHPAD_CFG.yml`` (ML Launchpad's names, so its
projects run unchanged), ``./ml2p.yml`` (ML2P's, translated by :mod:`keel.config.ml2p_file`,
as is any file with ML2P's ``s3folder`` key); :attr:`Config.origin` says which. Reading
supports ``!include other.yml`` (relative to the including file), ``${ENV_VAR}`` (and
``${ENV_VAR:-default}``), and keys ending in ``_var`` whose value names the environment
variable holding the real value (``password_var: DB_PASSWORD`` gives ``password``). Sections
are checked by the pydantic models in :mod:`keel.config.models`; :mod:`keel.data` checks
each data source and sink against the model of its type. :meth:`Config.snapshot` is the
secret-free copy to store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config.yamlfile import Document, Loc, dotted
from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.config.models import KeelConfig, StoreSection

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "Config",
    "ConfigError",
    "dotted",
    "find_config",
    "load_config",
    "parse_config",
    "validate_section",
]

DEFAULT_CONFIG_NAME = "keel.yml"
#: ML Launchpad's environment variable and file name, looked for after keel's own
LAUNCHPAD_CONFIG_ENV = "LAUNCHPAD_CFG"
LAUNCHPAD_CONFIG_NAME = "LAUNCHPAD_CFG.yml"
#: ML2P's project file, looked for last (read by keel.config.ml2p_file)
ML2P_CONFIG_NAME = "ml2p.yml"


@dataclass(frozen=True)
class Config:
    """A read and checked keel.yml (or the defaults, when there is none)."""

    path: Path | None
    # how the file was found: "-c", "KEEL_CONFIG", "./keel.yml", "LAUNCHPAD_CFG",
    # "./LAUNCHPAD_CFG.yml" or "defaults"
    origin: str
    settings: KeelConfig
    document: Document | None = field(default=None, repr=False)

    @property
    def project(self) -> str | None:
        return self.settings.project

    @property
    def store(self) -> StoreSection:
        """``store:``; ML Launchpad's ``model_store: {location: DIR}`` is an embedded store in
        DIR, relative to this file."""
        return self.settings.resolved_store(self.base_dir)

    @property
    def raw(self) -> dict[str, Any]:
        """The resolved mapping (secrets included: never log or store it)."""
        return self.document.value if self.document is not None else {}

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the config are read against."""
        return self.path.parent if self.path is not None else Path.cwd()

    def describe(self) -> str:
        """Which config is in use, for a person: ``config ./keel.yml (found in .)``."""
        if self.path is None:
            return (
                "no config file (defaults; looked for -c, KEEL_CONFIG, ./keel.yml, "
                "LAUNCHPAD_CFG, ./LAUNCHPAD_CFG.yml, ./ml2p.yml)"
            )
        how = {
            "-c": "given with -c",
            "KEEL_CONFIG": "from KEEL_CONFIG",
            "./keel.yml": "found in the working folder",
            "LAUNCHPAD_CFG": "from LAUNCHPAD_CFG",
            "./LAUNCHPAD_CFG.yml": "found in the working folder",
            "./ml2p.yml": "found in the working folder, ML2P's project file",
        }[self.origin]
        return f"config {self.path} ({how})"

    def where(self, loc: Loc) -> str:
        """File and line of a key, e.g. ``keel.yml line 12``."""
        return self.document.where(loc) if self.document is not None else "config"

    def snapshot(self) -> dict[str, Any]:
        """The config as written (includes expanded, ``${VAR}`` and ``*_var`` kept): no secrets."""
        import copy

        return copy.deepcopy(self.document.snapshot) if self.document is not None else {}

    def scrub(self, text: str) -> str:
        """``text`` with any secret read through a ``*_var`` key masked."""
        return self.document.scrub(text) if self.document is not None else text

    def write_with(self, changes: Mapping[Loc, Any], target: Path) -> Config:
        """Write this config as written, with the values at ``changes``' key paths set, to
        ``target`` (beside the original, so relative paths keep their meaning), and read it.

        Used where a platform hands settings in another form (SageMaker's hyperparameters and
        channels): the result is an ordinary keel.yml a person can read afterwards.
        """
        import copy

        import yaml

        written = copy.deepcopy(self.document.snapshot) if self.document is not None else {}
        for loc, value in changes.items():
            node = written
            for key in loc[:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{self.where(loc)}: {dotted(loc)} is not a mapping")
            node[loc[-1]] = value
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(
            "# written by keel from "
            + str(self.path)
            + " with settings given at run time\n"
            + yaml.safe_dump(written, sort_keys=False),
            encoding="utf-8",
        )
        partial.replace(target)
        return load_config(target)


def find_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path, str] | None:
    """The config file to use and how it was found, or None (explicit paths must exist)."""
    env = os.environ if env is None else env
    if path is not None:
        return _named_file(Path(path), "given with -c"), "-c"
    named = env.get("KEEL_CONFIG")
    if named:
        return _named_file(Path(named), "from KEEL_CONFIG"), "KEEL_CONFIG"
    local = Path(DEFAULT_CONFIG_NAME)
    if local.is_file():
        return local, "./keel.yml"
    named = env.get(LAUNCHPAD_CONFIG_ENV)
    if named:
        return _named_file(Path(named), f"from {LAUNCHPAD_CONFIG_ENV}"), LAUNCHPAD_CONFIG_ENV
    local = Path(LAUNCHPAD_CONFIG_NAME)
    if local.is_file():
        return local, f"./{LAUNCHPAD_CONFIG_NAME}"
    local = Path(ML2P_CONFIG_NAME)  # an ML2P project's file (keel.config.ml2p_file)
    return (local, f"./{ML2P_CONFIG_NAME}") if local.is_file() else None


def _named_file(found: Path, how: str) -> Path:
    if found.is_dir():
        raise ConfigError(
            f"config file {found} ({how}) is a folder: name the YAML file, e.g. "
            f"{found / DEFAULT_CONFIG_NAME}"
        )
    if not found.is_file():
        raise ConfigError(f"config file {found} ({how}) not found")
    return found


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Find, read and check keel.yml; the defaults when there is no file."""
    from keel.config.models import KeelConfig

    env = os.environ if env is None else env
    found = find_config(path, env)
    if found is None:
        return Config(None, "defaults", KeelConfig())
    file, origin = found
    return _checked(file, origin, _load_document(file, env))


def parse_config(
    text: str, env: Mapping[str, str] | None = None, base_dir: str | os.PathLike[str] = "."
) -> Config:
    """Read a config from text (tests, notebooks); ``!include`` is relative to ``base_dir``."""
    from keel.config.yamlfile import load_document

    env = os.environ if env is None else env
    file = Path(base_dir) / "<text>"
    return _checked(file, "-c", load_document(file, env, text))


def _checked(file: Path, origin: str, document: Document) -> Config:
    from keel.config.models import KeelConfig

    if not isinstance(document.value, dict):
        raise ConfigError(
            f"{file}: expected a mapping of sections (project, store, datasources, …), "
            f"got {type(document.value).__name__}"
        )
    if "s3folder" in document.value:  # ML2P's ml2p.yml: read as keel settings
        from keel.config.ml2p_file import translate

        document = translate(document)
    settings = validate_section(KeelConfig, document.value, (), document)
    return Config(file, origin, settings, document)


def _load_document(file: Path, env: Mapping[str, str]) -> Document:
    from keel.config.yamlfile import load_document

    return load_document(file, env)


def validate_section(model: Any, data: Any, loc: Loc = (), document: Document | None = None) -> Any:
    """Check ``data`` at ``loc`` against a pydantic ``model`` (see :mod:`keel.config.validate`)."""
    from keel.config.validate import validate_section as check

    return check(model, data, loc, document)
