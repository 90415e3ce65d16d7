"""Guests of a dashboard: embed tokens (signed, short-lived) and share links (long-lived secrets) that
editors (or the organization's API keys) grant and revoke; guests draw exactly that dashboard, its locked
values applied and only its editable filters changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from loupe import db
from loupe.config import get_settings
from loupe.errors import Conflict, FieldIssue, InvalidInput, NotFound
from loupe.models.dashboards import DashboardData, DashboardDataRequest, DashboardOut, FilterOptionsRequest
from loupe.models.embed import (
    EmbedTokenCreate,
    EmbedTokenCreated,
    EmbedTokenRevocation,
    EmbedTokensRevoked,
    GuestAccess,
    ShareCreate,
    ShareCreated,
    ShareList,
    ShareOut,
)
from loupe.models.identity import Principal
from loupe.models.organizations import OrganizationSettings
from loupe.models.queries import ParameterOptionsPage
from loupe.repositories import crud, embed_tokens
from loupe.repositories import organizations as organizations_repository
from loupe.repositories.dashboards import DASHBOARDS
from loupe.repositories.embed_tokens import EMBED_TOKENS
from loupe.security import tokens
from loupe.services import audit
from loupe.services.dashboards import dashboards, filter_values


def _require_filters(body: GuestAccess, declared: list[dict[str, Any]]) -> None:
    """Locked and editable names must be the dashboard's filters, and no filter both."""
    names = {item["name"] for item in declared}
    issues = [
        FieldIssue(f"locked.{name}", "the dashboard has no such filter")
        for name in body.locked
        if name not in names
    ]
    issues += [
        FieldIssue(f"editable_filters.{index}", f"{name!r}: the dashboard has no such filter")
        for index, name in enumerate(body.editable_filters)
        if name not in names
    ]
    issues += [
        FieldIssue(f"editable_filters.{index}", f"{name!r} is locked")
        for index, name in enumerate(body.editable_filters)
        if name in body.locked
    ]
    if issues:
        raise InvalidInput("The guest's access names filters the dashboard does not offer", issues=issues)


def _grant(
    principal: Principal,
    dashboard_id: UUID,
    body: GuestAccess,
    kind: Literal["embed", "share"],
    expires_at: datetime | None,
    secret_hash: bytes | None = None,
) -> dict[str, Any]:
    """The row of a guest's access to the dashboard; its locked values are checked now as the
    dashboard's filter values are (so a guest never meets a value the dashboard refuses). Audited."""
    dashboard = crud.get(DASHBOARDS, principal.organization_id, dashboard_id)
    if dashboard is None:
        raise NotFound("No such dashboard")
    _require_filters(body, dashboard["filters"])
    try:
        filter_values(principal, dashboard, body.locked)
    except InvalidInput as error:
        raise InvalidInput(
            "The locked values do not fit the dashboard's filters",
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
            "resource_type": "dashboard",
            "resource_id": dashboard_id,
            "locked": body.model_dump(mode="json")["locked"],
            "editable_filters": body.editable_filters,
            "claims": body.claims,
            "allowed_origins": body.allowed_origins,
            "expires_at": expires_at,
            "created_by": principal.user_id,
            "created_by_api_key_id": principal.api_key_id,
        },
    )
    audit.record_by(
        principal,
        f"{'embed_token' if kind == 'embed' else 'share_link'}.created",
        target_type="dashboard",
        target_id=dashboard_id,
        metadata={
            "id": str(row["id"]),
            "claims": sorted(body.claims),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return row


def mint(principal: Principal, body: EmbedTokenCreate) -> EmbedTokenCreated:
    """A signed token for a guest to draw the dashboard, for `lifetime_seconds`."""
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=body.lifetime_seconds)
    with db.transaction():
        row = _grant(principal, body.resource.id, body, "embed", expires_at)
    token = tokens.issue_guest_token(
        get_settings(), tokens.GuestClaims(row["id"], principal.organization_id), int(expires_at.timestamp())
    )
    return EmbedTokenCreated(token=token, jti=row["id"], expires_at=expires_at)


def _share_out(row: Mapping[str, Any]) -> ShareOut:
    return ShareOut.model_validate(
        {**row, "dashboard_id": row["resource_id"], "claims": sorted(row["claims"])}
    )


def share(principal: Principal, dashboard_id: UUID, body: ShareCreate) -> ShareCreated:
    """A public link to the dashboard: a long-lived secret, stored as its digest, shown once. Only where
    the organization enables share links (a setting, off by default)."""
    with db.transaction():
        if crud.get(DASHBOARDS, principal.organization_id, dashboard_id) is None:
            raise NotFound("No such dashboard")
        if not _sharing_enabled(principal):
            raise Conflict("Share links are off in this organization: an admin turns on share_links_enabled")
        secret = tokens.new_secret_token(tokens.SHARE_LINK_PREFIX)
        row = _grant(principal, dashboard_id, body, "share", body.expires_at, tokens.digest(secret))
        return ShareCreated(**_share_out(row).model_dump(), token=secret)


def shares(principal: Principal, dashboard_id: UUID) -> ShareList:
    with db.transaction():
        if crud.get(DASHBOARDS, principal.organization_id, dashboard_id) is None:
            raise NotFound("No such dashboard")
        return ShareList(
            items=[_share_out(row) for row in embed_tokens.shares_of(principal.organization_id, dashboard_id)]
        )


def revoke_share(principal: Principal, dashboard_id: UUID, share_id: UUID) -> None:
    with db.transaction():
        if not embed_tokens.revoke(principal.organization_id, share_id, "share", dashboard_id):
            raise NotFound("No such share link")
        audit.record_by(
            principal,
            "share_link.revoked",
            target_type="dashboard",
            target_id=dashboard_id,
            metadata={"id": str(share_id)},
        )


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
        if crud.get(DASHBOARDS, principal.organization_id, query.resource_id) is None:
            raise NotFound("No such dashboard")
        revoked = embed_tokens.revoke_for(principal.organization_id, query.resource_type, query.resource_id)
        audit.record_by(
            principal,
            "embed_token.revoked_all",
            target_type=query.resource_type,
            target_id=query.resource_id,
            metadata={"revoked": revoked},
        )
    return EmbedTokensRevoked(revoked=revoked)


def _filters(token: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
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


def resource(guest: Principal, token: Mapping[str, Any]) -> DashboardOut:
    return dashboards.get(guest, token["resource_id"]).resource


def data(guest: Principal, token: Mapping[str, Any], given: Mapping[str, Any]) -> DashboardData:
    request = DashboardDataRequest(filters=_filters(token, given))
    return dashboards.data(guest, token["resource_id"], request)


def filter_options(
    guest: Principal, token: Mapping[str, Any], name: str, q: str | None, limit: int, offset: int
) -> ParameterOptionsPage:
    """An editable filter's options, the other filters at their locked values or defaults."""
    if name not in token["editable_filters"]:
        raise NotFound("This embed has no editable filter of that name")
    request = FilterOptionsRequest(filters=dict(token["locked"]), q=q, limit=limit, offset=offset)
    return dashboards.filter_options(guest, token["resource_id"], name, request)
