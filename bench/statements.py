"""The SQL of one authenticated `GET /auth/me`, written out so baselines can run it without loupe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]
Connection = psycopg.Connection[Row]

# Each string is copied from the function named above it; run.py checks, before timing anything,
# that the handler sends exactly these statements with these parameters.
# loupe.db.transaction(DbRole.SYSTEM) sends nothing: the connection's role is loupe_system (SERVER_OPTIONS).
# loupe.repositories.sessions.live_role_binding_tenant, with loupe.repositories.rate_limits.RECENT_HITS
# and loupe.db.tenant_binding
LIVE_ROLE_COUNTED_BINDING_TENANT: LiteralString = (
    "WITH live AS (SELECT m.role, s.organization_id FROM sessions s"
    "  JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = s.user_id"
    "  WHERE s.id = %s AND s.user_id = %s AND s.organization_id = %s"
    "  AND s.revoked_at IS NULL AND s.expires_at > now()),"
    " recent AS (SELECT count(*) AS hits, min(created_at) AS oldest FROM rate_limit_hits"
    "  WHERE bucket = %s AND created_at > now() - make_interval(secs => %s)),"
    " counted AS (INSERT INTO rate_limit_hits (bucket) SELECT %s FROM live, recent WHERE recent.hits < %s"
    "  RETURNING 1)"
    " SELECT live.role, EXISTS (SELECT FROM counted) AS counted, recent.oldest,"
    " set_config('role', 'loupe_app', true) AS bound_role,"
    " set_config('loupe.organization_id', live.organization_id::text, true) AS bound_organization_id"
    " FROM live, recent"
)
# The bench makes thousands of requests a minute as one user: its per-user limit (the handler's
# LOUPE_RATE_LIMIT_USER_PER_MINUTE, set by run.py) must not refuse them.
USER_REQUESTS_PER_MINUTE = 1_000_000
# loupe.repositories.users.profile
PROFILE: LiteralString = (
    "SELECT u.id, u.email, u.name, m.role, m.organization_id, o.name AS organization_name, u.created_at"
    " FROM users u"
    " JOIN memberships m ON m.user_id = u.id AND m.organization_id = %s"
    " JOIN organizations o ON o.id = m.organization_id"
    " WHERE u.id = %s"
)
# loupe.db.as_system and back: the account's other organizations are outside the request's tenant.
TO_SYSTEM: LiteralString = 'SET LOCAL ROLE "loupe_system"'
TO_APP: LiteralString = 'SET LOCAL ROLE "loupe_app"'
# loupe.repositories.users.memberships
MEMBERSHIPS: LiteralString = (
    "SELECT m.organization_id, o.name AS organization_name, m.role FROM memberships m"
    " JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = %s ORDER BY o.name, o.id"
)

# loupe.db.connect with the default settings (LOUPE_ENV=test: sslmode prefer).
SERVER_OPTIONS = (
    "-c statement_timeout=10000 -c lock_timeout=3000"
    " -c idle_in_transaction_session_timeout=30000 -c timezone=UTC -c role=loupe_system"
)


@dataclass(frozen=True)
class Caller:
    """Whom the access token names: what the handler reads from the JWT, handed to baselines directly."""

    user_id: UUID
    session_id: UUID
    organization_id: UUID

    @property
    def rate_bucket(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class Statement:
    query: LiteralString
    params: tuple[Any, ...] | None
    fetch: bool


def statements(caller: Caller) -> list[Statement]:
    """What the handler executes between BEGIN and COMMIT, in order."""
    return [
        Statement(
            LIVE_ROLE_COUNTED_BINDING_TENANT,
            (
                caller.session_id,
                caller.user_id,
                caller.organization_id,
                caller.rate_bucket,
                60,
                caller.rate_bucket,
                USER_REQUESTS_PER_MINUTE,
            ),
            fetch=True,
        ),
        Statement(PROFILE, (caller.organization_id, caller.user_id), fetch=True),
        Statement(TO_SYSTEM, None, fetch=False),
        Statement(MEMBERSHIPS, (caller.user_id,), fetch=False),
        Statement(TO_APP, None, fetch=False),
    ]


def connect(url: str) -> Connection:
    """A connection opened as loupe.db.connect opens it."""
    return psycopg.connect(
        url,
        sslmode="prefer",
        connect_timeout=5,
        application_name="loupe",
        options=SERVER_OPTIONS,
        row_factory=dict_row,
        autocommit=True,
    )


def forget_hits(conn: Connection, caller: Caller) -> None:
    """Empty the caller's rate-limit window, so that each block of calls counts in a window as full as a
    busy user's, not one holding every call of the run."""
    conn.execute("DELETE FROM rate_limit_hits WHERE bucket = %s", (caller.rate_bucket,))


def run(conn: Connection, caller: Caller) -> Row:
    """One request's SQL in one transaction; returns the profile row."""
    row: Row | None = None
    with conn.transaction():
        for statement in statements(caller):
            cursor = conn.execute(statement.query, statement.params)
            if statement.fetch:
                row = cursor.fetchone()
                if row is None:
                    raise LookupError("the session or profile was not found")
    assert row is not None
    return row
