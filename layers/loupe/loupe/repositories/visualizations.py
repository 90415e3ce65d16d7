"""The visualizations table."""

from __future__ import annotations

from loupe.repositories.listing import Collection

VISUALIZATIONS = Collection(
    table="visualizations",
    columns=("id", "name", "query_id", "type", "options", "tags", "created_by", "created_at", "updated_at"),
    sortable=frozenset({"name", "type", "created_at", "updated_at"}),
    writable=frozenset({"name", "query_id", "type", "options", "tags", "created_by"}),
    filters=frozenset({"query_id", "created_by"}),
    json_columns=frozenset({"options"}),
)
