"""Requests and responses of the dashboards resource: visualization and text tiles on a 12-column grid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator

from loupe.models.auth import DisplayName, StrictModel
from loupe.models.queries import Description, Tags, refuse_null

GRID_COLUMNS = 12
MAX_TILE_HEIGHT = 24
# Far below what a screen shows, and it keeps the int4 columns (and the overlap check) small.
MAX_ROW = 10_000
MAX_TILES = 200


class Tile(StrictModel):
    """A tile at (x, y), w columns wide and h rows high, showing a visualization, a text, or both."""

    visualization_id: UUID | None = Field(None, description="A visualization of the caller's organization")
    text: str | None = Field(None, max_length=10_000, description="Markdown shown in the tile")
    x: int = Field(ge=0, lt=GRID_COLUMNS)
    y: int = Field(ge=0, le=MAX_ROW)
    w: int = Field(ge=1, le=GRID_COLUMNS)
    h: int = Field(ge=1, le=MAX_TILE_HEIGHT)

    @model_validator(mode="after")
    def _fits_and_shows_something(self) -> Tile:
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w must be at most {GRID_COLUMNS}")
        if self.visualization_id is None and self.text is None:
            raise ValueError("a tile needs a visualization_id or a text")
        return self


Tiles = Annotated[
    list[Tile], Field(max_length=MAX_TILES, description=f"Tiles that do not overlap; at most {MAX_TILES}")
]


class DashboardCreate(StrictModel):
    name: DisplayName
    description: Description | None = None
    tags: Tags = Field(default_factory=list)
    tiles: Tiles = Field(default_factory=list)


class DashboardUpdate(StrictModel):
    """Only the fields sent change; `tiles`, when sent, replaces every tile at once."""

    name: DisplayName | None = None
    description: Description | None = None
    tags: Tags | None = None
    tiles: Tiles | None = None

    _present = field_validator("name", "tags", "tiles")(refuse_null)


class TileOut(BaseModel):
    id: UUID
    visualization_id: UUID | None
    text: str | None
    x: int
    y: int
    w: int
    h: int


class DashboardOut(BaseModel):
    id: UUID
    name: str
    description: str | None
    tags: list[str]
    tiles: list[TileOut] = Field(description="Ordered top to bottom, then left to right; lists include them")
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
