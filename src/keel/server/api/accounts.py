"""Routes of accounts: users, their roles and passwords (admin only), API tokens (admin for
anyone's, any logged-in user for their own), and who the caller is.

A token's secret is in the answer that creates it and nowhere else: only its hash is kept.
A new password or role, and removing a user, end that user's browser sessions everywhere
(:class:`keel.server.auth.Accounts`); a common password is refused.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import Field

from keel.entities import ROLES, ApiToken, User
from keel.server.api.codec import KeelJSON, no_content, reply, returns, schema_of
from keel.server.api.common import Body
from keel.server.auth import ANONYMOUS, Principal
from keel.server.deps import current_principal, get_accounts, require
from keel.server.guard import GuardedRoute

router = APIRouter(route_class=GuardedRoute, tags=["accounts"], default_response_class=KeelJSON)

ROLE_HELP = "one of " + ", ".join(ROLES) + " (each may do what the one before may)"
PASSWORD_HELP = (
    "at least 8 characters, not the user name, not one of the 20,000 most common passwords"
)
NEW_TOKEN_SCHEMA = {
    "type": "object",
    "properties": {
        "token": schema_of(ApiToken),
        "secret": {
            "type": "string",
            "description": "the token (keel_…): shown this once; send it as 'Authorization: "
            "Bearer <secret>' or set KEEL_TOKEN",
        },
    },
}
PRINCIPAL_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "role": {"enum": list(ROLES)}},
}


class NewUser(Body):
    """A user to add."""

    name: str = Field(description="1 to 64 characters, no spaces, '/', ':' or '@'")
    password: str = Field(description=PASSWORD_HELP)
    role: str = Field("viewer", description=ROLE_HELP)


class PasswordBody(Body):
    """The new password."""

    password: str = Field(description=PASSWORD_HELP)


class RoleBody(Body):
    """The role to give."""

    role: str = Field(description=ROLE_HELP)


class NewToken(Body):
    """A token to create for a user."""

    user: str
    name: str = Field(description="what it is for, e.g. 'laptop' or 'ci'")


class NewOwnToken(Body):
    """A token to create for yourself."""

    name: str = Field(description="what it is for, e.g. 'laptop' or 'ci'")


def logged_in(request: Request) -> None:
    """Refuse anonymous callers (401): only a user has tokens of their own.

    Declared before ``require(...)`` so that an anonymous caller hears this, not the CSRF
    check's complaint about a form.
    """
    if current_principal(request) is ANONYMOUS:
        raise HTTPException(401, "log in, or send an API token: anonymous callers have no tokens")


def _new_token(request: Request, user: str, name: str) -> KeelJSON:
    token, secret = get_accounts(request).create_token(user, name)
    return reply({"token": token, "secret": secret}, 201)


# --- the caller ------------------------------------------------------------------------------


@router.get("/me", responses=returns(schema=PRINCIPAL_SCHEMA), summary="Who am I")
def me(principal: Principal = Depends(require("viewer"))) -> KeelJSON:
    """The caller's name and role (``anonymous`` when the server allows anonymous reads)."""
    return reply({"name": principal.name, "role": principal.role})


@router.get(
    "/me/tokens",
    dependencies=[Depends(logged_in)],
    responses=returns(ApiToken, many=True),
    summary="My tokens",
)
def my_tokens(request: Request, principal: Principal = Depends(require("viewer"))) -> KeelJSON:
    user = principal.name
    return reply(get_accounts(request).store.list_tokens(user))


@router.post(
    "/me/tokens",
    dependencies=[Depends(logged_in)],
    status_code=201,
    responses=returns(schema=NEW_TOKEN_SCHEMA, status=201),
    summary="Create a token for myself",
)
def create_my_token(
    body: NewOwnToken, request: Request, principal: Principal = Depends(require("viewer"))
) -> KeelJSON:
    """Any logged-in user may make tokens for themselves (with their own role)."""
    return _new_token(request, principal.name, body.name)


@router.delete(
    "/me/tokens/{name:path}",
    dependencies=[Depends(logged_in)],
    responses=returns(ApiToken),
    summary="Revoke one of my tokens",
)
def revoke_my_token(
    name: str, request: Request, principal: Principal = Depends(require("viewer"))
) -> KeelJSON:
    user = principal.name
    return reply(get_accounts(request).store.revoke_token(user, name))


# --- users (admin) ---------------------------------------------------------------------------


@router.get(
    "/users",
    dependencies=[Depends(require("admin"))],
    responses=returns(User, many=True),
    summary="List users",
)
def list_users(request: Request) -> KeelJSON:
    return reply(get_accounts(request).store.list_users())


@router.post(
    "/users",
    dependencies=[Depends(require("admin"))],
    status_code=201,
    responses=returns(User, status=201),
    summary="Add a user",
)
def add_user(body: NewUser, request: Request) -> KeelJSON:
    return reply(get_accounts(request).add_user(body.name, body.password, body.role), 201)


@router.patch(
    "/users/{name}",
    dependencies=[Depends(require("admin"))],
    responses=returns(User),
    summary="Change a user's role",
)
def set_role(name: str, body: RoleBody, request: Request) -> KeelJSON:
    """The user's browser sessions end (they log in again); the last admin stays one."""
    return reply(get_accounts(request).set_role(name, body.role))


@router.put(
    "/users/{name}/password",
    dependencies=[Depends(require("admin"))],
    status_code=204,
    response_class=Response,
    summary="Set a user's password",
)
def set_password(name: str, body: PasswordBody, request: Request) -> Response:
    """The user's browser sessions end (they log in again with the new password)."""
    get_accounts(request).set_password(name, body.password)
    return no_content()


@router.delete(
    "/users/{name}",
    dependencies=[Depends(require("admin"))],
    status_code=204,
    response_class=Response,
    summary="Remove a user and their tokens",
)
def remove_user(name: str, request: Request) -> Response:
    get_accounts(request).remove_user(name)
    return no_content()


# --- tokens (admin) --------------------------------------------------------------------------


@router.get(
    "/tokens",
    dependencies=[Depends(require("admin"))],
    responses=returns(ApiToken, many=True),
    summary="List tokens (all users', or one user's)",
)
def list_tokens(
    request: Request, user: str | None = Query(None, description="only this user's")
) -> KeelJSON:
    return reply(get_accounts(request).store.list_tokens(user))


@router.post(
    "/tokens",
    dependencies=[Depends(require("admin"))],
    status_code=201,
    responses=returns(schema=NEW_TOKEN_SCHEMA, status=201),
    summary="Create a token for a user",
)
def create_token(body: NewToken, request: Request) -> KeelJSON:
    return _new_token(request, body.user, body.name)


@router.delete(
    "/tokens/{user}/{name:path}",
    dependencies=[Depends(require("admin"))],
    responses=returns(ApiToken),
    summary="Revoke a user's token",
)
def revoke_token(user: str, name: str, request: Request) -> KeelJSON:
    return reply(get_accounts(request).store.revoke_token(user, name))
