"""``keel serve``, ``keel api schema`` and ``keel invocations list``.

Thin callers of :mod:`keel.serving` and :class:`keel.Client`.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from keel.cli import PrefixGroup, State, _print_json, _table, _when, cli, pass_state
from keel.errors import InvalidInput

SERVE_EXAMPLES = """\b
Examples:
  keel serve                          # keel.yml's model and label
  keel serve iris@production --port 8080 --workers 2
  curl -X POST localhost:8000/invocations -H 'content-type: application/json' \\
       -d '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
"""


def _export_store(state: State) -> None:
    # Worker processes read the store and project from the environment.
    if state.store:
        os.environ["KEEL_STORE"] = state.store
    if state.project:
        os.environ["KEEL_PROJECT"] = state.project


@cli.command("serve", epilog=SERVE_EXAMPLES)
@click.argument("model", metavar="[MODEL[@VERSION|@LABEL|@ALIAS]]", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes, each with the model loaded once.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option("--access-log", is_flag=True, help="Log every request (costs throughput).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Seconds one model call may run before the request is answered 504 "
    "(default: keel.yml api.timeout_s, 30; 0: no limit).",
)
@pass_state
def serve(
    state: State,
    model: str | None,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    access_log: bool,
    timeout: float | None,
) -> None:
    """Serve a registered model version as a prediction API (FastAPI on uvicorn).

    Resources come from keel.yml's api: section and live under /<api name>/v<major>;
    the container contract (/invocations, /ping, /execution-parameters), /health,
    /ready, /metadata, /metrics and the OpenAPI docs at /docs are always there.
    SIGTERM or Ctrl-C finishes requests in flight and stores every queued invocation
    record before exiting. A model call running past --timeout is answered 504 and
    does not hold up the other requests.
    """
    from keel.cli.lifecycle import _model_config
    from keel.cli.status import status
    from keel.config import load_config
    from keel.server.protocol import SlowClientTimeouts
    from keel.serving.server import ServeOptions, resolve_version
    from keel.serving.server import serve as run
    from keel.serving.service import api_spec

    _export_store(state)
    # keel.yml and its api: first; serving a named version needs no keel.yml (SimpleML's
    # `keel serve titanic@1`), only that a keel.yml present is sound.
    api_spec(load_config(state.config) if model else _model_config(state, check_store=False))
    state.require_store()
    with status("finding the version to serve"):
        ref, what = resolve_version(model, state.config)
    click.echo(f"keel: serving {what} on http://{host}:{port} (docs at /docs)", err=True)
    run(
        ref,
        state.config,
        ServeOptions(
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            timeout_s=timeout,
            http=SlowClientTimeouts,  # slow clients end (10 s for a head, 30 s body pauses)
        ),
    )


@cli.group(cls=PrefixGroup, invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.pass_context
def api(ctx: click.Context, host: str, port: int) -> None:
    """The prediction API: alone, serves it (ML Launchpad's api; keel serve on port 5000).

    \b
    Examples:
      keel -c tree_cfg.yml api            # then http://127.0.0.1:5000/iris/v0/...
      keel api schema --from-source iris_test --exclude species
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve, model=None, host=host, port=port)


@api.command("schema")
@click.option(
    "--from-source", "source", help="Data source whose columns to use (required without --raml)."
)
@click.option("--resource", default="predict", show_default=True, help="Resource name.")
@click.option("--name", help="API name (default: api.name, else the model's name).")
@click.option("--exclude", multiple=True, help="Column to leave out (e.g. the target); repeat.")
@click.option("--rows", default=1000, show_default=True, help="Rows to read for the dtypes.")
@click.option(
    "--raml",
    "as_raml",
    is_flag=True,
    help="Write RAML 0.8 (ML Launchpad's API files); without --from-source, of the "
    "resources keel.yml's api: declares.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@pass_state
def api_schema(
    state: State,
    source: str | None,
    resource: str,
    name: str | None,
    exclude: tuple[str, ...],
    rows: int,
    as_raml: bool,
    output: str | None,
) -> None:
    """Write an api: block (or with --raml a RAML file) whose inputs are a data source's
    columns and dtypes; --raml alone writes the config's own resources as RAML.

    \b
    Examples:
      keel api schema --from-source iris_test --exclude species --resource species
      keel api schema --raml --from-source petals --exclude variety -o my_api.raml
      keel api schema --raml -o tree.raml   # the api: resources, for teams keeping RAML
    """
    from keel.lifecycle.project import Project
    from keel.serving.schema import api_block, inputs_from_frame

    if source is None and not as_raml:
        raise click.UsageError("give --from-source NAME, or --raml for the api: resources")
    project = Project.open(state.config, store=state.store, project=state.project)
    settings = project.config.settings
    model_name = settings.model.name if settings.model else None
    if as_raml:
        from keel.serving.raml import raml_from_frame, to_raml
        from keel.serving.service import api_spec, major_of
        from keel.serving.spec import ResourceSpec

        spec = api_spec(project.config)
        api_name = name or spec.name or model_name or "api"
        label = settings.model.version if settings.model else None
        version = f"v{spec.url_version or major_of(label)}"
        if source is not None:
            frame = project.catalog.source(source).get_dataframe().head(rows)
            text = raml_from_frame(
                frame, api_name=api_name, version=version, resource=resource, exclude=exclude
            )
        else:
            resources: list[ResourceSpec] = spec.resources
            text = to_raml(
                resources, api_name=api_name, version=version, description=spec.description
            )
    else:
        assert source is not None
        frame = project.catalog.source(source).get_dataframe().head(rows)
        text = api_block(
            name or model_name or "api", resource, inputs_from_frame(frame, list(exclude))
        )
    if output:
        from pathlib import Path

        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@cli.group(cls=PrefixGroup)
def invocations() -> None:
    """Recorded prediction calls (api.record_invokes)."""


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> int:
    """ms since the epoch for ``15m``/``2h``/``7d`` ago or an ISO 8601 date or time (UTC)."""
    match = _RELATIVE.match(text.strip())
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return int((time.time() - delta.total_seconds()) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--since {text!r}: give a time ago (30s, 15m, 2h, 7d) or an ISO date/time "
            "(2026-11-23 or 2026-11-23T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _short(value: Any, width: int = 60) -> str:
    import json

    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


@invocations.command("list")
@click.argument("model", metavar="MODEL[@VERSION|@LABEL|@ALIAS]")
@click.option("--since", help="Only newer records: 30s, 15m, 2h, 7d, or an ISO date/time.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (full inputs and results).")
@pass_state
def invocations_list(
    state: State, model: str, since: str | None, limit: int, as_json: bool
) -> None:
    """List a model version's recorded invocations, newest first.

    \b
    Examples:
      keel invocations list iris@3 --since 1h
      keel invocations list iris@production --json --limit 1000
    """
    since_ms = parse_since(since) if since else None
    records = state.client.find_invocations(model, since=since_ms, limit=limit)
    if as_json:
        _print_json(records)
        return
    rows = [
        [
            r.request_id,
            _when(r.timestamp),
            f"{r.latency_ms:.1f}",
            r.status,
            _short(r.input),
            _short(r.result, 40),
        ]
        for r in records
    ]
    mv = state.client.get_model_version(model)
    _table(
        f"invocations of {mv.model} version {mv.version} ({len(records)} shown)",
        ["request id", "time (UTC)", "ms", "status", "input", "result"],
        rows,
    )
