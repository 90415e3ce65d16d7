"""Requests and responses of the dashboards resource: visualization and text tiles on a 12-column grid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from loupe.models.common import DisplayName, StrictModel, Tags, refuse_null
from loupe.models.organizations import TimeZoneName
from loupe.models.queries import Description, ParameterName, ParameterValue, QueryParameter, unique_names
from loupe.models.runs import RUN_EXAMPLE, RunOut, RunResults
from loupe.models.visualizations import VisualizationOut

GRID_COLUMNS = 12
MAX_TILE_HEIGHT = 24
# Far below what a screen shows, and it keeps the int4 columns (and the overlap check) small.
MAX_ROW = 10_000
MAX_TILES = 200
MAX_FILTERS = 20
# A day, as for a run's max_age_seconds.
MAX_AGE_SECONDS = 86_400
DEFAULT_MAX_AGE_SECONDS = 300
TIMEZONE_DESCRIPTION = (
    "The IANA time zone the filters' relative date ranges resolve in (this_month...); null: the"
    " organization's"
)
ParamMappings = Annotated[
    dict[ParameterName, ParameterName],
    Field(
        max_length=50,
        description="Which dashboard filter feeds each parameter of the tile's query (parameter → filter);"
        " a parameter left out keeps the query's default, so a tile may ignore a filter",
    ),
]
Filters = Annotated[
    list[QueryParameter],
    Field(
        max_length=MAX_FILTERS,
        description="Filters a viewer sets for the whole dashboard, declared as query parameters are (type,"
        " multi, default, required, enum options or an options query)",
    ),
    AfterValidator(unique_names),
]
MaxAge = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_AGE_SECONDS,
        description="A tile is served by a succeeded run of its query and values at most this old; 0 runs"
        " every tile anew",
    ),
]


REGION_FILTER: JsonDict = {
    "name": "region",
    "type": "enum",
    "options": ["emea", "amer", "apac"],
    "multi": True,
    "options_query": None,
    "default": ["emea"],
    "required": False,
}


class Tile(StrictModel):
    """A tile at (x, y), w columns wide and h rows high, showing a visualization, a text, or both."""

    visualization_id: UUID | None = Field(None, description="A visualization of the caller's organization")
    text: str | None = Field(None, max_length=10_000, description="Markdown shown in the tile")
    x: int = Field(ge=0, lt=GRID_COLUMNS)
    y: int = Field(ge=0, le=MAX_ROW)
    w: int = Field(ge=1, le=GRID_COLUMNS)
    h: int = Field(ge=1, le=MAX_TILE_HEIGHT)
    param_mappings: ParamMappings = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fits_and_shows_something(self) -> Tile:
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w must be at most {GRID_COLUMNS}")
        if self.visualization_id is None and self.text is None:
            raise ValueError("a tile needs a visualization_id or a text")
        if self.param_mappings and self.visualization_id is None:
            raise ValueError("only a visualization tile maps parameters to filters")
        return self


Tiles = Annotated[
    list[Tile], Field(max_length=MAX_TILES, description=f"Tiles that do not overlap; at most {MAX_TILES}")
]


class DashboardCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Sales overview",
                    "description": "Revenue by region for the weekly sales meeting.",
                    "tags": ["finance", "weekly"],
                    "tiles": [
                        {
                            "visualization_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                            "text": None,
                            "x": 0,
                            "y": 0,
                            "w": 8,
                            "h": 6,
                            "param_mappings": {"regions": "region"},
                        },
                        {
                            "visualization_id": None,
                            "text": "## Revenue\nNet of refunds; refreshed every weekday at 07:00.",
                            "x": 8,
                            "y": 0,
                            "w": 4,
                            "h": 6,
                        },
                    ],
                    "filters": [REGION_FILTER],
                    "max_age_seconds": 300,
                }
            ]
        }
    )

    name: DisplayName
    description: Description | None = None
    tags: Tags = Field(default_factory=list)
    tiles: Tiles = Field(default_factory=list)
    filters: Filters = Field(default_factory=list)
    max_age_seconds: MaxAge = DEFAULT_MAX_AGE_SECONDS
    timezone: TimeZoneName | None = Field(None, description=TIMEZONE_DESCRIPTION)


class DashboardUpdate(StrictModel):
    """Only the fields sent change; `tiles`, when sent, replaces every tile at once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Sales overview (EMEA)", "tags": ["finance", "weekly", "emea"]}]
        }
    )

    name: DisplayName | None = None
    description: Description | None = None
    tags: Tags | None = None
    tiles: Tiles | None = None
    filters: Filters | None = None
    max_age_seconds: MaxAge | None = None
    timezone: TimeZoneName | None = Field(None, description=f"{TIMEZONE_DESCRIPTION}; send null to clear it")

    _present = field_validator("name", "tags", "tiles", "filters", "max_age_seconds")(refuse_null)


class TileOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "1a3c5e7a-9b1d-4f3a-8c5e-7a9b1d3f5a7c",
                    "visualization_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                    "text": None,
                    "x": 0,
                    "y": 0,
                    "w": 8,
                    "h": 6,
                    "param_mappings": {"regions": "region"},
                }
            ]
        }
    )

    id: UUID
    visualization_id: UUID | None
    text: str | None
    x: int
    y: int
    w: int
    h: int
    param_mappings: dict[str, str]


class DashboardOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "4b6d8f0a-2c4e-4f6a-8b0d-2e4f6a8c0e2a",
                    "name": "Sales overview",
                    "description": "Revenue by region for the weekly sales meeting.",
                    "tags": ["finance", "weekly"],
                    "tiles": [
                        {
                            "id": "1a3c5e7a-9b1d-4f3a-8c5e-7a9b1d3f5a7c",
                            "visualization_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                            "text": None,
                            "x": 0,
                            "y": 0,
                            "w": 8,
                            "h": 6,
                            "param_mappings": {"regions": "region"},
                        },
                        {
                            "id": "2b4d6f8b-0c2e-4a4b-9d6f-8b0c2e4a6b8d",
                            "visualization_id": None,
                            "text": "## Revenue\nNet of refunds; refreshed every weekday at 07:00.",
                            "x": 8,
                            "y": 0,
                            "w": 4,
                            "h": 6,
                            "param_mappings": {},
                        },
                    ],
                    "filters": [REGION_FILTER],
                    "max_age_seconds": 300,
                    "timezone": "Europe/Berlin",
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-11-03T10:02:44Z",
                    "updated_at": "2026-11-19T08:47:12Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    description: str | None
    tags: list[str]
    tiles: list[TileOut] = Field(description="Ordered top to bottom, then left to right; lists include them")
    filters: list[QueryParameter]
    max_age_seconds: int
    timezone: str | None = Field(description=TIMEZONE_DESCRIPTION)
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class DashboardDataQuery(BaseModel):
    """GET /dashboards/{id}/data: the filters' defaults."""

    model_config = ConfigDict(extra="forbid")

    max_age_seconds: MaxAge | None = Field(None, description="Instead of the dashboard's own")


class DashboardFilterValues(StrictModel):
    """POST /dashboards/{id}/refresh: the filters' values; those left out take their default."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"filters": {"region": ["emea", "apac"], "period": {"preset": "last_7d"}}}]
        }
    )

    filters: dict[ParameterName, ParameterValue] = Field(default_factory=dict, max_length=MAX_FILTERS)


class DashboardDataRequest(DashboardFilterValues):
    """POST /dashboards/{id}/data: the filters' values; those left out take their default."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filters": {"region": ["emea", "apac"], "period": {"preset": "last_7d"}},
                    "max_age_seconds": 60,
                }
            ]
        }
    )

    max_age_seconds: MaxAge | None = Field(None, description="Instead of the dashboard's own")


class FilterOptionsRequest(DashboardFilterValues):
    """POST /dashboards/{id}/filters/{name}/options: the other filters' values (a cascading filter's options
    depend on them), and which options to list."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"filters": {"region": ["emea"]}, "q": "ber"}]})

    q: str | None = Field(
        None, min_length=1, max_length=200, description="Only options whose label or value holds this"
    )
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class TileData(BaseModel):
    """One tile as drawn: its visualization, the run that serves it, and the first page of its rows once
    that run has succeeded (unless the response's byte budget was spent: `results_deferred`)."""

    tile_id: UUID
    visualization_id: UUID | None = Field(None, description="Null for a text tile")
    run_id: UUID | None = Field(None, description="The run serving the tile; null without one")
    visualization: VisualizationOut | None = Field(description="Null for a text tile, or when `deferred`")
    run: RunOut | None = Field(
        description="The run serving the tile (reused when young enough, else started); its `sql` is left out"
        " here (GET /runs/{id} has it); null when `deferred`"
    )
    deferred: bool = Field(
        False,
        description="Not even the tile fitted in the response's budget: read its visualization and run by id",
    )
    results: RunResults | None = Field(description="The first page of the run's rows, once it succeeded")
    results_deferred: bool = Field(
        False,
        description="The rows did not fit in this response's budget: read them with GET /runs/{id}/results",
    )
    skipped: str | None = Field(
        None, description="Why the tile has no run (a parameter without a value, say)"
    )


def _first_example(model: type[BaseModel]) -> JsonDict:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    example = examples[0]
    assert isinstance(example, dict)
    return example


_DASHBOARD = _first_example(DashboardOut)
DATA_EXAMPLE: JsonDict = {
    "dashboard": _DASHBOARD,
    "filters": {"region": ["emea"]},
    "tiles": [
        {
            "tile_id": "1a3c5e7a-9b1d-4f3a-8c5e-7a9b1d3f5a7c",
            "visualization_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
            "run_id": RUN_EXAMPLE["id"],
            "visualization": _first_example(VisualizationOut),
            "run": {**RUN_EXAMPLE, "origin": "dashboard", "schedule_id": None, "sql": None},
            "results": {
                "columns": [{"name": "region", "type": "text"}, {"name": "revenue", "type": "numeric"}],
                "rows": [["emea", "1234.50"]],
                "total_rows": 1,
                "offset": 0,
                "limit": 1000,
                "next_offset": None,
                "truncated_by": None,
            },
            "results_deferred": False,
            "deferred": False,
            "skipped": None,
        },
        {
            "tile_id": "2b4d6f8b-0c2e-4a4b-9d6f-8b0c2e4a6b8d",
            "visualization_id": None,
            "run_id": None,
            "visualization": None,
            "run": None,
            "results": None,
            "results_deferred": False,
            "deferred": False,
            "skipped": None,
        },
    ],
    "pending_run_ids": [],
}


class DashboardData(BaseModel):
    """A dashboard drawn in one call: per tile, what to draw; `pending_run_ids` for one long poll
    (GET /runs?ids=...&wait=20) until they are done."""

    model_config = ConfigDict(json_schema_extra={"examples": [DATA_EXAMPLE]})

    dashboard: DashboardOut = Field(description="The dashboard: its layout, filters and tiles")
    filters: dict[str, ParameterValue] = Field(description="The values the tiles ran with, ranges resolved")
    tiles: list[TileData]
    pending_run_ids: list[UUID] = Field(description="The tiles' runs still queued or running")
