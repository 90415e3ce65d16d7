"""The snippets table."""

from __future__ import annotations

from uuid import UUID

from loupe.db import fetch_all
from loupe.repositories.listing import Collection

SNIPPETS = Collection(
    table="snippets",
    columns=("id", "name", "description", "sql", "created_by", "created_at", "updated_at"),
    sortable=frozenset({"name", "created_at", "updated_at"}),
    writable=frozenset({"name", "description", "sql", "created_by"}),
    searchable=("name", "description"),
    tagged=False,
)


def sql_by_name(organization_id: UUID, names: list[str]) -> dict[str, str]:
    """The SQL of each of the organization's snippets among `names`."""
    rows = fetch_all(
        "SELECT name, sql FROM snippets WHERE organization_id = %s AND name = ANY(%s)",
        (organization_id, names),
    )
    return {row["name"]: row["sql"] for row in rows}
