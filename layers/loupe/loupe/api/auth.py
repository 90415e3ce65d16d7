"""Authentication and role checks as Powertools dependencies: one declarative piece for every route.

def list_things(caller: Annotated[Principal, Depends(require(Role.EDITOR))]): ...
"""

import functools
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from aws_lambda_powertools.event_handler import Depends

from loupe import db
from loupe.api.context import current_request
from loupe.errors import MissingCredentials, NotPermitted, Unauthenticated
from loupe.models.identity import Principal, Role
from loupe.services import identity

BEARER_PREFIX = "bearer "


def _bearer_credential(authorization: str, credential: str) -> str:
    """What an `Authorization: Bearer <credential>` header carries; another scheme is refused."""
    if not authorization.lower().startswith(BEARER_PREFIX):
        raise Unauthenticated(f"Use the Bearer scheme: Authorization: Bearer <{credential}>")
    return authorization[len(BEARER_PREFIX) :].strip()


def authenticate() -> Principal:
    """Resolve the caller from `Authorization: Bearer` or `X-API-Key` and bind the transaction to
    the caller's organization, so every later query is filtered by row-level security."""
    state = current_request()
    authorization = state.headers.get("authorization")
    api_key = state.headers.get("x-api-key")
    if authorization is not None:
        token = _bearer_credential(authorization, "token")
        state.principal = identity.authenticate_access_token(token, state.client_ip)
    elif api_key is not None:
        state.principal = identity.authenticate_api_key(api_key.strip(), state.client_ip)
    else:
        raise MissingCredentials()
    return state.principal


# The dependencies that guard routes; each but `authenticate` takes the authenticated principal.
_GUARDS: set[Callable[..., Principal]] = {authenticate}


def require(minimum: Role) -> Callable[[Principal], Principal]:
    """A dependency that authenticates, then refuses callers whose role is below `minimum`."""

    def check_role(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role < minimum:
            raise NotPermitted(f"This needs the {minimum.label} role")
        return principal

    check_role.__name__ = f"require_{minimum.label}"
    _GUARDS.add(check_role)
    return check_role


def require_user(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """A dependency for routes about a person (sessions, profile): an API key is not one."""
    if principal.user_id is None:
        raise Unauthenticated("This route needs a user's access token, not an API key")
    return principal


_GUARDS.add(require_user)


def authenticate_guest() -> Principal:
    """A guest of an embed token (`Authorization: Bearer <embed token>`), bound to the token's
    organization; no other credential is taken on a guest route, and a guest token is taken on no
    other route (its audience is its own)."""
    state = current_request()
    authorization = state.headers.get("authorization")
    if authorization is None:
        raise MissingCredentials()
    token = _bearer_credential(authorization, "embed token")
    state.principal, state.guest_token = identity.authenticate_guest_token(token, state.client_ip)
    return state.principal


_GUARDS.add(authenticate_guest)


def guest_token() -> dict[str, Any]:
    """The row of the embed token or share link the Guest guard authenticated this request with."""
    token = current_request().guest_token
    assert token is not None  # the Guest guard set it
    return token


@functools.cache
def route_guard(route: Callable[..., Any]) -> Callable[..., Principal] | None:
    """The dependency a route's signature guards it with (Caller, User, Editor, Admin); None if public."""
    for hint in get_type_hints(route, include_extras=True).values():
        if get_origin(hint) is Annotated:
            for meta in get_args(hint)[1:]:
                if isinstance(meta, Depends) and meta.dependency in _GUARDS:
                    guard: Callable[..., Principal] = meta.dependency
                    return guard
    return None


def check_access(route: Callable[..., Any]) -> None:
    """Run a route's guard outside its own call: Powertools validates a request before resolving
    dependencies, and a caller who may not use a route must not learn its schema (so 401 and 403
    come before 422)."""
    guard = route_guard(route)
    if guard is None:
        return
    with db.transaction():
        if guard is authenticate_guest:
            authenticate_guest()
            return
        principal = authenticate()
        if guard is not authenticate:
            guard(principal)


Caller = Annotated[Principal, Depends(authenticate)]
User = Annotated[Principal, Depends(require_user)]
Editor = Annotated[Principal, Depends(require(Role.EDITOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Guest = Annotated[Principal, Depends(authenticate_guest)]
