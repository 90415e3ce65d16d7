"""The bundle_keys table: the stable key each saved object carries in bundles, per organization."""

from __future__ import annotations

from uuid import UUID

from loupe.db import execute, fetch_all


def of_organization(organization_id: UUID) -> dict[tuple[str, UUID], str]:
    """Every key of the organization, by (resource type, resource id)."""
    rows = fetch_all(
        "SELECT resource_type, resource_id, key FROM bundle_keys WHERE organization_id = %s",
        (organization_id,),
    )
    return {(row["resource_type"], row["resource_id"]): row["key"] for row in rows}


def put(organization_id: UUID, resource_type: str, key: str, resource_id: UUID) -> None:
    """Name the resource `key`: the key leaves whatever it named, and the resource its former key."""
    execute(
        "DELETE FROM bundle_keys WHERE resource_type = %s AND resource_id = %s AND key <> %s",
        (resource_type, resource_id, key),
    )
    execute(
        "INSERT INTO bundle_keys (organization_id, resource_type, key, resource_id) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (organization_id, resource_type, key) DO UPDATE SET resource_id = EXCLUDED.resource_id",
        (organization_id, resource_type, key, resource_id),
    )


def lock_organization(organization_id: UUID) -> None:
    """Hold the organization's bundle lock until the transaction ends: applies go one at a time."""
    execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('loupe.bundles:' || %s::text, 0))", (organization_id,)
    )
