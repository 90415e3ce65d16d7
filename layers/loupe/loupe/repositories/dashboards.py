"""The dashboards table (its tiles are in dashboard_tiles)."""

from __future__ import annotations

from loupe.repositories.listing import Collection

DASHBOARDS = Collection(
    table="dashboards",
    columns=(
        "id",
        "name",
        "description",
        "tags",
        "filters",
        "max_age_seconds",
        "timezone",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "created_at", "updated_at"}),
    writable=frozenset(
        {"name", "description", "tags", "filters", "max_age_seconds", "timezone", "created_by"}
    ),
    json_columns=frozenset({"filters"}),
    searchable=("name", "description"),
)
