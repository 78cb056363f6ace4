"""``keel monitor drift | profile | update | show``: a served model's drift from its training data.

Thin callers of :mod:`keel.lifecycle.monitoring`. ``drift`` exits 0 when the dataset has not
drifted, 1 when it has (for cron and CI) and 2 when the check could not run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from keel.cli import State, _fmt, _print_json, _table, cli, pass_state
from keel.cli.status import status

if TYPE_CHECKING:
    from keel.config import Config
    from keel.monitoring.check import DriftCheck

#: ``keel monitor drift``'s exit status when the dataset drifted
DRIFTED_EXIT = 1


def _config(state: State) -> Config:
    from keel.config import load_config

    return load_config(state.config)


def _ref(ref: str | None, config: Config) -> str | None:
    if ref is None and config.settings.model is None:
        raise click.UsageError("give the version to check, e.g. iris@3 (or run where keel.yml is)")
    return ref


@cli.group("monitor")
def monitor() -> None:
    """Drift of a served model's live inputs and outputs from its training data.

    \b
    A version's reference profile is made when it is trained (or by `keel monitor
    profile`); a server with `api.record_invokes: true` profiles its records per time
    window as it stores them. Tests and thresholds: keel.yml's `monitoring:` section.
    """


@monitor.command("drift")
@click.argument("ref", required=False, metavar="[NAME@VERSION]")
@click.option("--since", default="7d", show_default=True, help="How far back: 7d, 12h, 30m.")
@click.option(
    "--window", default="1d", show_default=True, help="One row of the timeline per window."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def drift(state: State, ref: str | None, since: str, window: str, as_json: bool) -> None:
    """Compare a version's live profiles with its reference, per feature and per window.

    Exit status: 0 no drift, 1 the dataset drifted (at least monitoring.drift_share of the
    features drifted), 2 the check could not run.

    \b
    Examples:
      keel monitor drift iris@3
      keel monitor drift iris@production --since 30d --window 1d --json
      keel monitor drift iris@3 --since 24h --window 1h || alert "iris drifted"
    """
    from keel.lifecycle.monitoring import drift as check

    config = _config(state)
    with status("checking drift"):
        result = check(_ref(ref, config), since=since, window=window, config=config,
                       client=state.client)  # fmt: skip
    if as_json:
        _print_json(result.to_dict())
    else:
        _show_check(result)
    if result.drifted:
        sys.exit(DRIFTED_EXIT)


def _show_check(check: DriftCheck) -> None:
    report = check.report
    _table(
        f"drift of {check.model} version {check.version}: {check.report.current_rows:,} live rows "
        f"since {check.to_dict()['since']} vs {report.reference_rows:,} reference rows",
        ["column", "kind", "test", "value", "threshold", "drift", "missing ref→live", "rows"],
        (
            [
                c.name if c.role == "input" else f"output: {c.name}",
                c.kind,
                c.test,
                "" if c.statistic is None else f"{c.statistic:.4g}",
                f"{'<' if c.p_value else '≥'} {c.threshold:g}",
                "[red]DRIFT[/red]" if c.drifted else "[green]ok[/green]",
                f"{c.reference_missing_share:.1%} → {c.current_missing_share:.1%}",
                f"{c.current_rows:,}" + (f" ({c.note})" if c.note else ""),
            ]
            for c in report.columns
        ),
    )
    if check.windows:
        _table(
            f"per {_fmt(check.window_s / 3600)} h window",
            ["window (UTC)", "records", "errors", "p50 ms", "p99 ms", "drift share", "quality"],
            (
                [
                    w.to_dict()["start"].replace("T", " ")[:16],
                    f"{w.records:,}",
                    f"{w.error_rate:.1%}",
                    _fmt(w.latency_ms.get("p50")),
                    _fmt(w.latency_ms.get("p99")),
                    ("[red]" if w.drifted else "") + f"{w.drift_share:.0%}"
                    + ("[/red]" if w.drifted else ""),
                    "" if not w.quality else f"{w.quality['metric']} {w.quality['value']:.4g} "
                    f"(n={w.quality['labelled']})",
                ]
                for w in check.windows
            ),
        )  # fmt: skip
    features = report.features
    verdict = "DRIFTED" if report.drifted else "no drift"
    never = report.missing_features
    click.echo(
        f"dataset: {verdict}: {len(report.drifted_features)} of "
        f"{sum(1 for c in features if c.current_rows)} features drifted "
        f"({report.drift_share:.0%}; the dataset drifts at {report.share_threshold:.0%})"
        + (f"; never sent live: {', '.join(never)}" if never else "")
    )
    if not report.current_rows:
        click.echo(
            "no live profile in this period: is the server recording (api.record_invokes) with "
            "monitoring on? `keel monitor update` profiles records stored without it",
            err=True,
        )


@monitor.command("profile")
@click.argument("ref", required=False, metavar="[NAME@VERSION]")
@click.option("--source", help="A data source of keel.yml to profile.")
@click.option("--dataset", help="A registered dataset to profile: NAME or NAME@VERSION.")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    help="dask: the source's partitions profiled on keel.yml's Dask cluster (default: "
    "keel.yml's jobs.executor, else here).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def profile(
    state: State,
    ref: str | None,
    source: str | None,
    dataset: str | None,
    executor: str | None,
    as_json: bool,
) -> None:
    """Make (again) a version's reference profile from a data source or a dataset.

    Without --source or --dataset: the data keel.yml's train step reads (or
    monitoring.reference).

    \b
    Examples:
      keel monitor profile iris@3 --source iris_train
      keel monitor profile iris@3 --dataset iris-data@2
      keel monitor profile iris@3 --source big --executor dask
    """
    from keel.lifecycle.monitoring import profile_version

    config = _config(state)
    if executor == "dask" and dataset is not None:
        raise click.UsageError("--executor dask profiles a data source (--source), not a dataset")
    chosen = executor or (config.settings.jobs.executor if config.settings.jobs else None)
    with status("profiling"):
        if chosen == "dask" and dataset is None:
            from keel.jobs.monitoring import profile_source_on_dask

            made = profile_source_on_dask(config, state.client, _ref(ref, config), source)
        else:
            made = profile_version(
                _ref(ref, config),
                source=source,
                dataset=dataset,
                config=config,
                client=state.client,
            )
    if as_json:
        return _print_json(made.summary())
    _show_profile(
        made.summary(), f"reference profile of {made.rows:,} rows ({made.meta['source']})"
    )
    return None


def _show_profile(summary: dict[str, Any], title: str) -> None:
    rows = []
    for role in ("inputs", "outputs"):
        for name, col in summary[role].items():
            if col["kind"] == "number":
                shape = (
                    f"mean {_fmt(col.get('mean'))}, std {_fmt(col.get('std'))}, "
                    f"[{_fmt(col.get('min'))}, {_fmt(col.get('max'))}]"
                )
            else:
                shape = ", ".join(f"{k} {v:,}" for k, v in col.get("top", [])[:5])
            rows.append(
                [
                    name if role == "inputs" else f"output: {name}",
                    col["kind"],
                    f"{col['count']:,}",
                    f"{col['missing_share']:.1%}",
                    _fmt(col.get("distinct")),
                    shape,
                ]
            )
    _table(title, ["column", "kind", "values", "missing", "distinct", "shape"], rows)


@monitor.command("show")
@click.argument("ref", required=False, metavar="[NAME@VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def show(state: State, ref: str | None, as_json: bool) -> None:
    """Show a version's reference profile.

    \b
    Examples:
      keel monitor show iris@3
    """
    from keel.lifecycle.project import Project
    from keel.monitoring.storage import load_reference

    config = _config(state)
    project = Project.open(config, state.client)
    mv = state.client.get_model_version(project.resolve_ref(_ref(ref, config)))
    summary = load_reference(state.client, mv).summary()
    if as_json:
        return _print_json(summary)
    _show_profile(
        summary,
        f"reference profile of {mv.model} version {mv.version}: {summary['rows']:,} rows "
        f"({summary['meta'].get('source', '?')})",
    )
    return None


@monitor.command("update")
@click.argument("ref", required=False, metavar="[NAME@VERSION]")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    help="Where the windows are profiled (default: keel.yml's jobs.executor, else here).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def update(state: State, ref: str | None, executor: str | None, as_json: bool) -> None:
    """Profile stored invocation records that no server profiled (only new records are read).

    \b
    Examples:
      keel monitor update iris@3
      keel monitor update iris@3 --executor dask      # windows profiled on the cluster
    """
    from keel.lifecycle.monitoring import update as run_update

    config = _config(state)
    map_windows = None
    chosen = executor or (config.settings.jobs.executor if config.settings.jobs else None)
    if chosen == "dask":
        from keel.jobs.monitoring import dask_window_mapper

        map_windows = dask_window_mapper(config, state.client, _ref(ref, config))
    with status("profiling stored records"):
        result = run_update(_ref(ref, config), config=config, client=state.client,
                            map_windows=map_windows)  # fmt: skip
    data = {
        "windows": len(result.windows),
        "records": result.records,
        "skipped_live_windows": result.skipped_live,
    }
    if as_json:
        return _print_json(data)
    click.echo(
        f"profiled {result.records:,} records into {len(result.windows)} window(s); "
        f"{result.skipped_live} window(s) were profiled live by a server"
    )
    return None
