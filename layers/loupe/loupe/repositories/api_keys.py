"""Organization API keys, stored as SHA-256 digests of the key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel

from loupe.db import execute, fetch_all, fetch_one
from loupe.models.api_keys import ApiKeyKind
from loupe.models.identity import RoleName
from loupe.repositories import crud
from loupe.repositories.listing import Collection

API_KEYS = Collection(
    table="api_keys",
    columns=(
        "id",
        "name",
        "role",
        "kind",
        "prefix",
        "created_by",
        "created_by_api_key_id",
        "created_at",
        "updated_at",
        "last_used_at",
        "revoked_at",
        "claims",
    ),
    sortable=frozenset({"name", "created_at", "last_used_at"}),
    writable=frozenset({"name", "role", "kind", "prefix", "key_hash", "created_by", "created_by_api_key_id"}),
    default_sort="-created_at",
    tagged=False,
    filters=frozenset({"kind"}),
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
    organization_id: UUID,
    name: str,
    role: RoleName,
    kind: ApiKeyKind,
    prefix: str,
    key_digest: bytes,
    created_by: UUID | None,
    created_by_api_key_id: UUID | None,
) -> dict[str, Any]:
    values = {
        "name": name,
        "role": role,
        "kind": kind,
        "prefix": prefix,
        "key_hash": key_digest,
        "created_by": created_by,
        "created_by_api_key_id": created_by_api_key_id,
    }
    return crud.insert(API_KEYS, organization_id, values)


def kind_of(organization_id: UUID, key_id: UUID) -> ApiKeyKind | None:
    row = fetch_one(
        "SELECT kind FROM api_keys WHERE organization_id = %s AND id = %s", (organization_id, key_id)
    )
    kind: ApiKeyKind | None = row["kind"] if row else None
    return kind


def personal_keys_of(organization_id: UUID, user_id: UUID) -> list[UUID]:
    """The member's personal keys in the organization, live or revoked, and the personal keys those
    created, at any depth. Service keys are the organization's, whoever created them."""
    rows = fetch_all(
        "WITH RECURSIVE owned AS ("
        "   SELECT id FROM api_keys WHERE organization_id = %(org)s AND created_by = %(user)s"
        "     AND kind = 'personal'"
        "   UNION"
        "   SELECT k.id FROM api_keys k JOIN owned o ON k.created_by_api_key_id = o.id"
        "   WHERE k.organization_id = %(org)s AND k.kind = 'personal'"
        " ) SELECT id FROM owned",
        {"org": organization_id, "user": user_id},
    )
    return [row["id"] for row in rows]


def revoke_many(organization_id: UUID, key_ids: list[UUID]) -> list[dict[str, Any]]:
    """Revoke those of the keys still live; returns each one revoked now, with its id, name and role."""
    return fetch_all(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE organization_id = %s AND id = ANY(%s) AND revoked_at IS NULL RETURNING id, name, role",
        (organization_id, key_ids),
    )


def revoke(organization_id: UUID, key_id: UUID) -> None:
    """From now on the key authenticates nothing (use() only finds live keys)."""
    execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE organization_id = %s AND id = %s AND revoked_at IS NULL",
        (organization_id, key_id),
    )
