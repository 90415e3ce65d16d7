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
# loupe.db.transaction(DbRole.SYSTEM) -> loupe.db._set_role
SET_SYSTEM_ROLE: LiteralString = 'SET LOCAL ROLE "loupe_system"'
# loupe.repositories.sessions.live_role
LIVE_ROLE: LiteralString = (
    "SELECT m.role FROM sessions s"
    " JOIN memberships m ON m.organization_id = s.organization_id AND m.user_id = s.user_id"
    " WHERE s.id = %s AND s.user_id = %s AND s.organization_id = %s"
    " AND s.revoked_at IS NULL AND s.expires_at > now()"
)
# loupe.db.bind_tenant
BIND_TENANT: LiteralString = "SELECT set_config('role', %s, true), set_config(%s, %s, true)"
TENANT_SETTING = "loupe.organization_id"
# loupe.repositories.users.profile
PROFILE: LiteralString = (
    "SELECT u.id, u.email, u.name, m.role, m.organization_id, o.name AS organization_name, u.created_at"
    " FROM users u"
    " JOIN memberships m ON m.user_id = u.id AND m.organization_id = %s"
    " JOIN organizations o ON o.id = m.organization_id"
    " WHERE u.id = %s"
)

# loupe.db.connect with the default settings (LOUPE_ENV=test: sslmode prefer).
SERVER_OPTIONS = (
    "-c statement_timeout=10000 -c lock_timeout=3000"
    " -c idle_in_transaction_session_timeout=30000 -c timezone=UTC"
)


@dataclass(frozen=True)
class Caller:
    """Whom the access token names: what the handler reads from the JWT, handed to baselines directly."""

    user_id: UUID
    session_id: UUID
    organization_id: UUID


@dataclass(frozen=True)
class Statement:
    query: LiteralString
    params: tuple[Any, ...] | None
    fetch: bool


def statements(caller: Caller) -> list[Statement]:
    """What the handler executes between BEGIN and COMMIT, in order."""
    return [
        Statement(SET_SYSTEM_ROLE, None, fetch=False),
        Statement(LIVE_ROLE, (caller.session_id, caller.user_id, caller.organization_id), fetch=True),
        Statement(BIND_TENANT, ("loupe_app", TENANT_SETTING, str(caller.organization_id)), fetch=False),
        Statement(PROFILE, (caller.organization_id, caller.user_id), fetch=True),
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
