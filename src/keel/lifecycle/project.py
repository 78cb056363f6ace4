"""A model project: keel.yml + its model code + data catalog + the tracking client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config import Config, load_config
from keel.errors import ConfigError
from keel.models.base import MemoryTracker, ModelContext, PhaseData, Tracker

if TYPE_CHECKING:
    from keel.config.models import ModelSection
    from keel.data.catalog import DataCatalog
    from keel.models.base import Model
    from keel.tracking.client import Client


#: where keel looks for its config, in order (keel.config.find_config)
CONFIG_SEARCH = "-c FILE, KEEL_CONFIG, ./keel.yml, LAUNCHPAD_CFG, ./LAUNCHPAD_CFG.yml, ./ml2p.yml"


def require_model(config: Config) -> ModelSection:
    """The config's ``model:`` section, or one line that says what is missing and what to do.

    Commands that train or predict call it before they open the store, so a folder without
    keel.yml is refused without creating anything.
    """
    section = config.settings.model
    if section is not None:
        return section
    if config.path is None:
        raise ConfigError(
            f"no keel.yml found in {Path.cwd()} (looked for {CONFIG_SEARCH}): start a "
            "project with `keel init NAME`, or name its config with `keel -c FILE ...`"
        )
    raise ConfigError(
        f"{config.describe()} has no model: section: add "
        "model: {name: my-model, module: my_model}, or start a project with `keel init NAME`"
    )


@dataclass
class Project:
    """The parts a lifecycle command works with, resolved once from keel.yml."""

    config: Config
    client: Client
    _catalog: DataCatalog | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        config: Config | str | os.PathLike[str] | None = None,
        client: Client | None = None,
        store: str | None = None,
        project: str | None = None,
    ) -> Project:
        """Read keel.yml (``-c``, ``KEEL_CONFIG`` or ``./keel.yml``) and connect to the store."""
        cfg = config if isinstance(config, Config) else load_config(config)
        if client is None:
            from keel.tracking.client import Client

            client = Client(
                store=store,
                project=project,
                config=cfg.path if cfg.path is not None else None,
            )
        return cls(cfg, client)

    # --- the model section -------------------------------------------------------------

    @property
    def model_conf(self) -> dict[str, Any]:
        """The ``model:`` section as a plain dict (extra keys included)."""
        return require_model(self.config).model_dump()

    @property
    def stored_model_conf(self) -> dict[str, Any]:
        """:attr:`model_conf` as it may be stored (run params, a version's manifest): what
        came from the environment as written (``api_key_var: NAME``, ``${VAR}``)."""
        from keel.config.stored import as_written

        return as_written(self.model_conf, self.config.snapshot().get("model"))

    @property
    def name(self) -> str:
        name = require_model(self.config).name
        if not name:
            raise ConfigError(
                f"{self.config.describe()}: model.name is not set; "
                "add model: {name: my-model, module: my_model}"
            )
        return name

    @property
    def label(self) -> str | None:
        """``model.version``: the label given to the versions trained from this config."""
        section = self.config.settings.model
        return section.version if section is not None else None

    @property
    def formats(self) -> list[str]:
        formats = self.model_conf.get("formats") or ["cloudpickle"]
        if isinstance(formats, str):
            formats = [formats]
        return [str(f) for f in formats]

    def default_ref(self) -> str:
        """The version commands use when none is given: the config's label, else latest."""
        return f"{self.name}@{self.label}" if self.label else f"{self.name}@latest"

    def resolve_ref(self, ref: str | None) -> str:
        """A version reference: None → the default; ``@x`` → this model's ``x``."""
        if ref is None:
            return self.default_ref()
        return f"{self.name}{ref}" if ref.startswith("@") else ref

    def model_code(self, fresh: bool = False) -> Model:
        from keel.models.styles import load_model_code

        return load_model_code(self.model_conf, self.config.base_dir, fresh=fresh)

    # --- data ----------------------------------------------------------------------------

    @property
    def catalog(self) -> DataCatalog:
        if self._catalog is None:
            from keel.data.catalog import DataCatalog

            self._catalog = DataCatalog(self.config)
        return self._catalog

    def context(
        self,
        phase: str,
        work_dir: Path,
        model_dir: Path,
        tracker: Tracker | None = None,
        **more: Any,
    ) -> ModelContext:
        """A context for ``phase`` with that phase's tagged sources and sinks."""
        catalog = self.catalog
        return ModelContext(
            phase=phase,
            model_conf=self.model_conf,
            sources=PhaseData(catalog.sources_for(phase), "data source", phase),
            sinks=PhaseData(catalog.sinks_for(phase), "data sink", phase),
            model_dir=model_dir,
            work_dir=work_dir,
            tracker=tracker or MemoryTracker(),
            project=self.client.project,
            artifact_root=self.client.settings.artifacts,
            record_invokes=bool(_get(self.config.settings.api, "record_invokes", False)),
            **more,
        )

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()


def _get(section: Any, key: str, default: Any) -> Any:
    if isinstance(section, Mapping):
        return section.get(key, default)
    extra = getattr(section, "model_extra", None) or {}
    return getattr(section, key, extra.get(key, default))
