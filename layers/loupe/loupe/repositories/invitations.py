"""Invitations to join an organization; the token is stored only as its SHA-256 digest."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql
from pydantic import BaseModel

from loupe.db import execute, fetch_all, fetch_one
from loupe.models.identity import RoleName

_COLUMNS = sql.SQL("id, organization_id, email, role, invited_by, expires_at, accepted_at, created_at")
# Pending: neither accepted nor expired. Accepted and expired invitations are history only.
_PENDING = sql.SQL("accepted_at IS NULL AND expires_at > now()")


class InvitationRecord(BaseModel):
    id: UUID
    organization_id: UUID
    email: str
    role: RoleName
    invited_by: UUID | None
    expires_at: datetime
    accepted_at: datetime | None
    created_at: datetime


def _record(row: dict[str, Any] | None) -> InvitationRecord | None:
    return InvitationRecord.model_validate(row) if row else None


def create(
    organization_id: UUID,
    email: str,
    role: RoleName,
    token_digest: bytes,
    invited_by: UUID | None,
    invited_by_api_key_id: UUID | None,
    expires_at: datetime,
) -> InvitationRecord:
    row = fetch_one(
        sql.SQL(
            "INSERT INTO invitations"
            " (organization_id, email, role, token_hash, invited_by, invited_by_api_key_id, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {}"
        ).format(_COLUMNS),
        (organization_id, email, role, token_digest, invited_by, invited_by_api_key_id, expires_at),
    )
    return InvitationRecord.model_validate(row)


def lock_email(organization_id: UUID, email: str) -> None:
    """Serialize invitations of one email to one organization, so 'one pending at a time' holds."""
    execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))", (f"invitation:{organization_id}:{email}",)
    )


def pending_for_email(organization_id: UUID, email: str) -> InvitationRecord | None:
    return _record(
        fetch_one(
            sql.SQL("SELECT {} FROM invitations WHERE organization_id = %s AND email = %s AND {}").format(
                _COLUMNS, _PENDING
            ),
            (organization_id, email),
        )
    )


def list_pending(organization_id: UUID, limit: int, offset: int) -> tuple[list[InvitationRecord], int]:
    rows = fetch_all(
        sql.SQL(
            "SELECT {}, count(*) OVER () AS total_count FROM invitations WHERE organization_id = %s AND {}"
            " ORDER BY created_at DESC, id LIMIT %s OFFSET %s"
        ).format(_COLUMNS, _PENDING),
        (organization_id, limit, offset),
    )
    if rows:
        return [InvitationRecord.model_validate(row) for row in rows], int(rows[0]["total_count"])
    # An offset past the end returns no rows, hence no window count.
    counted = fetch_one(
        sql.SQL("SELECT count(*) AS total_count FROM invitations WHERE organization_id = %s AND {}").format(
            _PENDING
        ),
        (organization_id,),
    )
    return [], int(counted["total_count"]) if counted else 0


def delete_pending(organization_id: UUID, invitation_id: UUID) -> InvitationRecord | None:
    return _record(
        fetch_one(
            sql.SQL(
                "DELETE FROM invitations WHERE organization_id = %s AND id = %s AND {} RETURNING {}"
            ).format(_PENDING, _COLUMNS),
            (organization_id, invitation_id),
        )
    )


def delete_pending_of(
    organization_id: UUID, user_id: UUID, api_key_ids: list[UUID]
) -> list[InvitationRecord]:
    """Delete the pending invitations the member created, themselves or with one of these keys."""
    rows = fetch_all(
        sql.SQL(
            "DELETE FROM invitations WHERE organization_id = %s"
            " AND (invited_by = %s OR invited_by_api_key_id = ANY(%s)) AND {} RETURNING {}"
        ).format(_PENDING, _COLUMNS),
        (organization_id, user_id, api_key_ids),
    )
    return [InvitationRecord.model_validate(row) for row in rows]


def claim(token_digest: bytes) -> InvitationRecord | None:
    """Mark a pending invitation accepted, atomically: a token works once, and only before it expires."""
    return _record(
        fetch_one(
            sql.SQL(
                "UPDATE invitations SET accepted_at = now() WHERE token_hash = %s AND {} RETURNING {}"
            ).format(_PENDING, _COLUMNS),
            (token_digest,),
        )
    )


def pending_by_token(token_digest: bytes) -> InvitationRecord | None:
    """The pending invitation of the token, unclaimed (claim takes it)."""
    return _record(
        fetch_one(
            sql.SQL("SELECT {} FROM invitations WHERE token_hash = %s AND {}").format(_COLUMNS, _PENDING),
            (token_digest,),
        )
    )
