"""Pictures of visualizations and dashboards, drawn from stored results the caller may read (row policies
included); rendering never starts a run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from loupe import db
from loupe.charts import engine
from loupe.charts.page import PlacedTile, dashboard_page, page_height, tile_size
from loupe.charts.specs import vega_lite
from loupe.errors import Conflict, DomainError, FieldIssue, InvalidInput, InvalidListQuery, NotFound
from loupe.models.dashboards import TileOut
from loupe.models.identity import Principal
from loupe.models.rendering import (
    MAX_PIXELS,
    DashboardFormat,
    DashboardRenderRequest,
    VisualizationRenderQuery,
)
from loupe.models.runs import RunOut, RunStatus
from loupe.models.visualizations import VisualizationType
from loupe.repositories import crud
from loupe.repositories.queries import QUERIES
from loupe.services import embed
from loupe.services.dashboards import Board, TilePlan, dashboards, plan_tiles
from loupe.services.runs import organization_zone, parameter_values, runs
from loupe.services.visualizations import visualizations

# A proxy response holds 6 MB, and base64 makes 4 bytes of 3: a picture over this cannot be answered.
MAX_PICTURE_BYTES = 4_400_000
CONTENT_TYPES = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "pdf": "application/pdf",
    "vega-lite": "application/json",
}
# A dashboard's tiles are drawn within this many seconds together; those left say so in their place.
PAGE_SECONDS = 20.0
# What travels base64-encoded, and must be named in the template's BinaryMediaTypes.
BINARY_TYPES = frozenset({"image/png", "application/pdf"})


class PictureTooLarge(InvalidListQuery):
    """The drawing is over what one response may carry."""


@dataclass(frozen=True)
class Shown:
    """What a tile is drawn as: a visualization's type, options and title."""

    type: VisualizationType
    options: dict[str, Any]
    name: str


@dataclass(frozen=True)
class Picture:
    """A drawing and its media type: text (SVG), bytes (PNG, PDF) or a specification (Vega-Lite)."""

    content_type: str
    body: str | bytes | dict[str, Any]
    run_id: UUID | None = None


def require_visualization(principal: Principal, visualization_id: UUID) -> None:
    """A 404 unless the caller's organization has the visualization."""
    with db.transaction():
        visualizations.require(principal, visualization_id)


def require_dashboard(principal: Principal, dashboard_id: UUID) -> None:
    """A 404 unless the caller's organization has the dashboard."""
    with db.transaction():
        dashboards.require(principal, dashboard_id)


def _require_pixels(width: int, height: int, scale: float) -> None:
    if width * height * scale * scale > MAX_PIXELS:
        raise InvalidListQuery(
            f"A picture has at most {MAX_PIXELS:,} pixels (width x height x scale²)",
            issues=[FieldIssue("scale", "too many pixels for this width and height")],
        )


def _bounded(body: bytes) -> bytes:
    if len(body) > MAX_PICTURE_BYTES:
        raise PictureTooLarge(
            f"The picture takes {len(body):,} bytes, over the {MAX_PICTURE_BYTES:,} a response carries: ask"
            " for a smaller width, height or scale",
            issues=[FieldIssue("width", "the picture is too large at this size")],
        )
    return body


def _default_run(principal: Principal, query: Mapping[str, Any]) -> RunOut:
    """The newest stored result of the query with its parameters' defaults."""
    organization_id = principal.organization_id
    try:
        values = parameter_values(
            query["parameters"], {}, organization_id, lambda: organization_zone(organization_id), principal
        )
    except InvalidInput:
        raise Conflict("The query's parameters have no defaults to draw it with: name a run_id") from None
    run = runs.newest_result(principal, query, values)
    if run is None:
        raise Conflict(
            "The visualization's query has no stored result with its default parameters yet: run it"
            " (POST /queries/{id}/runs), or name a run_id"
        )
    return run


def _spec(principal: Principal, shown: Shown, run_id: UUID, width: int, height: int) -> dict[str, Any]:
    reader = runs.result_reader(principal, run_id)
    manifest = reader.manifest
    return vega_lite(
        shown.type,
        shown.options,
        manifest.columns,
        reader.iter_rows(),
        manifest.row_count,
        title=shown.name,
        width=width,
        height=height,
    )


def _shown_in(board: Board, plan: TilePlan, tile: TileOut) -> Shown | None:
    """What the tile draws: its visualization, or its query's result as a table with default options
    (a query shown without a visualization); None for a text tile."""
    if tile.visualization_id is not None:
        row = plan.visualizations[tile.visualization_id]
        return Shown(row["type"], row["options"], row["name"])
    if tile.id in plan.direct:
        return Shown("table", {}, board.direct[tile.id]["name"])
    return None


def render_visualization(
    principal: Principal, visualization_id: UUID, query: VisualizationRenderQuery
) -> Picture:
    """The visualization drawn from `query.run_id`, or from its query's newest stored result."""
    if query.format == "png":
        _require_pixels(query.width, query.height, query.scale)
    with db.transaction():
        shown = visualizations.get(principal, visualization_id).resource
        if query.run_id is None:
            stored = crud.get(QUERIES, principal.organization_id, shown.query_id)
            if stored is None:
                raise NotFound("The visualization's query is gone")
            run = _default_run(principal, stored)
        else:
            run = runs.get(principal, query.run_id).resource
            if run.query_id != shown.query_id:
                raise InvalidListQuery(
                    "The run is not a run of the visualization's query",
                    issues=[FieldIssue("run_id", "a run of another query")],
                )
    spec = _spec(principal, Shown(shown.type, shown.options, shown.name), run.id, query.width, query.height)
    content_type = CONTENT_TYPES[query.format]
    if query.format == "vega-lite":
        _bounded(json.dumps(spec).encode())
        return Picture(content_type, spec, run.id)
    if query.format == "svg":
        svg = engine.to_svg(spec)
        _bounded(svg.encode())
        return Picture(content_type, svg, run.id)
    return Picture(content_type, _bounded(engine.to_png(spec, query.scale)), run.id)


def _filter_text(name: str, value: Any) -> str:
    if isinstance(value, Mapping) and "from" in value:
        return f"{name}: {value.get('preset', 'custom')} ({value['from']} → {value['to']})"
    if isinstance(value, list):
        return f"{name}: {', '.join(str(item) for item in value)}"
    return f"{name}: {value}"


def render_dashboard(principal: Principal, dashboard_id: UUID, request: DashboardRenderRequest) -> Picture:
    """The dashboard on one page, each tile drawn from the newest stored result of the run the data call
    would show for these filters (a tile without one says so)."""
    return render_board(principal, lambda: dashboards.board(principal, dashboard_id), request)


def render_for_guest(guest: Principal, token: Mapping[str, Any], request: DashboardRenderRequest) -> Picture:
    """The guest's resource on one page, as render_dashboard draws it: the token's locked values over the
    guest's editable filters, the rest at their defaults."""
    filters = embed.guest_filters(token, request.filters)
    drawn = DashboardRenderRequest.model_construct(
        filters=filters, format=request.format, width=request.width, scale=request.scale
    )
    return render_board(guest, embed.guest_board(guest, token), drawn)


def _succeeded(principal: Principal, run_id: UUID) -> RunOut | None:
    run = runs.get(principal, run_id).resource
    return run if run.status is RunStatus.SUCCEEDED else None


def render_board(
    principal: Principal,
    load: Callable[[], Board],
    request: DashboardRenderRequest,
    drawn_from: Mapping[UUID, UUID] | None = None,
    as_of: datetime | None = None,
) -> Picture:
    """A board (a dashboard, or a visualization as one) on one page, drawn as render_dashboard says; or,
    given `drawn_from` (a report's own runs, their ranges resolved `as_of` when it fired), each tile from
    the run named for it, empty where that run did not succeed."""
    missing = "No stored result for these filters yet: refresh the dashboard"
    with db.transaction():
        board = load()
        plan = plan_tiles(principal, board, request.filters, as_of)
        if drawn_from is None:
            newest = {
                tile_id: runs.newest_result(principal, query, values) for tile_id, query, values in plan.runs
            }
        else:
            missing = "Its query did not succeed in this report"
            newest = {
                tile_id: _succeeded(principal, drawn_from[tile_id])
                for tile_id, _, _ in plan.runs
                if tile_id in drawn_from
            }
    shown_tiles = board.dashboard.tiles
    # The page's size is known from the grid: a page too large is refused before any tile is drawn.
    _require_pixels(
        request.width,
        page_height([PlacedTile(tile.x, tile.y, tile.w, tile.h) for tile in shown_tiles]),
        request.scale if request.format == "png" else 1.0,
    )
    deadline = time.monotonic() + PAGE_SECONDS
    tiles: list[PlacedTile] = []
    for tile in shown_tiles:
        placed = PlacedTile(tile.x, tile.y, tile.w, tile.h, text=tile.text)
        shown = _shown_in(board, plan, tile)
        if shown is not None:
            run = newest.get(tile.id)
            if time.monotonic() > deadline:
                placed = PlacedTile(
                    tile.x, tile.y, tile.w, tile.h, message="Not drawn: the page ran out of time"
                )
            elif run is None:
                message = plan.skipped.get(tile.id) or missing
                placed = PlacedTile(tile.x, tile.y, tile.w, tile.h, message=message)
            else:
                width, height = tile_size(request.width, placed)
                try:
                    svg = engine.to_svg(_spec(principal, shown, run.id, width, height))
                except DomainError as refusal:
                    placed = PlacedTile(tile.x, tile.y, tile.w, tile.h, message=refusal.message)
                else:
                    placed = PlacedTile(tile.x, tile.y, tile.w, tile.h, svg=svg)
        tiles.append(placed)
    filters = [_filter_text(name, value) for name, value in plan.filters.items() if value is not None]
    page = dashboard_page(board.dashboard.name, filters, tiles, request.width)
    return _page(page, request.format, request.scale)


def _page(page: str, page_format: DashboardFormat, scale: float) -> Picture:
    if page_format == "pdf":
        return Picture(CONTENT_TYPES["pdf"], _bounded(engine.svg_to_pdf(page)))
    return Picture(CONTENT_TYPES["png"], _bounded(engine.svg_to_png(page, scale)))
