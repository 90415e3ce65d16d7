"""The row_policies table, and the claims of members and API keys the policies bind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute, fetch_all, fetch_one
from loupe.repositories.listing import Collection

ROW_POLICIES = Collection(
    table="row_policies",
    columns=(
        "id",
        "datasource_id",
        "table_name",
        "predicate",
        "applies_to",
        "description",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"created_at", "updated_at"}),
    writable=frozenset(
        {"datasource_id", "table_name", "predicate", "applies_to", "description", "created_by"}
    ),
    json_columns=frozenset({"applies_to"}),
    default_sort="created_at",
    searchable=("table_name", "description"),
    tagged=False,
)
# A datasource's policies are few (each is checked at every run on it): this bounds them.
MAX_PER_DATASOURCE = 100


def of_datasource(organization_id: UUID, datasource_id: UUID) -> list[dict[str, Any]]:
    """The datasource's policies, oldest first."""
    return fetch_all(
        "SELECT id, datasource_id, table_name, predicate, applies_to, description, created_by, created_at,"
        " updated_at FROM row_policies WHERE organization_id = %s AND datasource_id = %s"
        " ORDER BY created_at, id",
        (organization_id, datasource_id),
    )


def members_among(organization_id: UUID, user_ids: list[UUID]) -> set[UUID]:
    """Which of the users are members of the organization."""
    rows = fetch_all(
        "SELECT user_id FROM memberships WHERE organization_id = %s AND user_id = ANY(%s)",
        (organization_id, user_ids),
    )
    return {row["user_id"] for row in rows}


def member_claims(organization_id: UUID, user_id: UUID) -> dict[str, Any]:
    row = fetch_one(
        "SELECT claims FROM memberships WHERE organization_id = %s AND user_id = %s",
        (organization_id, user_id),
    )
    return dict(row["claims"]) if row else {}


def api_key_claims(organization_id: UUID, api_key_id: UUID) -> dict[str, Any]:
    row = fetch_one(
        "SELECT claims FROM api_keys WHERE organization_id = %s AND id = %s", (organization_id, api_key_id)
    )
    return dict(row["claims"]) if row else {}


def set_member_claims(organization_id: UUID, user_id: UUID, claims: Mapping[str, Any]) -> bool:
    return (
        execute(
            "UPDATE memberships SET claims = %s WHERE organization_id = %s AND user_id = %s",
            (Jsonb(dict(claims)), organization_id, user_id),
        )
        > 0
    )


def set_api_key_claims(organization_id: UUID, api_key_id: UUID, claims: Mapping[str, Any]) -> bool:
    return (
        execute(
            "UPDATE api_keys SET claims = %s WHERE organization_id = %s AND id = %s AND revoked_at IS NULL",
            (Jsonb(dict(claims)), organization_id, api_key_id),
        )
        > 0
    )
