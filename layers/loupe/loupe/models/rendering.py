"""Requests of the render routes: a visualization as SVG, PNG or its Vega-Lite specification, a dashboard
as one PNG or PDF page."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from loupe.models.dashboards import DashboardFilterValues

VisualizationFormat = Literal["svg", "png", "vega-lite"]
DashboardFormat = Literal["png", "pdf"]
# A picture of at most this many pixels (4,000 x 4,000): its PNG stays within the response limit for
# charts, and drawing it within the function's memory.
MAX_PIXELS = 16_000_000

Scale = Annotated[
    float,
    Field(
        ge=0.5,
        le=4.0,
        description="Pixels per unit of width and height in a PNG (2 for a sharp picture on a dense screen)",
    ),
]


class VisualizationRenderQuery(BaseModel):
    """GET /visualizations/{id}/render: what to draw it from, in what format and at what size."""

    model_config = ConfigDict(extra="forbid")

    format: VisualizationFormat = Field(
        "svg",
        description="`png` needs `Accept: image/png` (API Gateway hands a binary body only to a client that"
        " asks for it); `vega-lite` is the specification a front end can draw itself",
    )
    run_id: UUID | None = Field(
        None,
        description="A succeeded run of the visualization's query; by default the newest stored result of the"
        " query with its parameters' defaults, under the caller's row policies",
    )
    width: int = Field(800, ge=100, le=4000, description="Pixels, padding, title and legend included")
    height: int = Field(450, ge=100, le=4000, description="Pixels, padding, title and legend included")
    scale: Scale = 1.0


class DashboardRenderQuery(BaseModel):
    """GET /dashboards/{id}/render: the dashboard with its filters' defaults, as one page."""

    model_config = ConfigDict(extra="forbid")

    format: DashboardFormat = Field(
        "png", description="Send the matching Accept header: `image/png` or `application/pdf`"
    )
    width: int = Field(
        1200, ge=600, le=4000, description="The page's width in pixels; its height follows the grid"
    )
    scale: Scale = 1.0


class DashboardRenderRequest(DashboardFilterValues):
    """POST /dashboards/{id}/render: the page drawn with these filter values (the others take their
    default)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"filters": {"region": ["emea"]}, "format": "pdf", "width": 1200}]}
    )

    format: DashboardFormat = "png"
    width: int = Field(1200, ge=600, le=4000)
    scale: Scale = 1.0
