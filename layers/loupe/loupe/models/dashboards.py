"""Requests and responses of the dashboards resource: visualization and text tiles on a 12-column grid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loupe.models.common import DisplayName, StrictModel, Tags, refuse_null
from loupe.models.queries import Description

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
                }
            ]
        }
    )

    name: DisplayName
    description: Description | None = None
    tags: Tags = Field(default_factory=list)
    tiles: Tiles = Field(default_factory=list)


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

    _present = field_validator("name", "tags", "tiles")(refuse_null)


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
                        },
                        {
                            "id": "2b4d6f8b-0c2e-4a4b-9d6f-8b0c2e4a6b8d",
                            "visualization_id": None,
                            "text": "## Revenue\nNet of refunds; refreshed every weekday at 07:00.",
                            "x": 8,
                            "y": 0,
                            "w": 4,
                            "h": 6,
                        },
                    ],
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
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
