"""ML Launchpad's command habits on ``keel``: ``keel -c my_cfg.yml generate-raml DATASOURCE``.

ML Launchpad's other verbs are keel's own commands with the same names and abbreviations
(``train``/``tr``, ``retest``/``ret``, ``predict``/``pred`` with a JSON file or
``--arg name=value``, ``api``/``a`` serving on port 5000); ``keel --help`` lists the
commands defined here under "ML Launchpad commands" (``keel_compat``).
"""

from __future__ import annotations

import click

from keel.cli import State, cli, pass_state

SYSTEM = "ML Launchpad"


@cli.command("generate-raml")
@click.argument("datasource_name", metavar="DATASOURCE_NAME")
@click.option("--resource", default="mythings", show_default=True, help="Resource name.")
@click.option("--exclude", multiple=True, help="Column to leave out (e.g. the target); repeat.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@pass_state
def generate_raml(
    state: State, datasource_name: str, resource: str, exclude: tuple[str, ...], output: str | None
) -> None:
    """Print a RAML API definition whose parameters are a data source's columns.

    The columns of DATASOURCE_NAME (a data source in the config) give the query
    parameters, their types and examples. Remove the target column (or --exclude it)
    and name the file in api: {raml: FILE}.

    \b
    Example:
      keel -c tree_cfg.yml generate-raml petals --exclude variety > tree.raml
    """
    from keel.lifecycle.project import Project
    from keel.serving.raml import raml_from_frame
    from keel.serving.service import major_of

    project = Project.open(state.config, store=state.store, project=state.project)
    try:
        frame = project.catalog.source(datasource_name).get_dataframe()
    finally:
        project.close()
    settings = project.config.settings
    api = settings.api.model_dump() if settings.api is not None else {}
    model = settings.model
    name = api.get("name") or (model.name if model is not None else None) or "api"
    label = model.version if model is not None else None
    text = raml_from_frame(
        frame,
        api_name=str(name),
        version=f"v{major_of(label)}",
        resource=resource,
        exclude=list(exclude),
    )
    if output:
        from pathlib import Path

        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


generate_raml.keel_compat = SYSTEM  # type: ignore[attr-defined]
