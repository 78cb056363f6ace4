"""A version's monitoring, wired to keel.yml: its reference profile, drift checks, updates.

The reference profile is made when a version is trained (from the data the train step
read, or ``monitoring.reference``) and on demand (``keel monitor profile NAME@V --source
S`` or ``--dataset D``): the input columns in one pass, and the model's outputs on a sample
of up to ``monitoring.output_sample_rows`` of those rows, predicted the way the server
predicts. The CLI, the REST API and the UI call the functions here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import ConfigError, InvalidInput
from keel.lifecycle.project import Project
from keel.monitoring.check import DriftCheck, check_drift, parse_duration
from keel.monitoring.drift import DriftSettings
from keel.monitoring.profiles import Profile, ProfileSettings, profile_frame
from keel.monitoring.records import outputs_frame

if TYPE_CHECKING:
    import pandas as pd

    from keel.config import Config
    from keel.config.models import MonitoringSection
    from keel.monitoring.quality import Labels
    from keel.monitoring.update import UpdateResult
    from keel.tracking.client import Client
    from keel.tracking.handles import ModelVersionApi

log = logging.getLogger("keel.monitoring")

DATA_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
#: the key of a reference profile's meta holding keel.yml's ``monitoring:`` it was made with
STORED_SETTINGS = "monitoring"


@dataclass
class MonitoringSettings:
    """keel.yml's ``monitoring:`` as the parts of keel.monitoring take it."""

    section: MonitoringSection

    @property
    def profile(self) -> ProfileSettings:
        return ProfileSettings(k=self.section.kll_k, max_categories=self.section.max_categories)

    @property
    def drift(self) -> DriftSettings:
        return DriftSettings.from_section(self.section)

    @property
    def window_s(self) -> int:
        return max(1, int(parse_duration(self.section.window, "monitoring.window")))


def settings_of(config: Config) -> MonitoringSettings:
    return MonitoringSettings(config.settings.monitoring)


def _api_inputs(config: Config) -> list[str]:
    """The input names the config's ``api.resources`` declare (the model's features)."""
    names: list[str] = []
    for resource in (config.raw.get("api") or {}).get("resources") or []:
        if isinstance(resource, dict):
            for name in resource.get("inputs") or {}:
                if name not in names:
                    names.append(str(name))
    return names


def monitored_columns(columns: Any, config: Config) -> list[str]:
    """The input columns a reference profile keeps: ``monitoring.features`` (names or
    patterns) or, when the config's ``api.resources`` declare inputs, those; less
    ``monitoring.exclude``."""
    settings = settings_of(config).drift
    declared = _api_inputs(config)
    names = [str(c) for c in columns]
    if settings.features is None and declared and set(declared) & set(names):
        names = [c for c in names if c in declared]
    return settings.compared(names)


def profile_reference(
    project: Project,
    version: ModelVersionApi,
    frame: pd.DataFrame,
    source: str,
    work_dir: Path | None = None,
) -> Profile:
    """Profile ``frame`` (and the version's outputs on a sample of it) and store the
    profile as the version's reference."""
    settings = settings_of(project.config)
    columns = monitored_columns(frame.columns, project.config)
    if not columns:
        raise InvalidInput(
            f"the reference data ({source}) has none of the features monitored "
            f"(columns: {', '.join(map(str, frame.columns))}): check monitoring.features"
        )
    profile = profile_frame(frame[columns], settings=settings.profile)
    n = min(len(frame), settings.section.output_sample_rows)
    sample = frame.sample(n=n, random_state=0) if n < len(frame) else frame
    return finish_reference(project, version, profile, sample, source, work_dir)


def finish_reference(
    project: Project,
    version: ModelVersionApi,
    profile: Profile,
    sample: pd.DataFrame | None,
    source: str,
    work_dir: Path | None = None,
) -> Profile:
    """Add the version's outputs on ``sample`` (predicted the way the server predicts) and
    the meta to an inputs' ``profile``, and store it as the version's reference."""
    from keel.lifecycle.loading import load_version
    from keel.monitoring.profiles import update_columns
    from keel.monitoring.storage import save_reference

    settings = settings_of(project.config)
    outputs = None
    if settings.section.outputs and sample is not None and len(sample):
        ref = f"{version.model}@{version.version}"
        with load_version(project, project.client, ref, work_dir=work_dir) as loaded:
            outputs = outputs_frame(loaded.predict_batch(sample))
        update_columns(profile.outputs, outputs, None, settings.profile)
    profile.meta = {
        "source": source,
        "output_rows": 0 if outputs is None else len(outputs),
        # the server and the UI have no keel.yml: they judge with these
        STORED_SETTINGS: settings.section.model_dump(mode="json"),
    }
    save_reference(project.client, version, profile)
    return profile


def reference_source(project: Project) -> str | None:
    """The data source a reference is made of by default: ``monitoring.reference``, else
    the first source the train step reads (None when there is neither)."""
    named = project.config.settings.monitoring.reference
    if named:
        return named
    for name in project.catalog.sources_for("train"):
        return name
    return None


def reference_after_training(
    project: Project, version: ModelVersionApi, dataset_dir: Path | None, work_dir: Path
) -> Profile | None:
    """The reference profile of a version just trained (None when monitoring is off or no
    data can be read; a failure is logged and never fails the training)."""
    section = project.config.settings.monitoring
    if not section.enabled:
        return None
    try:
        found = _training_frame(project, dataset_dir)
        if found is None:
            log.info("no reference profile for %s: no data source to read", version.model)
            return None
        frame, source = found
        return profile_reference(project, version, frame, source, work_dir)
    except Exception as exc:
        log.warning(
            "the reference profile of %s version %s was not made (%s): run "
            "`keel monitor profile %s@%s --source NAME`",
            version.model,
            version.version,
            exc,
            version.model,
            version.version,
        )
        return None


def _training_frame(project: Project, dataset_dir: Path | None) -> tuple[Any, str] | None:
    name = reference_source(project)
    if name is not None:
        return project.catalog.source(name).get_dataframe(), name
    if dataset_dir is not None:
        frame = _dataset_frame(dataset_dir)
        if frame is not None:
            return frame, f"dataset files {dataset_dir.name}"
    return None


def _dataset_frame(folder: Path) -> pd.DataFrame | None:
    """The rows of a dataset's data files (parquet, CSV or JSON lines), concatenated."""
    import pandas as pd

    files = sorted(
        p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
    )
    frames = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            frames.append(pd.read_parquet(path))
        elif suffix == ".csv":
            frames.append(pd.read_csv(path))
        else:
            frames.append(pd.read_json(path, lines=suffix == ".jsonl"))
    return pd.concat(frames, ignore_index=True) if frames else None


def profile_version(
    ref: str | None = None,
    *,
    source: str | None = None,
    dataset: str | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> Profile:
    """Make (again) the reference profile of ``ref`` from data source ``source`` or dataset
    ``dataset`` (``NAME`` or ``NAME@VERSION``); neither: what training reads."""
    from keel.lifecycle.runs import scratch

    if source and dataset:
        raise InvalidInput("give --source or --dataset, not both")
    project = Project.open(config, client)
    try:
        mv = project.client.get_model_version(project.resolve_ref(ref))
        with scratch("monitor") as work:
            if dataset:
                name, _, version = dataset.partition("@")
                ds = project.client.get_dataset(name, version or "latest")
                frame = _dataset_frame(project.client.get_dataset_files(ds))
                if frame is None:
                    raise InvalidInput(
                        f"dataset {ds.name}@{ds.version} has no parquet, CSV or JSON files "
                        "to profile"
                    )
                label = f"dataset {ds.name}@{ds.version}"
            elif source:
                frame, label = project.catalog.source(source).get_dataframe(), source
            else:
                found = _training_frame(project, None)
                if found is None:
                    raise ConfigError(
                        "no data to profile: give --source NAME (a data source of keel.yml) "
                        "or --dataset NAME[@VERSION]"
                    )
                frame, label = found
            return profile_reference(project, mv, frame, label, work)
    finally:
        project.close()


def labels_of(project: Project) -> Labels | None:
    """keel.yml's ``monitoring.labels`` read from its data source (None when not set)."""
    from keel.monitoring.quality import Labels

    section = project.config.settings.monitoring.labels
    if section is None:
        return None
    frame = project.catalog.source(section.source).get_dataframe()
    return Labels.from_frame(
        frame, section.id_column, section.label_column, section.prediction, section.metric
    )


def drift(
    ref: str | None = None,
    *,
    since: str = "7d",
    window: str | None = "1d",
    until_ms: int | None = None,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
) -> DriftCheck:
    """``keel monitor drift``: the version's live profiles of the last ``since`` against its
    reference, overall and per ``window`` (with the model's metric when labels are set)."""
    project = Project.open(config, client)
    try:
        mv = project.client.get_model_version(project.resolve_ref(ref))
        settings = settings_of(project.config)
        return check_drift(
            project.client,
            mv,
            since=since,
            window=window,
            until_ms=until_ms,
            settings=settings.drift,
            labels=labels_of(project),
        )
    finally:
        project.close()


def update(
    ref: str | None = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    client: Client | None = None,
    map_windows: Any = None,
) -> UpdateResult:
    """``keel monitor update``: live profiles for the stored records no server profiled."""
    from keel.monitoring.storage import load_reference
    from keel.monitoring.update import update_profiles

    project = Project.open(config, client)
    try:
        mv = project.client.get_model_version(project.resolve_ref(ref))
        settings = settings_of(project.config)
        try:
            kinds = load_reference(project.client, mv).kinds()
        except Exception:
            kinds = None
        return update_profiles(
            project.client,
            mv,
            window_s=settings.window_s,
            settings=settings.profile,
            kinds=kinds,
            map_windows=map_windows,
        )
    finally:
        project.close()


def stored_settings(reference: Profile) -> MonitoringSettings:
    """The ``monitoring:`` settings a reference profile was made with (defaults if none)."""
    from keel.config.models import MonitoringSection

    raw = reference.meta.get(STORED_SETTINGS) or {}
    try:
        return MonitoringSettings(MonitoringSection.model_validate(raw))
    except ValueError:  # made by another keel: judge with today's defaults
        return MonitoringSettings(MonitoringSection())


def check_version(
    client: Client,
    version: Any,
    *,
    since: str = "7d",
    window: str | None = "1d",
    until_ms: int | None = None,
) -> DriftCheck:
    """A drift check judged with the settings stored with the version's reference profile:
    what the REST API and the UI run (they have no keel.yml)."""
    from keel.monitoring.storage import load_reference

    mv = client.get_model_version(version)
    reference = load_reference(client, mv)
    return check_drift(
        client,
        mv,
        since=since,
        window=window,
        until_ms=until_ms,
        settings=stored_settings(reference).drift,
        reference=reference,
    )
