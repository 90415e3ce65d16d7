"""Organization API keys, stored as SHA-256 digests of the key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel

from loupe.db import execute, fetch_one
from loupe.models.identity import RoleName
from loupe.repositories import crud
from loupe.repositories.listing import Collection

API_KEYS = Collection(
    table="api_keys",
    columns=(
        "id",
        "name",
        "role",
        "prefix",
        "created_by",
        "created_at",
        "updated_at",
        "last_used_at",
        "revoked_at",
    ),
    sortable=frozenset({"name", "created_at", "last_used_at"}),
    writable=frozenset({"name", "role", "prefix", "key_hash", "created_by"}),
    default_sort="-created_at",
    tagged=False,
)


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


def create(
    organization_id: UUID, name: str, role: RoleName, prefix: str, key_digest: bytes, created_by: UUID | None
) -> dict[str, Any]:
    values = {"name": name, "role": role, "prefix": prefix, "key_hash": key_digest, "created_by": created_by}
    return crud.insert(API_KEYS, organization_id, values)


def revoke(organization_id: UUID, key_id: UUID) -> None:
    """From now on the key authenticates nothing (use() only finds live keys)."""
    execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE organization_id = %s AND id = %s AND revoked_at IS NULL",
        (organization_id, key_id),
    )
