"""The ``keel`` command: parses arguments, calls the Python API, prints tables or JSON.

Every command is a thin caller of :class:`keel.Client`; errors keel raises on purpose are
printed as one line on stderr with a non-zero exit. Unique prefixes of commands work
(``keel ru li`` is ``keel runs list``), as in ML Launchpad.

The store is the one :mod:`keel.tracking.settings` picks (``--store``, ``KEEL_STORE``,
keel.yml, else the ``.keel`` folder found from the working directory up to the top of the
git work tree). Commands that only read what a store holds (:data:`READS_STORE`) refuse to
run where there is no store rather than create an empty one, and a command that fails
removes a default store it created if nothing was recorded in it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from keel import __version__
from keel.errors import ConfigError, KeelError, NotFound, NotInProject

if TYPE_CHECKING:
    from pathlib import Path

    from keel.tracking.client import Client
    from keel.tracking.settings import StoreSearch

T = TypeVar("T")

#: commands that only read what a store holds (or need a model in it): where there is no
#: store they say so rather than create an empty one
READS_STORE = frozenset(
    {
        "experiments list",
        "experiments show",
        "runs list",
        "runs show",
        "models list",
        "models show",
        "datasets list",
        "datasets show",
        "invocations list",
        "predict",
        "retest",
        "batch-predict",
        "serve",
        "gc",
        "ml2p dataset list",
        "ml2p dataset ls",
        "ml2p dataset dn",
        "ml2p training-job list",
        "ml2p training-job describe",
        "ml2p training-job wait",
        "ml2p model list",
        "ml2p model describe",
        "users list",
        "tokens list",
        "monitor drift",
        "monitor profile",
        "monitor show",
        "monitor update",
    }
)

#: of those, commands that read keel.yml first: a mistake in it is what they report, with
#: or without a store (they call :meth:`State.require_store` once their config is read)
CONFIG_FIRST = frozenset({"predict", "retest", "batch-predict", "serve"})

#: commands whose errors exit with another status than 1 (``keel monitor drift`` exits 1
#: when the data drifted, so cron can tell a drift from a failed check)
ERROR_EXIT = {"monitor drift": 2}

EPILOG_EXAMPLES = """\b
Examples:
  keel runs list --exp iris --sort -metrics.acc --limit 10
  keel runs list --query '{"metrics.acc": {"$gt": 0.9}}' --json
  keel models show iris@production
  keel data preview train -n 5
  keel db upgrade --store postgresql://keel@db:5432/keel
"""


class PrefixGroup(click.Group):
    """A command group that accepts any unique prefix of a command name."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        matches = [name for name in self.list_commands(ctx) if name.startswith(cmd_name)]
        if len(matches) == 1:
            return super().get_command(ctx, matches[0])
        if len(matches) > 1:
            ctx.fail(f"'{cmd_name}' is ambiguous: it could be {', '.join(sorted(matches))}")
        return None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        _name, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else None), cmd, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """keel's commands under "Commands:"; a command with ``keel_compat = "ML2P"`` (a
        seed system's habit, see :mod:`keel.compat`) under "ML2P commands:" after them."""
        sections: dict[str, list[tuple[str, click.Command]]] = {}
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            system = getattr(cmd, "keel_compat", None)
            sections.setdefault(f"{system} commands" if system else "Commands", []).append(
                (name, cmd)
            )
        if not sections:
            return
        width = max(len(name) for found in sections.values() for name, _ in found)
        limit = formatter.width - 6 - width
        titles = ["Commands"] if "Commands" in sections else []
        titles += sorted(t for t in sections if t != "Commands")
        for title in titles:
            rows = [(name, cmd.get_short_help_str(limit)) for name, cmd in sections[title]]
            with formatter.section(title):
                formatter.write_dl(rows)


@dataclasses.dataclass
class State:
    store: str | None = None
    project: str | None = None
    config: str | None = None
    verbose: bool = False
    #: the command reads a store and checks it exists once its keel.yml is read
    store_check_pending: bool = False
    #: the exit status of an error (``keel monitor drift`` keeps 1 for "drifted")
    error_exit: int = 1
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from keel.tracking.client import Client

            self._client = Client(store=self.store, project=self.project, config=self.config)
        return self._client

    @property
    def implicit_project(self) -> bool:
        """Nobody chose the project (no --project, KEEL_PROJECT or keel.yml ``project:``)."""
        return self.client.settings.project_origin == "default"

    def require_store(self) -> None:
        """Refuse (one line, exit 1) when the store is the default one and none exists yet."""
        self.store_check_pending = False
        settings = self.client.settings
        if settings.store_is_missing and settings.store_search is not None:
            raise NoStore(_no_store_message(settings.store_search))

    def use_project(self, project: str) -> Client:
        """Switch this command's client to another project of the same store."""
        self._client = self.client.copy(update={"project": project})
        return self._client


class NoStore(NotFound):
    """There is no store where the command looked for the default one."""


def _no_store_message(search: StoreSearch) -> str:
    return (
        f"no keel store here: looked for .keel {search.describe()}; create one with "
        "`keel train` (or `make demo` in keel's repository), or pass --store"
    )


def _command_name(ctx: click.Context) -> str:
    """``runs list`` for ``keel ru li``: the full names of the command and its groups."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.command.name or ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def pass_state(func: Any) -> Any:
    """Pass the command's :class:`State` first; a command in :data:`READS_STORE` first checks
    that its store exists."""

    @functools.wraps(func)
    def with_state(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        state = ctx.ensure_object(State)
        name = _command_name(ctx)
        state.error_exit = ERROR_EXIT.get(name, 1)
        if name in CONFIG_FIRST:
            state.store_check_pending = True
        elif name in READS_STORE:
            state.require_store()
        return ctx.invoke(func, state, *args, **kwargs)

    return with_state


@click.group(
    cls=PrefixGroup,
    epilog=EPILOG_EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="keel")
@click.option(
    "--store",
    envvar="KEEL_STORE",
    help="Metadata store: folder, sqlite:///FILE or postgresql://… (env KEEL_STORE).",
)
@click.option(
    "--project",
    envvar="KEEL_PROJECT",
    help="Project name (env KEEL_PROJECT; default from keel.yml or 'default').",
)
@click.option(
    "-c",
    "--config",
    "config",
    # a plain path: keel.config says what is wrong with it in one line (a folder, missing)
    type=click.Path(),
    help="Config file (env KEEL_CONFIG; default ./keel.yml, then env LAUNCHPAD_CFG, "
    "./LAUNCHPAD_CFG.yml, ./ml2p.yml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Print debug messages.")
@click.option(
    "-l",
    "--log-config",
    type=click.Path(exists=True, dir_okay=False),
    help="Logging configuration (YAML for logging.config.dictConfig), as ML Launchpad's -l.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    store: str | None,
    project: str | None,
    config: str | None,
    verbose: bool,
    log_config: str | None,
) -> None:
    """keel: from data to a served, recorded prediction.

    Track runs, register model versions and datasets, and query them.
    """
    if verbose or log_config:
        _configure_logging(verbose, log_config)
    # main() passes the State in, to read it after the command (errors, clean-up)
    state = ctx.ensure_object(State)
    state.store, state.project, state.config, state.verbose = store, project, config, verbose


def _configure_logging(verbose: bool, log_config: str | None) -> None:
    import logging

    if log_config:
        import logging.config

        import yaml

        try:
            with open(log_config, encoding="utf-8") as f:
                logging.config.dictConfig(yaml.safe_load(f))
        except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
            raise ConfigError(f"--log-config {log_config}: {exc}") from None
    if verbose:
        if not logging.getLogger().handlers:
            logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger().setLevel(logging.DEBUG)


# --- output helpers ---------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "entity"):
        return _jsonable(value.entity)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _print_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2, sort_keys=True))


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return ""
    return str(value)


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        # Ids are copied into the next command: never wrap them.
        if column in ("id", "run", "experiment"):
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, overflow="fold")
    count = 0
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
        count += 1
    # Piped output is read by tools and people alike: do not wrap it at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=250)
    if count == 0:
        console.print(f"{title}: none")
        return
    console.print(table)


def _pairs(title: str, values: dict[str, Any]) -> None:
    _table(title, ["key", "value"], sorted(values.items()))


def _find(state: State, get: Callable[[Client], T]) -> T:
    """``get(client)``; when the name is not in a project nobody chose but in exactly one
    other project of the store, that one's (with a note on stderr)."""
    try:
        return get(state.client)
    except NotInProject as exc:
        if not state.implicit_project or len(exc.elsewhere) != 1:
            raise
        other = exc.elsewhere[0]
        click.echo(
            f"keel: showing {exc.kind} {exc.name!r} from project {other!r} (there is none in "
            f"{exc.project!r}); pass --project to choose",
            err=True,
        )
        return get(state.use_project(other))


#: what a list command lists, by its kind in Client.projects_summary
_LISTED = {
    "experiments": "experiments",
    "runs": "runs",
    "models": "models",
    "datasets": "dataset versions",
}


def _none_here(state: State, kind: str) -> None:
    """Say the project holds none, in which store, and which other projects hold some."""
    client = state.client
    line = f"{kind} in project {client.project!r} (store {client.store_url}): none"
    others = [p for p in client.projects_summary() if p.name != client.project and p.count(kind)]
    if others:
        listed = ", ".join(f"{p.name} ({p.count(kind)} {_LISTED[kind]})" for p in others)
        line += f". Other projects in this store: {listed}; use --project NAME"
    click.echo(line)


def _parse_query(query: str | None) -> dict[str, Any] | None:
    if not query:
        return None
    try:
        parsed = json.loads(query)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--query") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--query")
    return parsed


def _parse_sort(sort: tuple[str, ...]) -> list[tuple[str, int]] | None:
    out = []
    for item in sort:
        out.append((item[1:], -1) if item.startswith("-") else (item.lstrip("+"), 1))
    return out or None


def _list_options(func: Any) -> Any:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)
    func = click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many.")(
        func
    )
    func = click.option(
        "--limit",
        type=click.IntRange(min=0),
        default=50,
        show_default=True,
        help="At most this many.",
    )(func)
    func = click.option(
        "--sort", multiple=True, help="Sort field; prefix '-' for descending. Repeatable."
    )(func)
    func = click.option(
        "--query", "-q", help='MongoDB-style JSON filter, e.g. \'{"tags.team": "x"}\'.'
    )(func)
    return func


# --- experiments ------------------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def experiments() -> None:
    """List and show experiments."""


@experiments.command("list")
@_list_options
@pass_state
def experiments_list(
    state: State, query: str | None, sort: tuple[str, ...], limit: int, offset: int, as_json: bool
) -> None:
    """List the project's experiments."""
    found = state.client.find_exps(_parse_query(query), _parse_sort(sort), limit, offset)
    if as_json:
        return _print_json(found)
    if not found and not query and not offset:
        return _none_here(state, "experiments")
    _table(
        f"experiments in {state.client.project}",
        ["id", "name", "tags", "created"],
        ([e.id, e.name, _fmt_tags(e.tags), _when(e.created_at)] for e in found),
    )
    return None


@experiments.command("show")
@click.argument("experiment")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def experiments_show(state: State, experiment: str, as_json: bool) -> None:
    """Show an experiment (by id or name) and its latest runs."""
    from keel.store.validation import ID_PATTERN

    exp = (
        state.client.get_exp(experiment)
        if ID_PATTERN.match(experiment)
        else _find(state, lambda client: client.get_exp_by_name(experiment))
    )
    runs = exp.find_runs(limit=20)
    if as_json:
        return _print_json({"experiment": exp, "runs": runs})
    _pairs(
        f"experiment {exp.name} ({exp.id})",
        {"created": _when(exp.created_at), **{f"tags.{k}": v for k, v in exp.tags.items()}},
    )
    _runs_table(f"latest runs of {exp.name}", runs)
    return None


def _fmt_tags(tags: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


# --- runs -------------------------------------------------------------------------------


def _runs_table(title: str, runs: Sequence[Any]) -> None:
    metric_keys = sorted({k for r in runs for k in r.metrics})[:6]
    _table(
        title,
        ["id", "name", "kind", "status", "started", *metric_keys],
        (
            [
                r.id,
                r.name,
                r.kind,
                r.status,
                _when(r.start_time),
                *(r.metrics.get(k) for k in metric_keys),
            ]
            for r in runs
        ),
    )


@cli.group(cls=PrefixGroup)
def runs() -> None:
    """List and show runs."""


@runs.command("list")
@click.option("--exp", "experiment", help="Only runs of this experiment (name).")
@_list_options
@pass_state
def runs_list(
    state: State,
    experiment: str | None,
    query: str | None,
    sort: tuple[str, ...],
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List runs, newest first (filter with --query, sort with --sort)."""
    parsed = _parse_query(query) or {}
    if experiment:
        parsed = {"$and": [{"exp.name": experiment}, parsed]}
    found = state.client.find_runs(parsed, _parse_sort(sort), limit, offset)
    if as_json:
        return _print_json(found)
    if not found and not parsed and not offset:
        return _none_here(state, "runs")
    _runs_table(f"runs in {state.client.project}", found)
    return None


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def runs_show(state: State, run_id: str, as_json: bool) -> None:
    """Show a run: status, params, metrics, tags and artifacts."""
    client = state.client
    run = client.get_run(run_id)
    files = client.list_run_artifact(run)
    if as_json:
        return _print_json({"run": run, "artifacts": files})
    info = {
        "name": run.name,
        "kind": run.kind,
        "status": run.status,
        "experiment": run.experiment_id,
        "parent": run.parent_id,
        "author": run.author,
        "started": _when(run.start_time),
        "ended": _when(run.end_time),
        "python": run.environment.get("python"),
        "host": run.environment.get("host"),
    }
    _pairs(f"run {run.id}", info)
    _pairs("params", run.params)
    _pairs("metrics (latest)", run.metrics)
    _pairs("tags", run.tags)
    _table(
        "artifacts", ["path", "size", "sha256"], ([f.path, f.size, f.sha256[:12]] for f in files)
    )
    if run.failure:
        click.echo("failure:\n" + run.failure, err=True)
    return None


# --- models -----------------------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def models() -> None:
    """List and show registered models and their versions."""


@models.command("list")
@_list_options
@pass_state
def models_list(
    state: State, query: str | None, sort: tuple[str, ...], limit: int, offset: int, as_json: bool
) -> None:
    """List registered models."""
    found = state.client.find_models(_parse_query(query), _parse_sort(sort), limit, offset)
    if as_json:
        return _print_json(found)
    if not found and not query and not offset:
        return _none_here(state, "models")
    _table(
        f"models in {state.client.project}",
        ["name", "latest", "aliases", "tags", "updated"],
        (
            [
                m.name,
                m.latest_version,
                ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items())),
                _fmt_tags(m.tags),
                _when(m.updated_at),
            ]
            for m in found
        ),
    )
    return None


@models.command("show")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def models_show(state: State, model: str, as_json: bool) -> None:
    """Show a model's versions, or one version with NAME@VERSION|@LABEL|@ALIAS."""
    if "@" in model:
        mv = _find(state, lambda client: client.get_model_version(model))
        if as_json:
            return _print_json(mv)
        _pairs(
            f"model {mv.model} version {mv.version}",
            {
                "label": mv.label,
                "aliases": ", ".join(mv.aliases),
                "run": mv.run_id,
                "path in run": mv.path_in_run,
                "content hash": mv.content_hash,
                "author": mv.author,
                "created": _when(mv.created_at),
                **{f"metrics.{k}": v for k, v in mv.metrics.items()},
                **{f"tags.{k}": v for k, v in mv.tags.items()},
            },
        )
        return None
    registered = _find(state, lambda client: client.get_model(model))
    versions = registered.find_versions(sort=[("version", -1)], limit=100)
    if as_json:
        return _print_json({"model": registered, "versions": versions})
    _table(
        f"versions of {registered.name}",
        ["version", "label", "aliases", "status", "metrics", "hash", "run", "created"],
        (
            [
                v.version,
                v.label,
                ", ".join(v.aliases),
                f"superseded by {v.tags['superseded_by']}" if "superseded_by" in v.tags else "",
                ", ".join(f"{k}={_fmt(m)}" for k, m in sorted(v.metrics.items())),
                v.content_hash[:12],
                v.run_id,
                _when(v.created_at),
            ]
            for v in versions
        ),
    )
    return None


# --- datasets ---------------------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def datasets() -> None:
    """List and show datasets."""


@datasets.command("list")
@_list_options
@pass_state
def datasets_list(
    state: State, query: str | None, sort: tuple[str, ...], limit: int, offset: int, as_json: bool
) -> None:
    """List dataset versions."""
    found = state.client.find_datasets(_parse_query(query), _parse_sort(sort), limit, offset)
    if as_json:
        return _print_json(found)
    if not found and not query and not offset:
        return _none_here(state, "datasets")
    _table(
        f"datasets in {state.client.project}",
        ["name", "version", "hash", "run", "created"],
        ([d.name, d.version, d.content_hash[:12], d.run_id, _when(d.created_at)] for d in found),
    )
    return None


@datasets.command("show")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def datasets_show(state: State, dataset: str, as_json: bool) -> None:
    """Show a dataset version (NAME or NAME@VERSION) with its files and lineage."""
    name, _, version = dataset.partition("@")
    ds = _find(state, lambda client: client.get_dataset(name, version or "latest"))
    files = ds.list_files()
    lineage = ds.runs
    if as_json:
        return _print_json(
            {
                "dataset": ds,
                "files": files,
                "runs": [{"run_id": r, "role": role} for r, role in lineage],
            }
        )
    _pairs(
        f"dataset {ds.name} version {ds.version}",
        {
            "hash": ds.content_hash,
            "run": ds.run_id,
            "author": ds.author,
            "created": _when(ds.created_at),
        },
    )
    _table("files", ["path", "size", "sha256"], ([f.path, f.size, f.sha256[:12]] for f in files))
    _table("runs", ["run", "role"], lineage)
    return None


# --- data ---------------------------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def data() -> None:
    """List and preview the data sources and sinks of keel.yml.

    \b
    Examples:
      keel data list
      keel data list --phase train --json
      keel data preview train -n 5
      keel -c prod.yml data preview orders --params customer_id=387
    """


def _catalog(state: State) -> Any:
    from keel.config import load_config
    from keel.data.catalog import DataCatalog

    config = load_config(state.config)
    click.echo(config.describe(), err=True)
    return DataCatalog(config)


@data.command("list")
@click.option(
    "--phase",
    type=click.Choice(["train", "test", "predict", "dataset"]),
    help="Only what this phase is given (its tagged entries and the untagged ones).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def data_list(state: State, phase: str | None, as_json: bool) -> None:
    """List data sources and sinks with their type, tags and target."""
    with _catalog(state) as catalog:
        entries = [e for e in catalog.entries() if phase is None or _serves(e.tags, phase)]
    if as_json:
        return _print_json([e.as_dict() for e in entries])
    _table(
        "data sources and sinks" + (f" for {phase}" if phase else ""),
        ["name", "kind", "type", "tags", "target", "cache"],
        (
            [e.name, e.kind, e.type, ", ".join(e.tags) or "(all)", e.target, _expiry(e.expires)]
            for e in entries
        ),
    )
    return None


def _serves(tags: list[str], phase: str) -> bool:
    return not tags or phase in tags


def _expiry(expires: int | None) -> str:
    if expires is None:
        return ""
    return {0: "no", -1: "process"}.get(expires, f"{expires}s")


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--params")
        # YAML scalars, so id=387 binds the number 387 and flag=true a boolean.
        try:
            params[key] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            params[key] = text
    return params


@data.command("preview")
@click.argument("name")
@click.option(
    "--params",
    "-p",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A param for the source (SQL :params, path placeholders). Repeatable.",
)
@click.option("-n", "--rows", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON records for scripts.")
@pass_state
def data_preview(state: State, name: str, pairs: tuple[str, ...], rows: int, as_json: bool) -> None:
    """Show the first rows of data source NAME."""
    from keel.cli.status import status
    from keel.data.preview import preview

    params = _parse_params(pairs) or None
    with _catalog(state) as catalog, status(f"reading {name}"):
        shown = preview(catalog.source(name), params, rows)
    if as_json:
        return _print_json(shown.as_dict())
    if shown.text is not None:
        click.echo(shown.text)
        return None
    _table(shown.title, shown.columns, shown.rows)
    return None


# --- database and housekeeping ------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def db() -> None:
    """Manage the metadata store's schema."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Create or migrate the metadata store to this keel's schema."""
    from keel.store.engine import _create_engine, mask_url, normalize_url, upgrade
    from keel.tracking.settings import resolve_settings

    settings = resolve_settings(store=state.store, project=state.project, config_path=state.config)
    if settings.store.startswith(("http://", "https://")):
        raise ConfigError(
            f"{mask_url(settings.store)} is a keel server: run `keel db upgrade` where it runs, "
            "with --store set to the server's own metadata store"
        )
    from keel.cli.status import status

    engine = _create_engine(normalize_url(settings.store))
    try:
        with status(f"migrating {mask_url(settings.store)}"):
            before, after = upgrade(engine)
    finally:
        engine.dispose()
    where = mask_url(settings.store)
    if before == after:
        click.echo(f"{where}: already at schema revision {after}")
    else:
        click.echo(f"{where}: upgraded schema from {before or 'empty'} to {after}")


@cli.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    help="Keep unreferenced blobs and partial uploads younger than this many seconds "
    "(uploads in flight).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_state
def gc(state: State, dry_run: bool, grace: float, as_json: bool) -> None:
    """Purge deleted runs and artifact files no record refers to, and partial uploads (the
    artifact store's, and the server work folder's that no upload holds)."""
    from keel.server.doctor import sweep_partial_uploads
    from keel.tracking.gc import collect_garbage

    report = collect_garbage(state.client, dry_run=dry_run, grace_seconds=grace)
    sweep = sweep_partial_uploads(
        state.config, store=state.store, grace_seconds=grace, dry_run=dry_run
    )
    report.removed_partials += len(sweep.removed)  # a dry run: those it would remove
    if as_json:
        return _print_json(report)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {len(report.purged_runs)} deleted run(s), "
        f"{len(report.removed_blobs)} unreferenced artifact file(s) "
        f"({report.freed_bytes} bytes) and {report.removed_partials} partial upload(s)"
    )
    if report.kept_runs:
        click.echo(
            f"kept {len(report.kept_runs)} deleted run(s) still used by model versions, "
            "datasets or child runs"
        )
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``keel`` console script."""
    args = list(argv) if argv is not None else sys.argv[1:]
    state = State()
    new_store = _new_default_store()
    try:
        cli.main(args=args, prog_name="keel", standalone_mode=False, obj=state)
    except click.exceptions.Exit as exc:
        if exc.exit_code:
            _remove_if_empty(new_store)
        sys.exit(exc.exit_code)
    except BaseException as exc:
        if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            _remove_if_empty(new_store)
        _fail(exc, state, args)


def _fail(exc: BaseException, state: State, args: list[str]) -> NoReturn:
    """Print a failed command's error as one line and exit with its code."""
    if isinstance(exc, click.exceptions.Abort):
        click.echo("aborted", err=True)
        sys.exit(130)
    if isinstance(exc, click.ClickException):
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(exc, NotFound):
        click.echo("error: " + _not_found_line(exc, state, args), err=True)
        sys.exit(state.error_exit)
    if isinstance(exc, KeelError):
        # one line, whatever the message quotes (a key or a path may hold a line break)
        click.echo("error: " + _one_line(exc), err=True)
        sys.exit(state.error_exit)
    # Raised by user code (a model, a plugin) or a keel bug: one line that says where,
    # the traceback with -v.
    if not isinstance(exc, Exception) or state.verbose or "-v" in args or "--verbose" in args:
        raise exc
    message = _one_line(exc) or "(no message)"
    click.echo(
        f"error: {type(exc).__name__}: {message} ({_raised_at(exc)}; "
        "rerun with -v for the traceback)",
        err=True,
    )
    sys.exit(1)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).splitlines())


def _not_found_line(exc: NotFound, state: State, args: list[str]) -> str:
    """The error with the store searched, and for a name held by other projects of the store,
    which ones and the command again with ``--project``."""
    client = state._client
    if isinstance(exc, NoStore) or client is None:
        return _one_line(exc)
    where = f"store {client.store_url}"
    if not isinstance(exc, NotInProject):
        message = _one_line(exc)
        return message if client.store_url in message else f"{message} ({where})"
    line = f"no {exc.kind} named {exc.name!r} in project {exc.project!r} ({where})"
    if len(exc.elsewhere) == 1:
        line += f"; it is in project {exc.elsewhere[0]!r}: {_rerun(args, exc.elsewhere[0])}"
    elif exc.elsewhere:
        holders = ", ".join(map(repr, exc.elsewhere))
        line += f"; it is in projects {holders}: {_rerun(args, 'NAME')}"
    return line


def _rerun(args: list[str], project: str) -> str:
    """The command line again, in ``project``."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--project":
            skip = True
        elif not arg.startswith("--project="):
            kept.append(arg)
    return shlex.join(["keel", "--project", project, *kept])


def _new_default_store() -> Path | None:
    """``./.keel`` if it does not exist yet: a command that fails and leaves it holding no
    record has only made an empty store, which :func:`_remove_if_empty` takes back."""
    from pathlib import Path

    from keel.tracking.settings import DEFAULT_STORE_DIR

    try:
        folder = Path.cwd() / DEFAULT_STORE_DIR
    except OSError:  # the working directory was removed: nothing to take back there
        return None
    return None if folder.exists() else folder


def _remove_if_empty(folder: Path | None) -> None:
    import shutil

    if folder is None or not folder.is_dir():
        return
    try:
        from keel.store.engine import dispose_engines, holds_records

        dispose_engines()  # SQLite's files are closed before they are removed
        if not holds_records(folder):
            shutil.rmtree(folder, ignore_errors=True)
    except Exception:  # tidying up must never hide the command's own error
        return


def _raised_at(exc: BaseException) -> str:
    """``file line N`` of the deepest frame outside keel and the installed libraries: the
    user's code that raised, or else where the exception was raised."""
    import sysconfig
    import traceback
    from pathlib import Path

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "no traceback"
    keel_dir = Path(__file__).resolve().parents[1]
    libraries = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}

    def foreign(filename: str) -> bool:
        path = Path(filename).resolve()
        return not path.is_relative_to(keel_dir) and not any(
            path.is_relative_to(lib) for lib in libraries
        )

    frame = next((f for f in reversed(frames) if foreign(f.filename)), frames[-1])
    if frame.filename.startswith("<"):
        # code unpickled by value (a version's stored model code) has no file of its own
        return (
            f"in {frame.name}() of the model version's stored code, line {frame.lineno}; "
            "--live-code runs keel.yml's module instead"
        )
    return f"at {frame.filename} line {frame.lineno}"


# The lifecycle and serving commands register themselves on ``cli`` (kept in their own module).
from keel.cli import container as _container  # noqa: E402, F401
from keel.cli import doctor as _doctor  # noqa: E402, F401
from keel.cli import jobs as _jobs  # noqa: E402, F401
from keel.cli import launchpad as _launchpad  # noqa: E402, F401
from keel.cli import lifecycle as _lifecycle  # noqa: E402, F401
from keel.cli import ml2p as _ml2p  # noqa: E402, F401
from keel.cli import monitor as _monitor  # noqa: E402, F401
from keel.cli import pipelines as _pipelines  # noqa: E402, F401
from keel.cli import sagemaker as _sagemaker  # noqa: E402, F401
from keel.cli import sagemaker_local as _sagemaker_local  # noqa: E402, F401
from keel.cli import server as _server  # noqa: E402, F401
from keel.cli import serving as _serving  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    main()
