"""``keel server``, ``keel users …`` and ``keel tokens …``: the platform server and its accounts.

Thin callers of :mod:`keel.server` (the app, settings and :class:`~keel.server.auth.Accounts`).
"""

from __future__ import annotations

import sys

import click

from keel.cli import PrefixGroup, State, _print_json, _table, _when, cli, pass_state
from keel.entities import ROLES
from keel.errors import ConfigError

SERVER_EXAMPLES = """\b
Examples:
  keel server                                  # ./.keel on http://127.0.0.1:8080
  keel server --store postgresql://keel@db/keel --artifacts s3://bucket/keel --host 0.0.0.0
  keel users add ann --role editor             # asks for the password
  keel tokens create --user ann --name laptop  # prints the token once
  KEEL_TOKEN=keel_… python -c 'import keel; keel.Client("http://127.0.0.1:8080")'
"""


def _settings(state: State, store: str | None, artifacts: str | None, **overrides: object):  # type: ignore[no-untyped-def]
    from keel.server.settings import ServerSettings

    return ServerSettings.resolve(
        state.config, store=store or state.store, artifacts=artifacts, **overrides
    )


def _accounts(state: State, store: str | None = None):  # type: ignore[no-untyped-def]
    from keel.server.auth import Accounts
    from keel.store.accounts import AccountStore

    return Accounts(AccountStore(_settings(state, store, None).store))


@cli.command("server", epilog=SERVER_EXAMPLES)
@click.option("--host", help="Address to listen on (default 127.0.0.1; keel.yml server.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default 8080).")
@click.option("--store", "store", help="Metadata store URL or folder (overrides --store above).")
@click.option("--artifacts", help="Artifact store URL (default: beside an embedded store).")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@pass_state
def server(
    state: State,
    host: str | None,
    port: int | None,
    store: str | None,
    artifacts: str | None,
    log_level: str,
) -> None:
    """Run the platform server: the REST API (/api/v1), the web UI (/) and /docs.

    On a loopback address a store without users gets a first admin, whose password is
    printed once. Any other address needs an admin made beforehand (keel users add NAME
    --role admin): a server others can reach never starts without one.
    """
    import uvicorn

    from keel.server.app import create_app
    from keel.server.protocol import protocol_class

    settings = _settings(state, store, artifacts, host=host, port=port)
    accounts = _accounts(state, settings.store)
    if accounts.store.count_admins() == 0:
        if not settings.loopback_only:
            raise ConfigError(
                f"refusing to listen on {settings.host}: the store has no admin user; "
                "create one first with `keel users add NAME --role admin`"
            )
        if not accounts.store.list_users():
            from keel.server.auth import new_password

            password = new_password()
            accounts.add_user("admin", password, "admin")
            click.echo(
                f"keel: created the first user: admin / {password}  (shown once; change it "
                "with `keel users passwd admin`)",
                err=True,
            )
    click.echo(
        f"keel: server on http://{settings.host}:{settings.port} (API docs at /docs)", err=True
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        proxy_headers=True,
        workers=1,  # one process per replica; never WEB_CONCURRENCY (uvicorn would exit)
        # httptools, with deadlines for slow clients (server.header_timeout_s, body_timeout_s)
        http=protocol_class(settings.header_timeout_s, settings.body_timeout_s),
    )


# --- users ----------------------------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def users() -> None:
    """People who may use the platform server, and their roles (viewer, editor, admin)."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        # getpass would warn over several lines, then read the password with echo on
        raise click.UsageError(
            "no terminal to ask for the password on: pipe it in with --password-stdin"
        )
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@pass_state
def users_add(state: State, name: str, role: str, password_stdin: bool) -> None:
    """Add a user (asks for the password, hashed with argon2id; a common one is refused)."""
    user = _accounts(state).add_user(name, _read_password(password_stdin), role)
    click.echo(f"added {user.name} ({user.role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def users_list(state: State, as_json: bool) -> None:
    """List users and their roles."""
    found = _accounts(state).store.list_users()
    if as_json:
        _print_json(found)
        return
    _table(
        "users", ["name", "role", "created"], ([u.name, u.role, _when(u.created_at)] for u in found)
    )


@users.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def users_remove(state: State, name: str, yes: bool) -> None:
    """Remove a user and revoke their tokens and sessions (the last admin stays)."""
    if not yes:
        click.confirm(f"remove {name} and their tokens?", abort=True)
    _accounts(state).remove_user(name)
    click.echo(f"removed {name}")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@pass_state
def users_passwd(state: State, name: str, password_stdin: bool) -> None:
    """Set a user's password (not a common one); their browser sessions end."""
    _accounts(state).set_password(name, _read_password(password_stdin))
    click.echo(f"password of {name} changed; their browser sessions have ended")


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@pass_state
def users_set_role(state: State, name: str, role: str) -> None:
    """Change a user's role (the last admin stays one); their browser sessions end."""
    user = _accounts(state).set_role(name, role)
    click.echo(f"{user.name} is now {user.role}")


# --- tokens ---------------------------------------------------------------------------------


@cli.group(cls=PrefixGroup)
def tokens() -> None:
    """API tokens for the REST API and keel.Client("http://…", token=…)."""


@tokens.command("create")
@click.option("--user", "user", required=True, help="Whose token it is.")
@click.option("--name", default="default", show_default=True, help="A name to revoke it by.")
@pass_state
def tokens_create(state: State, user: str, name: str) -> None:
    """Create a token and print it once (only its hash is kept)."""
    token, secret = _accounts(state).create_token(user, name)
    click.echo(secret)
    click.echo(
        f"token {token.name!r} of {token.user}: shown once; use it as KEEL_TOKEN or "
        "'Authorization: Bearer …'",
        err=True,
    )


@tokens.command("revoke")
@click.argument("name")
@click.option("--user", "user", required=True, help="Whose token it is.")
@pass_state
def tokens_revoke(state: State, name: str, user: str) -> None:
    """Revoke a token: requests that send it are refused from now on."""
    _accounts(state).store.revoke_token(user, name)
    click.echo(f"revoked {user}'s token {name!r}")


@tokens.command("list")
@click.option("--user", "user", help="Only this user's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def tokens_list(state: State, user: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    found = _accounts(state).store.list_tokens(user)
    if as_json:
        _print_json(found)
        return
    _table(
        "API tokens",
        ["user", "name", "created", "revoked"],
        ([t.user, t.name, _when(t.created_at), _when(t.revoked_at)] for t in found),
    )
