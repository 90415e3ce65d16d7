"""The canvases table."""

from __future__ import annotations

from loupe.repositories.listing import Collection

CANVASES = Collection(
    table="canvases",
    columns=(
        "id",
        "name",
        "time_preset",
        "time_from",
        "time_to",
        "nodes",
        "edges",
        "tags",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "time_preset", "created_at", "updated_at"}),
    writable=frozenset(
        {"name", "time_preset", "time_from", "time_to", "nodes", "edges", "tags", "created_by"}
    ),
    json_columns=frozenset({"nodes", "edges"}),
)
