"""Requests and responses of the canvases resource: query, visualization and note nodes joined by edges,
over a shared time window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator, model_validator

from loupe.models.auth import DisplayName, StrictModel
from loupe.models.queries import Tags, refuse_null

MAX_NODES = 500
MAX_EDGES = 2000

TimePreset = Literal["last_1h", "last_24h", "last_7d", "last_30d", "last_90d", "custom"]
NodeType = Literal["query", "visualization", "note"]
ElementId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]


class TimeRange(StrictModel):
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


class CanvasCreate(StrictModel):
    name: DisplayName
    time_preset: TimePreset
    time_range: TimeRange | None = Field(None, description=TIME_RANGE_DESCRIPTION)
    nodes: Nodes = Field(default_factory=list)
    edges: Edges = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)


class CanvasUpdate(StrictModel):
    """Only the fields sent change; the graph and the time window are checked as they end up."""

    name: DisplayName | None = None
    time_preset: TimePreset | None = None
    time_range: TimeRange | None = Field(None, description=TIME_RANGE_DESCRIPTION)
    nodes: Nodes | None = None
    edges: Edges | None = None
    tags: Tags | None = None

    _present = field_validator("name", "time_preset", "nodes", "edges", "tags")(refuse_null)


class CanvasOut(BaseModel):
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
