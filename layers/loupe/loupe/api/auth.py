"""Authentication and role checks as Powertools dependencies: one declarative piece for every route.

def list_things(caller: Annotated[Principal, Depends(require(Role.EDITOR))]): ...
"""

import functools
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.request import Request

from loupe import db
from loupe.api.context import current_request
from loupe.errors import Forbidden, Unauthorized
from loupe.models.identity import Principal, Role
from loupe.services import identity

BEARER_PREFIX = "bearer "


def authenticate(request: Request) -> Principal:
    """Resolve the caller from `Authorization: Bearer` or `X-API-Key` and bind the transaction to
    the caller's organization, so every later query is filtered by row-level security."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    authorization = headers.get("authorization")
    api_key = headers.get("x-api-key")
    if authorization is not None:
        if not authorization.lower().startswith(BEARER_PREFIX):
            raise Unauthorized("Use the Bearer scheme: Authorization: Bearer <token>")
        principal = identity.authenticate_access_token(authorization[len(BEARER_PREFIX) :].strip())
    elif api_key is not None:
        principal = identity.authenticate_api_key(api_key.strip())
    else:
        raise Unauthorized(headers={"WWW-Authenticate": 'Bearer realm="loupe"'})
    current_request().principal = principal
    return principal


def require(minimum: Role) -> Callable[[Principal], Principal]:
    """A dependency that authenticates, then refuses callers whose role is below `minimum`."""

    def check_role(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role < minimum:
            raise Forbidden(f"This needs the {minimum.label} role")
        return principal

    check_role.__name__ = f"require_{minimum.label}"
    _MINIMUM_ROLE[check_role] = minimum
    return check_role


_MINIMUM_ROLE: dict[Callable[..., Principal], Role] = {authenticate: Role.VIEWER}


@functools.cache
def required_role(route: Callable[..., Any]) -> Role | None:
    """The least role a route's signature asks for through its dependencies; None for a public route."""
    for hint in get_type_hints(route, include_extras=True).values():
        if get_origin(hint) is Annotated:
            for meta in get_args(hint)[1:]:
                if isinstance(meta, Depends) and meta.dependency in _MINIMUM_ROLE:
                    return _MINIMUM_ROLE[meta.dependency]
    return None


def check_access(request: Request, route: Callable[..., Any]) -> None:
    """Authenticate and authorize for `route` outside its own call: Powertools validates a request
    before resolving dependencies, and a caller who may not use a route must not learn its schema
    (so 401 and 403 come before 422)."""
    minimum = required_role(route)
    if minimum is None:
        return
    with db.transaction():
        principal = authenticate(request)
        if principal.role < minimum:
            raise Forbidden(f"This needs the {minimum.label} role")


Caller = Annotated[Principal, Depends(authenticate)]
Editor = Annotated[Principal, Depends(require(Role.EDITOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
