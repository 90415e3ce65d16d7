"""Routes of embedding, served by the dashboards function: editors grant and revoke embed tokens; guests (an
embed token or a share link as `Authorization: Bearer`) read only their resource under /embed/. Share links
are declared with each resource (loupe.api.shares); guest answers' CORS headers, in loupe.api.guest_cors."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Editor, Guest, guest_token
from loupe.api.guest_cors import GUEST_SECURITY, guest_preflight
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, no_content
from loupe.models.dashboards import DashboardData, DashboardFilterValues
from loupe.models.embed import (
    EmbedTokenCreate,
    EmbedTokenCreated,
    EmbedTokenRevocation,
    EmbedTokensRevoked,
    GuestDownload,
    GuestDownloadRequest,
    GuestFilterOptionsQuery,
    GuestView,
)
from loupe.models.queries import ParameterOptionsPage
from loupe.services import embed

router = LoupeRouter()
TAGS = ["embedding"]


@router.post(
    "/embed-tokens",
    operation_id="createEmbedToken",
    status_code=201,
    errors=(404,),
    tags=TAGS,
    summary="Mint a guest's signed token for one dashboard, visualization or query result, with locked"
    " values, editable filters and claims",
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
    summary="Revoke every live embed token of a resource",
)
def revoke_embed_tokens(
    caller: Editor, query: Annotated[EmbedTokenRevocation, Query()]
) -> EmbedTokensRevoked:
    return embed.revoke_all(caller, query)


@router.get(
    "/embed/resource",
    operation_id="getEmbeddedResource",
    security=GUEST_SECURITY,
    tags=TAGS,
    summary="What the guest's page draws: the resource as a dashboard, its editable filters (guests)",
)
def get_embedded_resource(guest: Guest) -> GuestView:
    return embed.resource(guest, guest_token())


@router.get(
    "/embed/data",
    operation_id="getEmbeddedData",
    security=GUEST_SECURITY,
    errors=(429, 503),
    tags=TAGS,
    summary="The resource drawn with its locked values and the filters' defaults (guests)",
)
def get_embedded_data(guest: Guest) -> DashboardData:
    return embed.data(guest, guest_token(), {})


@router.post(
    "/embed/data",
    operation_id="drawEmbeddedData",
    security=GUEST_SECURITY,
    errors=(429, 503),
    tags=TAGS,
    summary="The resource drawn with values for its editable filters (guests)",
)
def draw_embedded_data(body: DashboardFilterValues, guest: Guest) -> DashboardData:
    return embed.data(guest, guest_token(), body.filters)


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
) -> ParameterOptionsPage:
    return embed.filter_options(guest, guest_token(), name, query.q, query.limit, query.offset)


@router.post(
    "/embed/downloads",
    operation_id="downloadEmbeddedTile",
    security=GUEST_SECURITY,
    errors=(403, 404, 409, 410, 503),
    tags=TAGS,
    summary="A tile's rows as a CSV, JSON or XLSX file (guests whose token or link allows downloads)",
    description="The file holds the rows of the newest stored run the data call shows for these filter"
    " values; 409 while the tile has none (draw it first) or when it is too large to export at once. The"
    " answer is a short-lived signed URL, not a redirect, so that a page calling with a token can navigate"
    " to it.",
)
def download_embedded_tile(body: GuestDownloadRequest, guest: Guest) -> GuestDownload:
    return embed.download(guest, guest_token(), body)


@router.route("/embed/resource", method="OPTIONS", include_in_schema=False)
@router.route("/embed/data", method="OPTIONS", include_in_schema=False)
@router.route("/embed/downloads", method="OPTIONS", include_in_schema=False)
def preflight() -> Response[None]:
    return guest_preflight()


@router.route("/embed/filters/<name>/options", method="OPTIONS", include_in_schema=False)
def preflight_options(name: str) -> Response[None]:
    del name  # any filter's: a preflight names no token to check it against
    return guest_preflight()
