"""Password reset tokens: stored as SHA-256 digests, single-use, short-lived."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from loupe.db import execute, fetch_one


def create(user_id: UUID, token_digest: bytes, expires_at: datetime) -> None:
    execute(
        "INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES (%s, %s, %s)",
        (user_id, token_digest, expires_at),
    )


def spend(token_digest: bytes) -> UUID | None:
    """Mark a live token used; the user it resets, or None for an unknown, used or expired token."""
    row = fetch_one(
        "UPDATE password_resets SET used_at = now()"
        " WHERE token_hash = %s AND used_at IS NULL AND expires_at > now() RETURNING user_id",
        (token_digest,),
    )
    return row["user_id"] if row else None


def spend_all_of_user(user_id: UUID) -> None:
    """Once a password is set, no older reset link works."""
    execute("UPDATE password_resets SET used_at = now() WHERE user_id = %s AND used_at IS NULL", (user_id,))
