"""The queries table."""

from __future__ import annotations

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
