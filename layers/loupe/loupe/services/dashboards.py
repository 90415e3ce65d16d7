"""Dashboards: tiles that fit the 12-column grid without overlapping, each showing a visualization of
the caller's organization or a text; a dashboard's tiles are read with it and replaced as a whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from loupe import db
from loupe.errors import FieldIssue, InvalidInput
from loupe.models.common import ListQuery, Page
from loupe.models.dashboards import DashboardCreate, DashboardOut, DashboardUpdate, Tile, TileOut
from loupe.models.identity import Principal
from loupe.models.runs import RefreshOut, SkippedQueryOut
from loupe.repositories import dashboard_tiles
from loupe.repositories.dashboards import DASHBOARDS
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.services.resources import ResourceService, Versioned, database_rules, require_references
from loupe.services.runs import runs
from loupe.versions import ExpectedVersions


def find_overlap(tiles: Sequence[Tile]) -> tuple[int, int] | None:
    """The indexes (first, second) of the first two tiles sharing a grid cell, or None."""
    for second, later in enumerate(tiles):
        for first in range(second):
            earlier = tiles[first]
            if (
                earlier.x < later.x + later.w
                and later.x < earlier.x + earlier.w
                and earlier.y < later.y + later.h
                and later.y < earlier.y + earlier.h
            ):
                return first, second
    return None


def checked_tiles(principal: Principal, tiles: Sequence[Tile]) -> list[dict[str, Any]]:
    """The tiles as rows to store, once they are known not to overlap and to name the caller's
    organization's visualizations (another organization's is a 404, as if it did not exist)."""
    overlap = find_overlap(tiles)
    if overlap is not None:
        first, second = overlap
        raise InvalidInput("Tiles overlap", issues=[FieldIssue(f"tiles.{second}", f"overlaps tile {first}")])
    require_references(
        VISUALIZATIONS,
        principal.organization_id,
        [
            (f"tiles.{index}.visualization_id", tile.visualization_id)
            for index, tile in enumerate(tiles)
            if tile.visualization_id is not None
        ],
    )
    return [tile.model_dump(mode="json") for tile in tiles]


def _with_tiles(principal: Principal, found: list[DashboardOut]) -> list[DashboardOut]:
    tiles = dashboard_tiles.for_dashboards(principal.organization_id, [dashboard.id for dashboard in found])
    return [
        dashboard.model_copy(update={"tiles": [TileOut.model_validate(row) for row in tiles[dashboard.id]]})
        for dashboard in found
    ]


class DashboardService(ResourceService[DashboardCreate, DashboardUpdate, DashboardOut]):
    # The base class reads and writes dashboard rows; the methods below add the tiles, in one query each.

    def to_out(self, row: dict[str, Any]) -> DashboardOut:
        return DashboardOut.model_validate({**row, "tiles": []})

    def values_for_create(self, principal: Principal, body: DashboardCreate) -> dict[str, Any]:
        return body.model_dump(exclude={"tiles"})

    def values_for_update(
        self, principal: Principal, body: DashboardUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        if body.tiles is not None:
            # Here the row is locked and If-Match checked; the tiles change in the update's transaction.
            tiles = checked_tiles(principal, body.tiles)
            with database_rules():
                dashboard_tiles.replace(principal.organization_id, current["id"], tiles)
        return body.model_dump(exclude_unset=True, exclude={"tiles"})

    def get(self, principal: Principal, resource_id: UUID) -> Versioned[DashboardOut]:
        with db.transaction():
            found = super().get(principal, resource_id)
            return Versioned(_with_tiles(principal, [found.resource])[0], found.version)

    def list(self, principal: Principal, query: ListQuery) -> Page[DashboardOut]:
        with db.transaction():
            page = super().list(principal, query)
            return page.model_copy(update={"items": _with_tiles(principal, page.items)})

    def create(self, principal: Principal, body: DashboardCreate) -> Versioned[DashboardOut]:
        with db.transaction():
            tiles = checked_tiles(principal, body.tiles)
            made = super().create(principal, body)
            if tiles:
                with database_rules():
                    dashboard_tiles.replace(principal.organization_id, made.resource.id, tiles)
            return Versioned(_with_tiles(principal, [made.resource])[0], made.version)

    def update(
        self, principal: Principal, resource_id: UUID, body: DashboardUpdate, expected: ExpectedVersions
    ) -> Versioned[DashboardOut]:
        with db.transaction():
            updated = super().update(principal, resource_id, body, expected)
            return Versioned(_with_tiles(principal, [updated.resource])[0], updated.version)

    def refresh(self, principal: Principal, dashboard_id: UUID, max_age_seconds: int | None) -> RefreshOut:
        """Start a run of every distinct query of the dashboard's tiles (see RunService.run_queries)."""
        with db.transaction():
            self._existing(principal, dashboard_id)
            query_ids = dashboard_tiles.query_ids(principal.organization_id, dashboard_id)
            started, skipped = runs.run_queries(principal, query_ids, max_age_seconds)
        return RefreshOut(
            runs=started,
            skipped=[SkippedQueryOut(query_id=item.query_id, reason=item.reason) for item in skipped],
        )


dashboards = DashboardService(DASHBOARDS, DashboardOut, "dashboard")
