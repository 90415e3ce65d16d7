"""The embed_tokens table: what each guest token may show, and its revocation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe.db import execute, fetch_one
from loupe.repositories.listing import Collection

EMBED_TOKENS = Collection(
    table="embed_tokens",
    columns=(
        "id",
        "resource_type",
        "resource_id",
        "locked",
        "editable_filters",
        "claims",
        "allowed_origins",
        "expires_at",
        "revoked_at",
        "created_by",
        "created_by_api_key_id",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"created_at"}),
    writable=frozenset(
        {
            "resource_type",
            "resource_id",
            "locked",
            "editable_filters",
            "claims",
            "allowed_origins",
            "expires_at",
            "created_by",
            "created_by_api_key_id",
        }
    ),
    json_columns=frozenset({"locked", "claims"}),
    default_sort="-created_at",
    tagged=False,
)


def live(organization_id: UUID, token_id: UUID) -> dict[str, Any] | None:
    """The token's row while it is neither revoked nor expired."""
    return fetch_one(
        "SELECT id, resource_type, resource_id, locked, editable_filters, claims, allowed_origins, expires_at"
        " FROM embed_tokens WHERE organization_id = %s AND id = %s"
        " AND revoked_at IS NULL AND expires_at > now()",
        (organization_id, token_id),
    )


def revoke(organization_id: UUID, token_id: UUID) -> bool:
    """Revoke the token; False when the organization has no such token (revoking twice is no error)."""
    found = fetch_one(
        "UPDATE embed_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE organization_id = %s AND id = %s RETURNING id",
        (organization_id, token_id),
    )
    return found is not None


def revoke_for(organization_id: UUID, resource_type: str, resource_id: UUID) -> int:
    """Revoke every live token of the resource; how many."""
    return execute(
        "UPDATE embed_tokens SET revoked_at = now() WHERE organization_id = %s AND resource_type = %s"
        " AND resource_id = %s AND revoked_at IS NULL AND expires_at > now()",
        (organization_id, resource_type, resource_id),
    )


def claims_of(organization_id: UUID, token_id: UUID) -> dict[str, Any]:
    row = fetch_one(
        "SELECT claims FROM embed_tokens WHERE organization_id = %s AND id = %s", (organization_id, token_id)
    )
    return dict(row["claims"]) if row else {}
