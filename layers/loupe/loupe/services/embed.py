"""Embed tokens: editors (or the organization's API keys) mint a guest's signed access to one dashboard,
revoke it one by one or per dashboard; guests draw exactly that dashboard, its locked values applied and
only its editable filters changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from loupe import db
from loupe.config import get_settings
from loupe.errors import FieldIssue, InvalidInput, NotFound
from loupe.models.dashboards import DashboardData, DashboardDataRequest, DashboardOut, FilterOptionsRequest
from loupe.models.embed import EmbedTokenCreate, EmbedTokenCreated, EmbedTokenRevocation, EmbedTokensRevoked
from loupe.models.identity import Principal
from loupe.models.queries import ParameterOptionsPage
from loupe.repositories import crud, embed_tokens
from loupe.repositories.dashboards import DASHBOARDS
from loupe.repositories.embed_tokens import EMBED_TOKENS
from loupe.security import tokens
from loupe.services import audit
from loupe.services.dashboards import dashboards, filter_values


def _require_filters(body: EmbedTokenCreate, declared: list[dict[str, Any]]) -> None:
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
        raise InvalidInput("The token names filters the dashboard does not offer", issues=issues)


def mint(principal: Principal, body: EmbedTokenCreate) -> EmbedTokenCreated:
    """A signed token for a guest to draw the dashboard; its locked values are checked now as the
    dashboard's filter values are (so a guest never meets a value the dashboard refuses)."""
    with db.transaction():
        dashboard = crud.get(DASHBOARDS, principal.organization_id, body.resource.id)
        if dashboard is None:
            raise NotFound("No such dashboard")
        _require_filters(body, dashboard["filters"])
        try:
            filter_values(principal, dashboard, body.locked)
        except InvalidInput as error:
            raise InvalidInput(
                "The locked values do not fit the dashboard's filters",
                issues=[
                    FieldIssue(issue.field.replace("filters", "locked", 1), issue.issue)
                    for issue in error.issues
                ],
            ) from None
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=body.lifetime_seconds)
        row = crud.insert(
            EMBED_TOKENS,
            principal.organization_id,
            {
                "resource_type": body.resource.type,
                "resource_id": body.resource.id,
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
            "embed_token.created",
            target_type="embed_token",
            target_id=row["id"],
            metadata={
                "resource_type": body.resource.type,
                "resource_id": str(body.resource.id),
                "claims": sorted(body.claims),
                "expires_at": expires_at.isoformat(),
            },
        )
    token = tokens.issue_guest_token(
        get_settings(), tokens.GuestClaims(row["id"], principal.organization_id), int(expires_at.timestamp())
    )
    return EmbedTokenCreated(token=token, jti=row["id"], expires_at=expires_at)


def revoke(principal: Principal, token_id: UUID) -> None:
    with db.transaction():
        if not embed_tokens.revoke(principal.organization_id, token_id):
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
