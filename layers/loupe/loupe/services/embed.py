"""Guests of a dashboard, visualization or query result: embed tokens (signed, short-lived) and share links
(long-lived secrets) that editors (or the organization's API keys) grant and revoke; guests draw exactly
that resource, its locked values applied and only its editable filters changed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from loupe import db
from loupe.config import get_settings
from loupe.errors import Conflict, FieldIssue, InvalidInput, NotFound, NotPermitted
from loupe.models.dashboards import (
    DEFAULT_MAX_AGE_SECONDS,
    GRID_COLUMNS,
    DashboardData,
    DashboardDataRequest,
    DashboardOut,
    FilterOptionsRequest,
    TileOut,
)
from loupe.models.embed import (
    EmbeddedResource,
    EmbedTokenCreate,
    EmbedTokenCreated,
    EmbedTokenRevocation,
    EmbedTokensRevoked,
    GuestAccess,
    GuestDownload,
    GuestDownloadRequest,
    GuestView,
    ShareCreate,
    ShareCreated,
    ShareList,
    ShareOut,
)
from loupe.models.identity import Principal, Role
from loupe.models.organizations import OrganizationSettings
from loupe.models.queries import ParameterOptionsPage
from loupe.repositories import crud, embed_tokens
from loupe.repositories import organizations as organizations_repository
from loupe.repositories.embed_tokens import EMBED_TOKENS
from loupe.repositories.queries import QUERIES
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.security import tokens
from loupe.services import audit
from loupe.services.dashboards import Board, dashboards, draw, filter_values, options_of, plan_tiles
from loupe.services.queries import queries
from loupe.services.resources import ResourceService
from loupe.services.runs import runs
from loupe.services.visualizations import visualizations

# A visualization or a query result is drawn as a dashboard of one full-width tile this high.
SINGLE_TILE_HEIGHT = 8


def _one_tile(shown: Mapping[str, Any], query: Mapping[str, Any], visualization_id: UUID | None) -> Board:
    """A visualization (or a query's result, drawn as a table) as a dashboard of one tile whose filters
    are the query's parameters, each feeding the parameter of its name."""
    parameters = query["parameters"]
    tile = TileOut(
        id=shown["id"],
        visualization_id=visualization_id,
        text=None,
        x=0,
        y=0,
        w=GRID_COLUMNS,
        h=SINGLE_TILE_HEIGHT,
        param_mappings={parameter["name"]: parameter["name"] for parameter in parameters},
    )
    row = {"filters": parameters, "max_age_seconds": DEFAULT_MAX_AGE_SECONDS, "timezone": None}
    dashboard = DashboardOut.model_validate(
        {**shown, "description": shown.get("description"), **row, "tags": [], "tiles": [tile]}
    )
    return Board(row, dashboard, {} if visualization_id is not None else {tile.id: query})


def board_of(principal: Principal, resource_type: str, resource_id: UUID) -> Board:
    """What a resource is drawn as (in the caller's transaction): a dashboard, or a visualization or a
    query's result as a dashboard of one tile; a 404 when it is gone."""
    if resource_type == "dashboard":
        return dashboards.board(principal, resource_id)
    organization_id = principal.organization_id
    if resource_type == "visualization":
        visualization = crud.get(VISUALIZATIONS, organization_id, resource_id)
        if visualization is None:
            raise NotFound("No such visualization")
        query = crud.get(QUERIES, organization_id, visualization["query_id"])
        if query is None:
            raise NotFound("No such visualization")
        return _one_tile(visualization, query, resource_id)
    query = crud.get(QUERIES, organization_id, resource_id)
    if query is None:
        raise NotFound("No such query")
    return _one_tile(query, query, None)


SHOWN: dict[str, ResourceService[Any, Any, Any]] = {
    "dashboard": dashboards,
    "visualization": visualizations,
    "query": queries,
}


def _require_resource(principal: Principal, resource_type: str, resource_id: UUID) -> None:
    SHOWN[resource_type].require(principal, resource_id)


def _require_filters(body: GuestAccess, declared: list[dict[str, Any]]) -> None:
    """Locked and editable names must be the resource's filters, and no filter both."""
    names = {item["name"] for item in declared}
    issues = [
        FieldIssue(f"locked.{name}", "the resource has no such filter")
        for name in body.locked
        if name not in names
    ]
    issues += [
        FieldIssue(f"editable_filters.{index}", f"{name!r}: the resource has no such filter")
        for index, name in enumerate(body.editable_filters)
        if name not in names
    ]
    issues += [
        FieldIssue(f"editable_filters.{index}", f"{name!r} is locked")
        for index, name in enumerate(body.editable_filters)
        if name in body.locked
    ]
    if issues:
        raise InvalidInput("The guest's access names filters the resource does not offer", issues=issues)


def _grant(
    principal: Principal,
    resource: EmbeddedResource,
    body: GuestAccess,
    kind: Literal["embed", "share"],
    expires_at: datetime | None,
    secret_hash: bytes | None = None,
) -> dict[str, Any]:
    """The row of a guest's access to the resource; its locked values are checked now as its filter
    values are (so a guest never meets a value the resource refuses). Audited."""
    board = board_of(principal, resource.type, resource.id)
    _require_filters(body, board.row["filters"])
    try:
        filter_values(principal, board.row, body.locked)
    except InvalidInput as error:
        raise InvalidInput(
            "The locked values do not fit the resource's filters",
            issues=[
                FieldIssue(issue.field.replace("filters", "locked", 1), issue.issue) for issue in error.issues
            ],
        ) from None
    row = crud.insert(
        EMBED_TOKENS,
        principal.organization_id,
        {
            "kind": kind,
            "secret_hash": secret_hash,
            "resource_type": resource.type,
            "resource_id": resource.id,
            "locked": body.model_dump(mode="json")["locked"],
            "editable_filters": body.editable_filters,
            "claims": body.claims,
            "allowed_origins": body.allowed_origins,
            "downloads": body.downloads,
            "expires_at": expires_at,
            "created_by": principal.user_id,
            "created_by_api_key_id": principal.api_key_id,
        },
    )
    audit.record_by(
        principal,
        f"{'embed_token' if kind == 'embed' else 'share_link'}.created",
        target_type=resource.type,
        target_id=resource.id,
        metadata={
            "id": str(row["id"]),
            "claims": sorted(body.claims),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return row


def mint(principal: Principal, body: EmbedTokenCreate) -> EmbedTokenCreated:
    """A signed token for a guest to draw the resource, for `lifetime_seconds`."""
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=body.lifetime_seconds)
    with db.transaction():
        row = _grant(principal, body.resource, body, "embed", expires_at)
    token = tokens.issue_guest_token(
        get_settings(), tokens.GuestClaims(row["id"], principal.organization_id), int(expires_at.timestamp())
    )
    return EmbedTokenCreated(token=token, jti=row["id"], expires_at=expires_at)


def _share_out(row: Mapping[str, Any]) -> ShareOut:
    return ShareOut.model_validate(
        {
            **row,
            "resource": {"type": row["resource_type"], "id": row["resource_id"]},
            "claims": sorted(row["claims"]),
        }
    )


def share(principal: Principal, resource: EmbeddedResource, body: ShareCreate) -> ShareCreated:
    """A public link to the resource: a long-lived secret, stored as its digest, shown once. Only where
    the organization enables share links (a setting, off by default)."""
    with db.transaction():
        _require_resource(principal, resource.type, resource.id)
        if not _sharing_enabled(principal):
            raise Conflict("Share links are off in this organization: an admin turns on share_links_enabled")
        secret = tokens.new_secret_token(tokens.SHARE_LINK_PREFIX)
        row = _grant(principal, resource, body, "share", body.expires_at, tokens.digest(secret))
        return ShareCreated(**_share_out(row).model_dump(), token=secret)


def report_share(
    principal: Principal, resource: EmbeddedResource, locked: Mapping[str, Any]
) -> tuple[UUID, str]:
    """A share link of the resource with a report's filter values locked, for its chat messages, made by
    the report's owner, who may_share (in the caller's transaction, audited)."""
    secret = tokens.new_secret_token(tokens.SHARE_LINK_PREFIX)
    row = _grant(principal, resource, GuestAccess(locked=dict(locked)), "share", None, tokens.digest(secret))
    return row["id"], secret


def shares(principal: Principal, resource: EmbeddedResource) -> ShareList:
    with db.transaction():
        _require_resource(principal, resource.type, resource.id)
        listed = embed_tokens.shares_of(principal.organization_id, resource.type, resource.id)
        return ShareList(items=[_share_out(row) for row in listed])


def revoke_share(principal: Principal, resource: EmbeddedResource, share_id: UUID) -> None:
    with db.transaction():
        if not embed_tokens.revoke(
            principal.organization_id, share_id, "share", (resource.type, resource.id)
        ):
            raise NotFound("No such share link")
        audit.record_by(
            principal,
            "share_link.revoked",
            target_type=resource.type,
            target_id=resource.id,
            metadata={"id": str(share_id)},
        )


def may_share(principal: Principal) -> bool:
    """Whether the principal may hand out share links: an editor where the organization allows them."""
    return principal.role >= Role.EDITOR and _sharing_enabled(principal)


def _sharing_enabled(principal: Principal) -> bool:
    record = organizations_repository.get(principal.organization_id)
    return OrganizationSettings.model_validate(record.settings if record else {}).share_links_enabled


def revoke(principal: Principal, token_id: UUID) -> None:
    with db.transaction():
        if not embed_tokens.revoke(principal.organization_id, token_id, "embed"):
            raise NotFound("No such embed token")
        audit.record_by(principal, "embed_token.revoked", target_type="embed_token", target_id=token_id)


def revoke_all(principal: Principal, query: EmbedTokenRevocation) -> EmbedTokensRevoked:
    with db.transaction():
        _require_resource(principal, query.resource_type, query.resource_id)
        revoked = embed_tokens.revoke_for(principal.organization_id, query.resource_type, query.resource_id)
        audit.record_by(
            principal,
            "embed_token.revoked_all",
            target_type=query.resource_type,
            target_id=query.resource_id,
            metadata={"revoked": revoked},
        )
    return EmbedTokensRevoked(revoked=revoked)


def guest_filters(token: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The guest's values, once each names an editable filter, with the locked values over them."""
    editable = set(token["editable_filters"])
    issues = [
        FieldIssue(f"filters.{name}", "this embed does not let the guest change it")
        for name in given
        if name not in editable
    ]
    if issues:
        raise InvalidInput("The filters are not the guest's to change", issues=issues)
    return {**given, **token["locked"]}


def guest_board(guest: Principal, token: Mapping[str, Any]) -> Callable[[], Board]:
    """What the guest's token shows, loaded when called (in the caller's transaction)."""
    return lambda: board_of(guest, token["resource_type"], token["resource_id"])


def resource(guest: Principal, token: Mapping[str, Any]) -> GuestView:
    with db.transaction():
        board = guest_board(guest, token)()
    return GuestView(
        resource=EmbeddedResource(type=token["resource_type"], id=token["resource_id"]),
        dashboard=board.dashboard,
        locked=token["locked"],
        editable_filters=token["editable_filters"],
        downloads=token["downloads"],
    )


def data(guest: Principal, token: Mapping[str, Any], given: Mapping[str, Any]) -> DashboardData:
    # Built, not validated: a query's parameters (so a guest's filters) may outnumber a dashboard's.
    request = DashboardDataRequest.model_construct(filters=guest_filters(token, given), max_age_seconds=None)
    return draw(guest, guest_board(guest, token), request)


def filter_options(
    guest: Principal, token: Mapping[str, Any], name: str, q: str | None, limit: int, offset: int
) -> ParameterOptionsPage:
    """An editable filter's options, the other filters at their locked values or defaults."""
    if name not in token["editable_filters"]:
        raise NotFound("This embed has no editable filter of that name")
    request = FilterOptionsRequest.model_construct(
        filters=dict(token["locked"]), q=q, limit=limit, offset=offset
    )
    return options_of(guest, guest_board(guest, token), name, request)


def download(guest: Principal, token: Mapping[str, Any], body: GuestDownloadRequest) -> GuestDownload:
    """A tile's rows as a file, from the newest stored run the guest's data call would show for these
    filter values (none is started here: a 409 until the tile has drawn)."""
    if not token["downloads"]:
        raise NotPermitted("This embed does not let its guest download rows")
    filters = guest_filters(token, body.filters)
    with db.transaction():
        board = guest_board(guest, token)()
        if all(tile.id != body.tile_id for tile in board.dashboard.tiles):
            raise NotFound("No such tile")
        plan = plan_tiles(guest, board, filters)
        ran = [(query, values) for tile_id, query, values in plan.runs if tile_id == body.tile_id]
        if not ran:
            raise Conflict(plan.skipped.get(body.tile_id, "The tile shows no rows"))
        [(query, values)] = ran
        run = runs.newest_result(guest, query, values)
    if run is None:
        raise Conflict("The tile has no stored result for these filters yet: draw it, then download")
    return GuestDownload(url=runs.export(guest, run.id, body.format), run_id=run.id)
