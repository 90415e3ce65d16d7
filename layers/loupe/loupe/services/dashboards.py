"""Dashboards: tiles that fit the 12-column grid without overlapping, each showing a visualization of
the caller's organization or a text; a dashboard's tiles are read with it and replaced as a whole."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic_core import to_jsonable_python

from loupe import db
from loupe.errors import FieldIssue, InvalidInput, NotFound, OptionsUnavailable, RowTooLarge
from loupe.models.common import ListQuery, Page
from loupe.models.dashboards import (
    DashboardCreate,
    DashboardData,
    DashboardDataRequest,
    DashboardOut,
    DashboardUpdate,
    FilterOptionsRequest,
    Tile,
    TileData,
    TileOut,
)
from loupe.models.identity import Principal
from loupe.models.queries import ParameterOptionsPage, ParameterOptionsQuery, QueryParameter
from loupe.models.runs import ACTIVE_STATUSES, RefreshOut, RunOrigin, RunOut, RunStatus, SkippedQueryOut
from loupe.models.visualizations import VisualizationOut
from loupe.repositories import crud, dashboard_tiles
from loupe.repositories.dashboards import DASHBOARDS
from loupe.repositories.queries import QUERIES
from loupe.repositories.visualizations import VISUALIZATIONS
from loupe.results.page import PAGE_MAX_BYTES, body_text, proxy_bytes
from loupe.results.store import ResultReader
from loupe.services import dependents, parameter_options
from loupe.services.resources import ResourceService, Versioned, database_rules, require_references
from loupe.services.runs import organization_zone, parameter_values, run_settings, runs
from loupe.services.visualizations import visualization_warnings
from loupe.versions import ExpectedVersions

# A dashboard's data answers within a page's byte budget (Lambda answers at most 6 MB); each succeeded
# tile gets at most TILE_ROWS rows of it, in order, and the tiles after it is spent say results_deferred.
DATA_MAX_BYTES = PAGE_MAX_BYTES
TILE_ROWS = 1_000
# Below this, a tile's rows are deferred rather than cut to a handful.
MIN_ROWS_BUDGET = 4_096


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


def _kind(parameter: Mapping[str, Any]) -> str:
    return f"{'a list of ' if parameter.get('multi') else ''}{parameter['type']}"


def check_mappings(principal: Principal, tiles: Sequence[Tile], filters: Sequence[QueryParameter]) -> None:
    """Each tile maps parameters its query has to filters the dashboard has, of the same type (a 422
    naming `tiles.N.param_mappings.<parameter>` otherwise)."""
    mapped = [
        (index, tile.visualization_id, tile.param_mappings)
        for index, tile in enumerate(tiles)
        if tile.param_mappings and tile.visualization_id is not None
    ]
    if not mapped:
        return
    organization_id = principal.organization_id
    shown = {
        row["id"]: row["query_id"]
        for row in crud.get_many(VISUALIZATIONS, organization_id, [shows for _, shows, _ in mapped])
    }
    declared = {
        row["id"]: {parameter["name"]: parameter for parameter in row["parameters"]}
        for row in crud.get_many(QUERIES, organization_id, list(set(shown.values())))
    }
    by_name = {item.name: item.model_dump(mode="json") for item in filters}
    issues = []
    for index, shows, mappings in mapped:
        parameters = declared.get(shown.get(shows), {})
        for parameter_name, filter_name in mappings.items():
            parameter, feeding = parameters.get(parameter_name), by_name.get(filter_name)
            if parameter is None:
                issue = "the tile's query has no such parameter"
            elif feeding is None:
                issue = f"the dashboard has no filter {filter_name!r}"
            elif _kind(parameter) != _kind(feeding):
                issue = f"the filter is {_kind(feeding)}, the parameter {_kind(parameter)}"
            else:
                continue
            issues.append(FieldIssue(f"tiles.{index}.param_mappings.{parameter_name}", issue))
    if issues:
        raise InvalidInput("The tiles' parameters and the dashboard's filters do not fit", issues=issues)


def checked_tiles(
    principal: Principal, tiles: Sequence[Tile], filters: Sequence[QueryParameter]
) -> list[dict[str, Any]]:
    """The tiles as rows to store, once they are known not to overlap, to name the caller's
    organization's visualizations (another organization's is a 404, as if it did not exist) and to map
    their parameters to the dashboard's filters."""
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
    check_mappings(principal, tiles, filters)
    return [tile.model_dump(mode="json") for tile in tiles]


def _filters(stored: Sequence[Mapping[str, Any]]) -> list[QueryParameter]:
    return [QueryParameter.model_validate(item) for item in stored]


def _stored_filters(filters: Sequence[QueryParameter]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in filters]


def _tile_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in Tile.model_fields}


def _with_tiles(principal: Principal, found: list[DashboardOut]) -> list[DashboardOut]:
    tiles = dashboard_tiles.for_dashboards(principal.organization_id, [dashboard.id for dashboard in found])
    return [
        dashboard.model_copy(update={"tiles": [TileOut.model_validate(row) for row in tiles[dashboard.id]]})
        for dashboard in found
    ]


class DashboardService(
    dependents.UsedByOthers, ResourceService[DashboardCreate, DashboardUpdate, DashboardOut]
):
    # The base class reads and writes dashboard rows; the methods below add the tiles, in one query each.
    revised = "dashboard"
    find_dependents = staticmethod(dependents.of_dashboard)

    def to_out(self, row: dict[str, Any]) -> DashboardOut:
        return DashboardOut.model_validate({**row, "tiles": []})

    def values_for_create(self, principal: Principal, body: DashboardCreate) -> dict[str, Any]:
        parameter_options.require_sources(principal.organization_id, body.filters, "filters")
        return {**body.model_dump(exclude={"tiles", "filters"}), "filters": _stored_filters(body.filters)}

    def values_for_update(
        self, principal: Principal, body: DashboardUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        values = body.model_dump(exclude_unset=True, exclude={"tiles", "filters"})
        filters = _filters(current["filters"]) if body.filters is None else body.filters
        if body.filters is not None:
            parameter_options.require_sources(principal.organization_id, body.filters, "filters")
            values["filters"] = _stored_filters(body.filters)
        if body.tiles is not None:
            # Here the row is locked and If-Match checked; the tiles change in the update's transaction.
            tiles = checked_tiles(principal, body.tiles, filters)
            with database_rules():
                dashboard_tiles.replace(principal.organization_id, current["id"], tiles)
        elif body.filters is not None:
            # The stored tiles must still fit the new filters.
            stored = dashboard_tiles.for_dashboards(principal.organization_id, [current["id"]])[current["id"]]
            check_mappings(principal, [Tile.model_validate(_tile_fields(row)) for row in stored], filters)
        return values

    def definition(self, principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
        """The dashboard with its tiles and filters; tiles without their ids, which each save renews."""
        shown = _with_tiles(principal, [self.to_out(row)])[0]
        kept = shown.model_dump(mode="json", exclude=set(self.unrevised))
        kept["tiles"] = [{name: tile[name] for name in Tile.model_fields} for tile in kept["tiles"]]
        return kept

    def after_create(self, principal: Principal, body: DashboardCreate, row: dict[str, Any]) -> None:
        tiles = checked_tiles(principal, body.tiles, body.filters)
        if tiles:
            with database_rules():
                dashboard_tiles.replace(principal.organization_id, row["id"], tiles)

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
            made = super().create(principal, body)
            return Versioned(_with_tiles(principal, [made.resource])[0], made.version)

    def update(
        self, principal: Principal, resource_id: UUID, body: DashboardUpdate, expected: ExpectedVersions
    ) -> Versioned[DashboardOut]:
        with db.transaction():
            updated = super().update(principal, resource_id, body, expected)
            return Versioned(_with_tiles(principal, [updated.resource])[0], updated.version)

    def board(self, principal: Principal, dashboard_id: UUID) -> Board:
        """The dashboard as its data is drawn from (in the caller's transaction)."""
        row = self._existing(principal, dashboard_id)
        return Board(row, _with_tiles(principal, [self.to_out(row)])[0])

    def data(self, principal: Principal, dashboard_id: UUID, request: DashboardDataRequest) -> DashboardData:
        return draw(principal, lambda: self.board(principal, dashboard_id), request)

    def filter_options(
        self, principal: Principal, dashboard_id: UUID, name: str, request: FilterOptionsRequest
    ) -> ParameterOptionsPage:
        return options_of(principal, lambda: self.board(principal, dashboard_id), name, request)

    def refresh(
        self,
        principal: Principal,
        dashboard_id: UUID,
        filters: Mapping[str, Any],
        max_age_seconds: int | None,
    ) -> RefreshOut:
        """A run for each distinct query and values of the dashboard's tiles, with the filters' values (see
        RunService.serve); a tile whose query lacks a value is skipped, with why."""
        with db.transaction():
            board = self.board(principal, dashboard_id)
            plan = plan_tiles(principal, board, filters)
            planned = [(query, values) for _, query, values in plan.runs]
            served = runs.serve(principal, planned, max_age_seconds, RunOrigin.REFRESH)
        skipped = {
            plan.visualizations[tile.visualization_id]["query_id"]: plan.skipped[tile.id]
            for tile in board.dashboard.tiles
            if tile.id in plan.skipped and tile.visualization_id is not None
        }
        return RefreshOut(
            runs=list({run.id: run for run in served}.values()),
            skipped=[
                SkippedQueryOut(query_id=query_id, reason=reason) for query_id, reason in skipped.items()
            ],
        )


@dataclass(frozen=True)
class Board:
    """What data is drawn from: a row with the filters, max age and time zone, the dashboard with its tiles,
    and the query each tile shows directly, without a visualization (a guest's query result, a table)."""

    row: Mapping[str, Any]
    dashboard: DashboardOut
    direct: Mapping[UUID, Mapping[str, Any]] = field(default_factory=dict)


def draw(principal: Principal, load: Callable[[], Board], request: DashboardDataRequest) -> DashboardData:
    """The board drawn with the filters' values (their defaults where left out): each visualization
    tile's run (reused when at most max_age_seconds old, else started) and, for a succeeded one, the
    first page of its rows, all within one response's byte budget."""
    with db.transaction():
        board = load()
        dashboard = board.dashboard
        plan = plan_tiles(principal, board, request.filters)
        max_age = board.row["max_age_seconds"] if request.max_age_seconds is None else request.max_age_seconds
        served = runs.serve(principal, [(query, values) for _, query, values in plan.runs], max_age or None)
        warnings = visualization_warnings(plan.visualizations.values())
    by_tile = {tile_id: run for (tile_id, _, _), run in zip(plan.runs, served, strict=True)}
    pending = list(dict.fromkeys(run.id for run in served if run.status in ACTIVE_STATUSES))
    budget = ResponseBudget(DATA_MAX_BYTES - measured(dashboard) - measured(plan.filters) - measured(pending))
    drawn = [
        _drawn(principal, tile, plan, by_tile.get(tile.id), warnings, budget) for tile in dashboard.tiles
    ]
    return DashboardData(dashboard=dashboard, filters=plan.filters, tiles=drawn, pending_run_ids=pending)


def options_of(
    principal: Principal, load: Callable[[], Board], name: str, request: FilterOptionsRequest
) -> ParameterOptionsPage:
    """The options of the board's filter `name`: its options query's result, for a cascading filter
    the one that ran with the other filters' values (started when there is none young enough, and
    then `pending`)."""
    organization_id = principal.organization_id
    with db.transaction():
        row = load().row
        declared = {item["name"]: item for item in row["filters"]}
        source = (declared.get(name) or {}).get("options_query")
        if source is None:
            raise NotFound("The dashboard has no filter of that name with an options query")
        options_query = crud.get(QUERIES, organization_id, source["query_id"])
        if options_query is None:
            raise OptionsUnavailable("The filter's options query is gone")
        chosen = {item: request.filters.get(item, declared[item].get("default")) for item in declared}
        try:
            values = parameter_values(
                options_query["parameters"],
                parameter_options.depends_on(source, chosen),
                organization_id,
                lambda: dashboard_zone(organization_id, row),
                principal,
            )
        except InvalidInput as error:
            raise OptionsUnavailable(
                f"The options query cannot run with these filters: {error.message}"
            ) from None
        max_age = row["max_age_seconds"] or None
        [run] = runs.serve(principal, [(options_query, values)], max_age)
    if run.status in ACTIVE_STATUSES:
        return ParameterOptionsPage(
            items=[],
            total=0,
            limit=request.limit,
            offset=request.offset,
            run_id=run.id,
            refreshed_at=None,
            options_truncated=False,
            pending=True,
        )
    if run.status is not RunStatus.SUCCEEDED or run.finished_at is None:
        raise OptionsUnavailable(f"The options query's run ended {run.status}")
    bucket = parameter_options.results_bucket()
    options = parameter_options.options_of_run(organization_id, bucket, run.id, run.finished_at, source)
    listing = ParameterOptionsQuery(q=request.q, limit=request.limit, offset=request.offset)
    return parameter_options.paged(options, listing)


def dashboard_zone(organization_id: UUID, dashboard: Mapping[str, Any]) -> ZoneInfo:
    """The dashboard's own time zone, else its organization's."""
    own = dashboard["timezone"]
    return ZoneInfo(own) if own else organization_zone(organization_id)


@dataclass
class ResponseBudget:
    """The bytes a response has left for rows."""

    remaining: int


@dataclass(frozen=True)
class TilePlan:
    """What a dashboard's tiles run with: the filters' values (ranges resolved), each visualization tile's
    query and checked values, and why a tile has no run."""

    filters: dict[str, Any]
    visualizations: dict[UUID, dict[str, Any]]
    runs: list[tuple[UUID, Mapping[str, Any], dict[str, Any]]]
    skipped: dict[UUID, str]
    direct: set[UUID]


def filter_values(
    principal: Principal, dashboard: Mapping[str, Any], given: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """Every filter's value: the one given, checked as a query parameter's is (422 on `filters.<name>`),
    or its default; ranges resolved at `now` (the current time unless given) in the dashboard's time
    zone."""
    organization_id = principal.organization_id

    def zone() -> ZoneInfo:
        return dashboard_zone(organization_id, dashboard)

    try:
        return parameter_values(dashboard["filters"], given, organization_id, zone, principal, now)
    except InvalidInput as error:
        raise InvalidInput(
            "The filters do not fit the dashboard",
            issues=[
                FieldIssue(f"filters{issue.field.removeprefix('parameters')}", issue.issue)
                for issue in error.issues
            ],
        ) from None


def plan_tiles(
    principal: Principal, board: Board, given: Mapping[str, Any], now: datetime | None = None
) -> TilePlan:
    """The board's filters and each tile's run, their ranges resolved at `now` (the current time unless
    given: a report's are resolved when it fired)."""
    organization_id = principal.organization_id
    dashboard, tiles = board.row, board.dashboard.tiles
    declared: list[dict[str, Any]] = dashboard["filters"]

    filters = filter_values(principal, dashboard, given, now)

    def zone() -> ZoneInfo:
        return dashboard_zone(organization_id, dashboard)

    # Each tile checks the filter's value as given (a range's preset is resolved for the query anew).
    chosen = {item["name"]: given.get(item["name"], item.get("default")) for item in declared}
    shown = [tile for tile in tiles if tile.visualization_id is not None]
    shown_ids = [tile.visualization_id for tile in tiles if tile.visualization_id is not None]
    visualizations = {row["id"]: row for row in crud.get_many(VISUALIZATIONS, organization_id, shown_ids)}
    queries = {
        row["id"]: row
        for row in crud.get_many(
            QUERIES, organization_id, list({row["query_id"] for row in visualizations.values()})
        )
    }
    planned: list[tuple[UUID, Mapping[str, Any], dict[str, Any]]] = []
    skipped: dict[UUID, str] = {}
    for tile in [*shown, *(tile for tile in tiles if tile.id in board.direct)]:
        if tile.visualization_id is None:
            query = board.direct[tile.id]
        else:
            query = queries[visualizations[tile.visualization_id]["query_id"]]
        names = {parameter["name"] for parameter in query["parameters"]}
        mapped = {
            parameter: chosen[feeding]
            for parameter, feeding in tile.param_mappings.items()
            if parameter in names and chosen.get(feeding) is not None
        }
        try:
            planned.append(
                (
                    tile.id,
                    query,
                    parameter_values(query["parameters"], mapped, organization_id, zone, principal, now),
                )
            )
        except InvalidInput as error:
            skipped[tile.id] = "; ".join(
                f"{issue.field.rsplit('.', 1)[-1]}: {issue.issue}" for issue in error.issues
            )
    return TilePlan(filters, visualizations, planned, skipped, set(board.direct))


def measured(value: Any) -> int:
    """The bytes `value` takes in a proxy response's body."""
    return proxy_bytes(body_text(to_jsonable_python(value)))


def _drawn(
    principal: Principal,
    tile: TileOut,
    plan: TilePlan,
    run: RunOut | None,
    warnings: Mapping[UUID, list[str]],
    budget: ResponseBudget,
) -> TileData:
    if tile.visualization_id is None and tile.id not in plan.direct:
        drawn = TileData(tile_id=tile.id, visualization=None, run=None, results=None)
        budget.remaining -= measured(drawn)
        return drawn
    visualization = None
    if tile.visualization_id is not None:
        shown = plan.visualizations[tile.visualization_id]
        visualization = VisualizationOut.model_validate({**shown, "warnings": warnings.get(shown["id"], [])})
    slim = TileData(
        tile_id=tile.id,
        visualization_id=tile.visualization_id,
        run_id=run.id if run is not None else None,
        visualization=None,
        run=None,
        results=None,
        skipped=plan.skipped.get(tile.id),
    )
    drawn = slim.model_copy(
        update={"visualization": visualization, "run": run.model_copy(update={"sql": None}) if run else None}
    )
    size = measured(drawn)
    if size > budget.remaining:
        # Not even the tile fits: its ids say where to read it.
        budget.remaining -= measured(slim)
        return slim.model_copy(update={"deferred": True, "results_deferred": run is not None})
    budget.remaining -= size
    if run is None or run.status is not RunStatus.SUCCEEDED or run.results_expired:
        return drawn
    if budget.remaining < MIN_ROWS_BUDGET:
        return drawn.model_copy(update={"results_deferred": True})
    reader = ResultReader.for_run(run_settings().results_bucket, principal.organization_id, run.id)
    try:
        results = reader.page(0, TILE_ROWS, max_bytes=budget.remaining)
    except RowTooLarge:
        return drawn.model_copy(update={"results_deferred": True})
    budget.remaining -= measured(results)
    return drawn.model_copy(update={"results": results})


dashboards = DashboardService(DASHBOARDS, DashboardOut, "dashboard")
