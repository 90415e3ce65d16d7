"""The tiles of dashboards: read for many dashboards at once, replaced as a whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute, fetch_all

TILE_COLUMNS = "id, dashboard_id, visualization_id, text, x, y, w, h, param_mappings"


def for_dashboards(organization_id: UUID, dashboard_ids: Sequence[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    """Each dashboard's tiles, top to bottom then left to right, in one query (a list page's too)."""
    tiles: dict[UUID, list[dict[str, Any]]] = {dashboard_id: [] for dashboard_id in dashboard_ids}
    rows = fetch_all(
        f"SELECT {TILE_COLUMNS} FROM dashboard_tiles"  # noqa: S608  # a constant column list
        " WHERE organization_id = %s AND dashboard_id = ANY(%s) ORDER BY y, x",
        (organization_id, list(dashboard_ids)),
    )
    for row in rows:
        tiles[row["dashboard_id"]].append(row)
    return tiles


def query_ids(organization_id: UUID, dashboard_id: UUID) -> list[UUID]:
    """The distinct queries behind the dashboard's visualization tiles, in the order of their first tile
    (top to bottom, then left to right)."""
    rows = fetch_all(
        "SELECT visualizations.query_id, min(ARRAY[dashboard_tiles.y, dashboard_tiles.x]) AS first_tile"
        " FROM dashboard_tiles JOIN visualizations"
        " ON visualizations.organization_id = dashboard_tiles.organization_id"
        " AND visualizations.id = dashboard_tiles.visualization_id"
        " WHERE dashboard_tiles.organization_id = %s AND dashboard_tiles.dashboard_id = %s"
        " GROUP BY visualizations.query_id ORDER BY first_tile",
        (organization_id, dashboard_id),
    )
    return [row["query_id"] for row in rows]


def dashboards_showing(organization_id: UUID, visualization_ids: list[UUID]) -> list[dict[str, Any]]:
    """The id and name of each dashboard with a tile of one of the visualizations, by name."""
    return fetch_all(
        "SELECT DISTINCT dashboards.id, dashboards.name FROM dashboard_tiles JOIN dashboards"
        " ON dashboards.organization_id = dashboard_tiles.organization_id"
        " AND dashboards.id = dashboard_tiles.dashboard_id"
        " WHERE dashboard_tiles.organization_id = %s AND dashboard_tiles.visualization_id = ANY(%s)"
        " ORDER BY dashboards.name, dashboards.id",
        (organization_id, visualization_ids),
    )


def replace(organization_id: UUID, dashboard_id: UUID, tiles: Sequence[dict[str, Any]]) -> None:
    """Swap every tile of the dashboard for `tiles` ({visualization_id, text, x, y, w, h}), and mark
    the dashboard changed so its ETag changes with its tiles."""
    execute(
        "DELETE FROM dashboard_tiles WHERE organization_id = %s AND dashboard_id = %s",
        (organization_id, dashboard_id),
    )
    if tiles:
        # One statement for all tiles: the set arrives as one jsonb value and is unpacked server-side.
        execute(
            "INSERT INTO dashboard_tiles"
            " (organization_id, dashboard_id, visualization_id, text, x, y, w, h, param_mappings)"
            " SELECT %s, %s, t.visualization_id, t.text, t.x, t.y, t.w, t.h, COALESCE(t.param_mappings, '{}')"
            " FROM jsonb_to_recordset(%s)"
            " AS t(visualization_id uuid, text text, x int, y int, w int, h int, param_mappings jsonb)",
            (organization_id, dashboard_id, Jsonb(list(tiles))),
        )
    execute(
        "UPDATE dashboards SET updated_at = now() WHERE organization_id = %s AND id = %s",
        (organization_id, dashboard_id),
    )
