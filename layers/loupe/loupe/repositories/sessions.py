"""Login sessions and their rotating refresh tokens (stored only as SHA-256 digests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import sql
from pydantic import BaseModel

from loupe.db import execute, fetch_all, fetch_one, tenant_binding, tenant_bound
from loupe.models.identity import RoleName
from loupe.repositories.rate_limits import RECENT_HITS, RateWindow


class SessionRecord(BaseModel):
    id: UUID
    organization_id: UUID
    user_id: UUID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    revoked_at: datetime | None
    user_agent: str | None
    ip: str | None


class RefreshTokenUse(BaseModel):
    """What presenting a refresh token found: its session, and whether it had been spent already."""

    session_id: UUID
    organization_id: UUID
    user_id: UUID
    already_spent: bool
    # Spent within the grace window: presented again by a second tab, not by a copy.
    spent_within_grace: bool
    token_expired: bool
    session_live: bool


_SESSION_COLUMNS = sql.SQL(
    "id, organization_id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent,"
    " host(ip) AS ip"
)


def create(
    organization_id: UUID, user_id: UUID, expires_at: datetime, user_agent: str | None, ip: str | None
) -> UUID:
    row = fetch_one(
        "INSERT INTO sessions (organization_id, user_id, expires_at, user_agent, ip, last_used_at)"
        " VALUES (%s, %s, %s, %s, %s::inet, now()) RETURNING id",
        (organization_id, user_id, expires_at, user_agent, ip),
    )
    assert row is not None
    session_id: UUID = row["id"]
    return session_id


_LIVE_ROLE_COUNTED_BINDING_TENANT = (
    "WITH live AS (SELECT m.role, s.organization_id FROM sessions s"  # noqa: S608  # constants
    "  JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = s.user_id"
    "  WHERE s.id = %s AND s.user_id = %s AND s.organization_id = %s"
    "  AND s.revoked_at IS NULL AND s.expires_at > now()),"
    " " + RECENT_HITS + ","
    " counted AS (INSERT INTO rate_limit_hits (bucket) SELECT %s FROM live, recent WHERE recent.hits < %s"
    "  RETURNING 1)"
    # The insert is read before the binding: it runs, and is checked, as the session's role.
    " SELECT live.role, EXISTS (SELECT FROM counted) AS counted, recent.oldest, "
    + tenant_binding("live.organization_id")
    + " FROM live, recent"
)


@dataclass(frozen=True)
class LiveSession:
    role: RoleName
    # Whether the request was counted against the user's rate limit (False: the window is full), and
    # the oldest request in the window, which frees a place when it leaves it.
    counted: bool
    oldest_hit: datetime | None


def live_role_binding_tenant(
    session_id: UUID, user_id: UUID, organization_id: UUID, rate: RateWindow
) -> LiveSession | None:
    """The per-request check: the session is live and the user still a member; returns the role now.

    When it is, the same statement counts the request in the user's rate-limit window (if it has room)
    and binds the transaction to the session's organization (db.bind_tenant's work, without a round
    trip of its own); when it is not, nothing is counted or bound."""
    row = fetch_one(
        _LIVE_ROLE_COUNTED_BINDING_TENANT,
        (session_id, user_id, organization_id, rate.bucket, rate.window_seconds, rate.bucket, rate.limit),
    )
    if row is None:
        return None
    tenant_bound()
    return LiveSession(role=row["role"], counted=row["counted"], oldest_hit=row["oldest"])


def add_refresh_token(
    session_id: UUID, organization_id: UUID, token_digest: bytes, expires_at: datetime
) -> None:
    execute(
        "INSERT INTO refresh_tokens (session_id, organization_id, token_hash, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (session_id, organization_id, token_digest, expires_at),
    )


def spend_refresh_token(token_digest: bytes, grace_seconds: int) -> RefreshTokenUse | None:
    """Mark the token spent atomically; a second presentation sees `already_spent`, and whether the
    first was less than `grace_seconds` ago. A presentation waits for one in progress to end."""
    row = fetch_one(
        "WITH presented AS ("
        "   SELECT t.id, t.spent_at IS NOT NULL AS already_spent, t.expires_at <= now() AS token_expired,"
        "     coalesce(t.spent_at > now() - make_interval(secs => %s), false) AS spent_within_grace"
        "   FROM refresh_tokens t WHERE t.token_hash = %s FOR UPDATE"
        " ), spent AS ("
        "   UPDATE refresh_tokens t SET spent_at = now() FROM presented p"
        "   WHERE t.id = p.id AND NOT p.already_spent RETURNING t.id"
        " )"
        " SELECT s.id AS session_id, s.organization_id, s.user_id, p.already_spent, p.spent_within_grace,"
        "   p.token_expired, (s.revoked_at IS NULL AND s.expires_at > now()) AS session_live"
        " FROM presented p JOIN refresh_tokens t ON t.id = p.id JOIN sessions s ON s.id = t.session_id",
        (grace_seconds, token_digest),
    )
    return RefreshTokenUse.model_validate(row) if row else None


def live_refresh_token(session_id: UUID, token_digests: list[bytes]) -> bytes | None:
    """Which of these digests is an unexpired refresh token of the session, if any."""
    row = fetch_one(
        "SELECT token_hash FROM refresh_tokens"
        " WHERE session_id = %s AND token_hash = ANY(%s) AND expires_at > now() LIMIT 1",
        (session_id, token_digests),
    )
    return bytes(row["token_hash"]) if row else None


def session_of_refresh_token(token_digest: bytes) -> SessionRecord | None:
    row = fetch_one(
        sql.SQL(
            "SELECT {} FROM sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = %s)"
        ).format(_SESSION_COLUMNS),
        (token_digest,),
    )
    return SessionRecord.model_validate(row) if row else None


def touch(session_id: UUID) -> None:
    execute("UPDATE sessions SET last_used_at = now() WHERE id = %s", (session_id,))


def revoke(session_id: UUID) -> bool:
    touched = execute(
        "UPDATE sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (session_id,)
    )
    return touched > 0


def revoke_all_for_user(user_id: UUID) -> int:
    touched = execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
    )
    return touched


def revoke_others_of_user(user_id: UUID, kept_session_id: UUID | None) -> int:
    return execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL"
        " AND id IS DISTINCT FROM %s",
        (user_id, kept_session_id),
    )


def get(session_id: UUID) -> SessionRecord | None:
    row = fetch_one(sql.SQL("SELECT {} FROM sessions WHERE id = %s").format(_SESSION_COLUMNS), (session_id,))
    return SessionRecord.model_validate(row) if row else None


def list_live(
    user_id: UUID, organization_id: UUID, limit: int, offset: int
) -> tuple[list[SessionRecord], int]:
    rows = fetch_all(
        sql.SQL(
            "SELECT {}, count(*) OVER () AS total FROM sessions"
            " WHERE user_id = %s AND organization_id = %s AND revoked_at IS NULL AND expires_at > now()"
            " ORDER BY created_at DESC, id LIMIT %s OFFSET %s"
        ).format(_SESSION_COLUMNS),
        (user_id, organization_id, limit, offset),
    )
    total = rows[0]["total"] if rows else 0
    return [SessionRecord.model_validate(row) for row in rows], total
