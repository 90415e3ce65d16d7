"""Organization API keys, stored as SHA-256 digests of the key."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel

from loupe.db import fetch_one
from loupe.models.identity import RoleName


class ApiKeyUse(BaseModel):
    id: UUID
    organization_id: UUID
    role: RoleName


def use(key_digest: bytes) -> ApiKeyUse | None:
    """Find a live key by digest and stamp its last use, in one statement."""
    row = fetch_one(
        "UPDATE api_keys SET last_used_at = now() WHERE key_hash = %s AND revoked_at IS NULL"
        " RETURNING id, organization_id, role",
        (key_digest,),
    )
    return ApiKeyUse.model_validate(row) if row else None
