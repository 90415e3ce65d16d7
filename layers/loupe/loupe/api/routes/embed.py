"""Routes of embedding, served by the dashboards function: editors grant and revoke embed tokens and share
links; guests (the token or link as `Authorization: Bearer`) read only their dashboard under /embed/."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Editor, Guest
from loupe.api.context import current_request
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, no_content
from loupe.models.dashboards import DashboardData, DashboardFilterValues, DashboardOut
from loupe.models.embed import (
    EmbedTokenCreate,
    EmbedTokenCreated,
    EmbedTokenRevocation,
    EmbedTokensRevoked,
    GuestFilterOptionsQuery,
    ShareCreate,
    ShareCreated,
    ShareList,
)
from loupe.models.queries import ParameterOptionsPage
from loupe.services import embed

router = LoupeRouter()
TAGS = ["embedding"]
PREFLIGHT_SECONDS = 600
# Guest routes take an embed token, and nothing else.
GUEST_SECURITY: list[dict[str, list[str]]] = [{"guestToken": []}]


def _token() -> dict[str, Any]:
    token = current_request().guest_token
    assert token is not None  # the Guest guard set it
    return token


def _for_guest(body: Any) -> Response[Any]:
    """200, readable by a page of the token's allowed origins (and by no other page)."""
    headers = {"Vary": "Origin"}
    origin = current_request().headers.get("origin")
    if origin is not None and origin in _token()["allowed_origins"]:
        headers |= {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
        }
    return Response(status_code=200, content_type="application/json", body=body, headers=headers)


@router.post(
    "/embed-tokens",
    operation_id="createEmbedToken",
    status_code=201,
    errors=(404,),
    tags=TAGS,
    summary="Mint a guest's signed token for one dashboard, with locked values, editable filters and claims",
)
def create_embed_token(body: EmbedTokenCreate, caller: Editor) -> Response[EmbedTokenCreated]:
    made = embed.mint(caller, body)
    return created(made, f"{API_PREFIX}/embed-tokens/{made.jti}")


@router.delete(
    "/embed-tokens/<token_id>",
    operation_id="revokeEmbedToken",
    status_code=204,
    errors=(404,),
    tags=TAGS,
    summary="Revoke one embed token; its guest is refused from the next request",
)
def revoke_embed_token(token_id: UUID, caller: Editor) -> Response[None]:
    embed.revoke(caller, token_id)
    return no_content()


@router.delete(
    "/embed-tokens",
    operation_id="revokeEmbedTokensOfResource",
    errors=(404,),
    tags=TAGS,
    summary="Revoke every live embed token of a dashboard",
)
def revoke_embed_tokens(
    caller: Editor, query: Annotated[EmbedTokenRevocation, Query()]
) -> EmbedTokensRevoked:
    return embed.revoke_all(caller, query)


@router.post(
    "/dashboards/<dashboard_id>/shares",
    operation_id="createShareLink",
    status_code=201,
    errors=(404, 409),
    tags=TAGS,
    summary="Create a public share link of the dashboard (where the organization enables them)",
)
def create_share_link(dashboard_id: UUID, body: ShareCreate, caller: Editor) -> Response[ShareCreated]:
    made = embed.share(caller, dashboard_id, body)
    return created(made, f"{API_PREFIX}/dashboards/{dashboard_id}/shares/{made.id}")


@router.get(
    "/dashboards/<dashboard_id>/shares",
    operation_id="listShareLinks",
    errors=(404,),
    tags=TAGS,
    summary="The dashboard's share links, with how often each was used (never their secrets)",
)
def list_share_links(dashboard_id: UUID, caller: Editor) -> ShareList:
    return embed.shares(caller, dashboard_id)


@router.delete(
    "/dashboards/<dashboard_id>/shares/<share_id>",
    operation_id="revokeShareLink",
    status_code=204,
    errors=(404,),
    tags=TAGS,
    summary="Revoke a share link; it stops working at once",
)
def revoke_share_link(dashboard_id: UUID, share_id: UUID, caller: Editor) -> Response[None]:
    embed.revoke_share(caller, dashboard_id, share_id)
    return no_content()


@router.get(
    "/embed/resource",
    operation_id="getEmbeddedResource",
    security=GUEST_SECURITY,
    tags=TAGS,
    summary="The token's dashboard (guests)",
)
def get_embedded_resource(guest: Guest) -> Response[DashboardOut]:
    return _for_guest(embed.resource(guest, _token()))


@router.get(
    "/embed/data",
    operation_id="getEmbeddedData",
    security=GUEST_SECURITY,
    errors=(429, 503),
    tags=TAGS,
    summary="The token's dashboard drawn with its locked values and the filters' defaults (guests)",
)
def get_embedded_data(guest: Guest) -> Response[DashboardData]:
    return _for_guest(embed.data(guest, _token(), {}))


@router.post(
    "/embed/data",
    operation_id="drawEmbeddedData",
    security=GUEST_SECURITY,
    errors=(429, 503),
    tags=TAGS,
    summary="The token's dashboard drawn with values for its editable filters (guests)",
)
def draw_embedded_data(body: DashboardFilterValues, guest: Guest) -> Response[DashboardData]:
    return _for_guest(embed.data(guest, _token(), body.filters))


@router.get(
    "/embed/filters/<name>/options",
    operation_id="listEmbeddedFilterOptions",
    security=GUEST_SECURITY,
    errors=(404, 409, 429, 503),
    tags=TAGS,
    summary="An editable filter's options, the others at their locked values or defaults (guests)",
)
def list_embedded_filter_options(
    name: str, guest: Guest, query: Annotated[GuestFilterOptionsQuery, Query()]
) -> Response[ParameterOptionsPage]:
    return _for_guest(embed.filter_options(guest, _token(), name, query.q, query.limit, query.offset))


def _preflight() -> Response[None]:
    """Preflights carry no token: any page may ask; the actual response allows only the token's origins."""
    origin = current_request().headers.get("origin")
    headers = {
        "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": str(PREFLIGHT_SECONDS),
        "Vary": "Origin",
    }
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
    return Response(status_code=204, headers=headers)


@router.route("/embed/resource", method="OPTIONS", include_in_schema=False)
@router.route("/embed/data", method="OPTIONS", include_in_schema=False)
def preflight() -> Response[None]:
    return _preflight()


@router.route("/embed/filters/<name>/options", method="OPTIONS", include_in_schema=False)
def preflight_options(name: str) -> Response[None]:
    del name  # any filter's: a preflight names no token to check it against
    return _preflight()
