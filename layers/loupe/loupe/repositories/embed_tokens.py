"""The embed_tokens table: what each guest token may show, and its revocation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe.db import execute, fetch_all, fetch_one
from loupe.repositories.listing import Collection

EMBED_TOKENS = Collection(
    table="embed_tokens",
    columns=(
        "id",
        "kind",
        "resource_type",
        "resource_id",
        "locked",
        "editable_filters",
        "claims",
        "allowed_origins",
        "downloads",
        "expires_at",
        "revoked_at",
        "access_count",
        "last_accessed_at",
        "created_by",
        "created_by_api_key_id",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"created_at"}),
    writable=frozenset(
        {
            "kind",
            "secret_hash",
            "resource_type",
            "resource_id",
            "locked",
            "editable_filters",
            "claims",
            "allowed_origins",
            "downloads",
            "expires_at",
            "created_by",
            "created_by_api_key_id",
        }
    ),
    json_columns=frozenset({"locked", "claims"}),
    default_sort="-created_at",
    tagged=False,
)


GUEST_COLUMNS = (
    "id, organization_id, kind, resource_type, resource_id, locked, editable_filters, claims,"
    " allowed_origins, downloads"
)
# A token outlives neither its revocation, its expiry, nor what it shows.
LIVE = (
    "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AND CASE embed_tokens.resource_type"
    " WHEN 'dashboard' THEN EXISTS (SELECT FROM dashboards WHERE dashboards.id = embed_tokens.resource_id"
    " AND dashboards.organization_id = embed_tokens.organization_id)"
    " WHEN 'visualization' THEN EXISTS (SELECT FROM visualizations"
    " WHERE visualizations.id = embed_tokens.resource_id"
    " AND visualizations.organization_id = embed_tokens.organization_id)"
    " WHEN 'query' THEN EXISTS (SELECT FROM queries WHERE queries.id = embed_tokens.resource_id"
    " AND queries.organization_id = embed_tokens.organization_id)"
    " ELSE false END"
)


def live(organization_id: UUID, token_id: UUID, kind: str = "embed") -> dict[str, Any] | None:
    """An embed token's (or share link's) row while it is neither revoked nor expired."""
    return fetch_one(
        f"SELECT {GUEST_COLUMNS} FROM embed_tokens"  # noqa: S608  # constant column lists
        f" WHERE organization_id = %s AND id = %s AND kind = %s AND {LIVE}",
        (organization_id, token_id, kind),
    )


def use_share(secret_hash: bytes) -> dict[str, Any] | None:
    """A share link's row, while live and its organization allows share links, its access counted."""
    return fetch_one(
        "UPDATE embed_tokens SET access_count = access_count + 1, last_accessed_at = now()"  # noqa: S608
        " FROM organizations WHERE embed_tokens.secret_hash = %s AND embed_tokens.kind = 'share'"
        f" AND embed_tokens.{LIVE}"
        " AND organizations.id = embed_tokens.organization_id"
        " AND coalesce((organizations.settings ->> 'share_links_enabled')::boolean, false)"
        f" RETURNING {', '.join(f'embed_tokens.{column}' for column in GUEST_COLUMNS.split(', '))}",
        (secret_hash,),
    )


def shares_of(organization_id: UUID, resource_type: str, resource_id: UUID) -> list[dict[str, Any]]:
    """A resource's share links, newest first, revoked and expired ones too."""
    return fetch_all(
        "SELECT id, resource_type, resource_id, locked, editable_filters, claims, allowed_origins, downloads,"
        " expires_at, revoked_at, access_count, last_accessed_at, created_by, created_at FROM embed_tokens"
        " WHERE organization_id = %s AND kind = 'share' AND resource_type = %s AND resource_id = %s"
        " ORDER BY created_at DESC, id",
        (organization_id, resource_type, resource_id),
    )


def revoke(
    organization_id: UUID, token_id: UUID, kind: str, resource: tuple[str, UUID] | None = None
) -> bool:
    """Revoke the token or link (of the resource, when given); False when the organization has no such
    one (revoking twice is no error)."""
    resource_type, resource_id = resource if resource is not None else (None, None)
    found = fetch_one(
        "UPDATE embed_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE organization_id = %s AND id = %s AND kind = %s"
        " AND (%s::text IS NULL OR (resource_type = %s AND resource_id = %s)) RETURNING id",
        (organization_id, token_id, kind, resource_type, resource_type, resource_id),
    )
    return found is not None


def revoke_for(organization_id: UUID, resource_type: str, resource_id: UUID) -> int:
    """Revoke every live token of the resource; how many."""
    return execute(
        "UPDATE embed_tokens SET revoked_at = now() WHERE organization_id = %s AND kind = 'embed'"
        " AND resource_type = %s AND resource_id = %s AND revoked_at IS NULL AND expires_at > now()",
        (organization_id, resource_type, resource_id),
    )


def claims_of(organization_id: UUID, token_id: UUID) -> dict[str, Any]:
    row = fetch_one(
        "SELECT claims FROM embed_tokens WHERE organization_id = %s AND id = %s", (organization_id, token_id)
    )
    return dict(row["claims"]) if row else {}
