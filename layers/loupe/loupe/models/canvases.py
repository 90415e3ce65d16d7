"""Requests and responses of the canvases resource: query, visualization and note nodes joined by edges,
over a shared time window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loupe.models.common import DisplayName, StrictModel, Tags, refuse_null
from loupe.models.time_ranges import PRESETS_DESCRIPTION, TimePreset

MAX_NODES = 500
MAX_EDGES = 2000

NodeType = Literal["query", "visualization", "note"]
ElementId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]


class TimeRange(StrictModel):
    # Dumped as "from" too, so a dumped range validates again (the API's responses already use aliases).
    model_config = ConfigDict(serialize_by_alias=True)

    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class Position(StrictModel):
    x: Coordinate
    y: Coordinate


class Node(StrictModel):
    id: ElementId = Field(description="Unique within the canvas; edges name it")
    type: NodeType
    ref_id: UUID | None = Field(
        None, description="The query or visualization shown (of the caller's organization); notes have none"
    )
    position: Position
    data: dict[str, Any] | None = Field(None, description="What the client keeps with the node")


class Edge(StrictModel):
    id: ElementId = Field(description="Unique within the canvas")
    source: ElementId = Field(description="The id of a node of this canvas")
    target: ElementId = Field(description="The id of a node of this canvas")
    label: str | None = Field(None, max_length=200)


Nodes = Annotated[list[Node], Field(max_length=MAX_NODES)]
Edges = Annotated[list[Edge], Field(max_length=MAX_EDGES)]
TIME_RANGE_DESCRIPTION = "Required with the custom preset, and only there"


CANVAS_EXAMPLE: dict[str, Any] = {
    "name": "Revenue investigation",
    "time_preset": "last_30d",
    "time_range": None,
    "nodes": [
        {
            "id": "revenue-query",
            "type": "query",
            "ref_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
            "position": {"x": 0, "y": 0},
            "data": {"collapsed": False},
        },
        {
            "id": "revenue-chart",
            "type": "visualization",
            "ref_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
            "position": {"x": 360, "y": 0},
            "data": None,
        },
    ],
    "edges": [
        {
            "id": "query-to-chart",
            "source": "revenue-query",
            "target": "revenue-chart",
            "label": "charts",
        }
    ],
    "tags": ["finance"],
}


class CanvasCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CANVAS_EXAMPLE]})

    name: DisplayName
    time_preset: TimePreset = Field(description=f"The canvas's time window: {PRESETS_DESCRIPTION}")
    time_range: TimeRange | None = Field(None, description=TIME_RANGE_DESCRIPTION)
    nodes: Nodes = Field(default_factory=list)
    edges: Edges = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)


class CanvasUpdate(StrictModel):
    """Only the fields sent change; the graph and the time window are checked as they end up."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "time_preset": "custom",
                    "time_range": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
                }
            ]
        }
    )

    name: DisplayName | None = None
    time_preset: TimePreset | None = None
    time_range: TimeRange | None = Field(None, description=TIME_RANGE_DESCRIPTION)
    nodes: Nodes | None = None
    edges: Edges | None = None
    tags: Tags | None = None

    _present = field_validator("name", "time_preset", "nodes", "edges", "tags")(refuse_null)


class CanvasOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "8a0c2e4f-6b8d-4a0c-b2e4-f6a8c0e2f4a6",
                    **CANVAS_EXAMPLE,
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-11-05T14:40:00Z",
                    "updated_at": "2026-11-21T11:05:32Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    time_preset: TimePreset
    time_range: TimeRange | None
    nodes: list[Node]
    edges: list[Edge]
    tags: list[str]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
