"""The queries table."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe.db import fetch_all
from loupe.repositories.listing import Collection

QUERIES = Collection(
    table="queries",
    columns=(
        "id",
        "name",
        "description",
        "datasource_id",
        "sql",
        "parameters",
        "revision",
        "tags",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "created_at", "updated_at"}),
    writable=frozenset(
        {"name", "description", "datasource_id", "sql", "parameters", "revision", "tags", "created_by"}
    ),
    searchable=("name", "description"),
    filters=frozenset({"datasource_id", "created_by"}),
    json_columns=frozenset({"parameters"}),
)


def using_snippet(organization_id: UUID, snippet_name: str) -> list[dict[str, Any]]:
    """The id and name of each of the organization's queries whose SQL includes the snippet, by name."""
    return fetch_all(
        "SELECT id, name FROM queries WHERE organization_id = %s AND sql ~ %s ORDER BY name, id",
        (organization_id, rf"\{{\{{>\s*{snippet_name}\s*\}}\}}"),
    )
