"""Authentication and role checks as Powertools dependencies: one declarative piece for every route.

def list_things(caller: Annotated[Principal, Depends(require(Role.EDITOR))]): ...
"""

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.request import Request

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
    return check_role


Caller = Annotated[Principal, Depends(authenticate)]
Editor = Annotated[Principal, Depends(require(Role.EDITOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
