"""Loading a model version: verify its content hash, read its code and fitted model.

``keel.load_model("iris@production")`` returns a :class:`LoadedModel` that predicts. The
artifact is used only after its files match the hash registered with the version (a
changed file is an :class:`~keel.errors.IntegrityError`), and the library versions it was
trained with are compared with this environment's (a warning per differing library).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.config import Config
from keel.errors import ConfigError
from keel.lifecycle.artifact import FILES, Manifest, read_fitted, read_model_code
from keel.models.base import MemoryTracker, Model, ModelContext, Tracker

if TYPE_CHECKING:
    from keel.lifecycle.project import Project
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi


class LoadedModel:
    """A model version ready to predict: ``predict``, ``predict_batch``, then ``close``.

    ``setup`` runs before the first prediction and ``teardown`` on ``close`` (or at the
    end of a ``with`` block).
    """

    def __init__(
        self,
        model: Model,
        fitted: Any,
        manifest: Manifest,
        ctx: ModelContext,
        version: ModelVersionApi | None = None,
    ) -> None:
        self.model = model
        self.fitted = fitted
        self.manifest = manifest
        self.ctx = ctx
        self.version = version
        self._ready = False
        self._owned_work_dir: Path | None = None

    def __repr__(self) -> str:
        return f"LoadedModel({self.ctx.version or self.manifest.model!r}, style={self.style!r})"

    @property
    def style(self) -> str:
        return self.model.style

    def setup(self) -> LoadedModel:
        if not self._ready:
            self.model.setup(self.ctx)
            self._ready = True
        return self

    def predict(self, inputs: Any) -> Any:
        """One prediction, as plain JSON-able Python."""
        from keel.data.helpers import to_plain_python

        self.setup()
        return to_plain_python(self.model.predict(self.ctx, self.fitted, inputs))

    def predict_batch(self, batch: Any) -> Any:
        """Predictions for a DataFrame chunk or a list of inputs (a list or a DataFrame)."""
        self.setup()
        return self.model.predict_batch(self.ctx, self.fitted, batch)

    def close(self) -> None:
        try:
            if self._ready:
                self._ready = False
                self.model.teardown(self.ctx)
        finally:
            if self._owned_work_dir is not None:
                import shutil

                shutil.rmtree(self._owned_work_dir, ignore_errors=True)
                self._owned_work_dir = None

    def __enter__(self) -> LoadedModel:
        return self.setup()

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_version(
    project: Project | None,
    client: Client,
    ref: str,
    phase: str = "predict",
    live_code: bool = False,
    tracker: Tracker | None = None,
    work_dir: Path | None = None,
) -> LoadedModel:
    """Load ``ref`` (``name``, ``name@3``, ``name@label``, ``name@alias``)."""
    mv = client.get_model_version(ref)
    what = f"model {mv.model} version {mv.version}"
    folder = client.get_model_artifact(mv)  # verifies the content hash
    manifest = Manifest.read(folder)
    from keel.models.libraries import check_libraries

    if live_code:
        if project is None:
            raise ConfigError("--live-code needs keel.yml with model.module (the current code)")
        model = project.model_code(fresh=True)
    else:
        model = read_model_code(folder, what)
    fitted = read_fitted(folder, manifest, what, code_loaded=not live_code)
    check_libraries(manifest.libraries, what)  # after loading: its libraries are imported
    work = work_dir or Path(tempfile.mkdtemp(prefix="keel-predict-"))
    kwargs: dict[str, Any] = {"version": f"{mv.model}@{mv.version}", "fitted": fitted}
    if project is not None:
        ctx = project.context(phase, work, folder / FILES, tracker, **kwargs)
    else:
        from keel.config.stored import from_environment

        ctx = ModelContext(
            phase=phase,
            # secrets and ${VAR}s were stored by name: read here, where the model runs
            model_conf=from_environment(manifest.model_conf, os.environ),
            model_dir=folder / FILES,
            work_dir=work,
            tracker=tracker or MemoryTracker(),
            project=client.project,
            artifact_root=client.settings.artifacts,
            **kwargs,
        )
    loaded = LoadedModel(model, fitted, manifest, ctx, mv)
    if work_dir is None:
        loaded._owned_work_dir = work
    return loaded


def load_model(
    ref: str | None = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
    live_code: bool = False,
) -> LoadedModel:
    """Load a registered model version to predict with.

    Args:
        ref: ``"iris"`` (latest), ``"iris@3"`` (version), ``"iris@1.2.0"`` (label) or
            ``"iris@production"`` (alias). Default: the config's model and label.
        config: keel.yml, for the data sources the model's ``predict`` reads and for
            ``live_code``. Default: ``KEEL_CONFIG`` or ``./keel.yml`` when there is one.
        client: the store to load from (default: as the config or environment say).
        live_code: run the model code in ``model.module`` now, instead of the code stored
            with the version (for debugging).

    Example:
        >>> model = keel.load_model("iris@production")          # doctest: +SKIP
        >>> model.predict({"sepal_length": 5.1, "sepal_width": 3.5, ...})
    """
    from keel.lifecycle.project import Project

    project: Project | None = None
    try:
        project = Project.open(config, client)
    except ConfigError:
        if config is not None or live_code or ref is None:
            raise
    # no keel.yml here (or one without model:): no model is configured
    section = project.config.settings.model if project is not None else None
    configured = section.name if section is not None else None
    if ref is None:
        if project is None or configured is None:
            raise ConfigError("load_model: name the model (e.g. 'iris@production')")
        ref = project.default_ref()
    if project is not None and configured != ref.partition("@")[0] and not live_code:
        project = None  # another model than keel.yml's: use the settings it was trained with
    if client is None:
        from keel.tracking.client import Client

        client = project.client if project is not None else Client()
    return load_version(project, client, ref, live_code=live_code)
