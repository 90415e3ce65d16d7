"""Turning presented credentials into a Principal, once per request: one indexed query, and the count
against the user's or the API key's rate limit. The caller's address comes with the credential."""

from __future__ import annotations

from typing import Any

from loupe import db
from loupe.config import get_settings
from loupe.errors import Unauthenticated
from loupe.models.identity import Principal, Role
from loupe.repositories import api_keys, embed_tokens, sessions
from loupe.security import tokens
from loupe.services import rate_limits

INVALID_CREDENTIALS = "Invalid or expired credentials"


def authenticate_access_token(token: str, client_ip: str | None) -> Principal:
    try:
        claims = tokens.decode_access_token(get_settings(), token)
    except tokens.InvalidToken:
        raise Unauthenticated(INVALID_CREDENTIALS) from None
    # Revocation and role changes take effect at once: the session and role are read every time, and
    # the statement that reads them binds the transaction to the organization. It also counts the request
    # against the user's own rate limit (a team behind one address shares only the WAF's).
    live = sessions.live_role_binding_tenant(
        claims.session_id,
        claims.user_id,
        claims.organization_id,
        rate_limits.window("user", str(claims.user_id)),
    )
    if live is None:
        raise Unauthenticated(INVALID_CREDENTIALS)
    rate_limits.enforce("user", live.counted, live.oldest_hit)
    return Principal(
        organization_id=claims.organization_id,
        role=Role.parse(live.role),
        user_id=claims.user_id,
        session_id=claims.session_id,
        client_ip=client_ip,
    )


def authenticate_api_key(key: str, client_ip: str | None) -> Principal:
    if not key.startswith(tokens.API_KEY_PREFIX) or len(key) > 200:
        raise Unauthenticated(INVALID_CREDENTIALS)
    found = api_keys.use(tokens.digest(key))
    if found is None:
        raise Unauthenticated(INVALID_CREDENTIALS)
    rate_limits.api_key(found.id)
    db.bind_tenant(found.organization_id)
    return Principal(
        organization_id=found.organization_id,
        role=Role.parse(found.role),
        api_key_id=found.id,
        client_ip=client_ip,
    )


def authenticate_guest_token(token: str, client_ip: str | None) -> tuple[Principal, dict[str, Any]]:
    """A guest: a share link's secret, or a signed embed token; either's row neither revoked nor expired
    (a share's organization allowing share links), counted against its own rate limit. The row says what
    the guest may see."""
    if token.startswith(tokens.SHARE_LINK_PREFIX):
        if len(token) > 200:
            raise Unauthenticated(INVALID_CREDENTIALS)
        row = embed_tokens.use_share(tokens.digest(token))
        if row is not None:
            db.bind_tenant(row["organization_id"])
    else:
        try:
            claims = tokens.decode_guest_token(get_settings(), token)
        except tokens.InvalidToken:
            raise Unauthenticated(INVALID_CREDENTIALS) from None
        db.bind_tenant(claims.organization_id)
        row = embed_tokens.live(claims.organization_id, claims.token_id)
    if row is None:
        raise Unauthenticated(INVALID_CREDENTIALS)
    rate_limits.check("guest", str(row["id"]))
    principal = Principal(
        organization_id=row["organization_id"],
        role=Role.VIEWER,
        guest_token_id=row["id"],
        guest_kind=row["kind"],
        guest_resource_id=row["resource_id"],
        client_ip=client_ip,
    )
    return principal, row
