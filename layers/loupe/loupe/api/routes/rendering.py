"""Routes of the render function: a visualization as SVG, PNG or Vega-Lite, a dashboard as a PNG or PDF page.

PNG and PDF leave as base64 that API Gateway turns back into bytes for a client whose Accept header names
that type first (the template's BinaryMediaTypes); any other client would get the base64 text, so the
route refuses it with a 406 instead.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller, Guest, guest_token
from loupe.api.context import current_request
from loupe.api.errors import NotAcceptable
from loupe.api.guest_cors import GUEST_SECURITY, guest_preflight
from loupe.api.resolver import LoupeRouter
from loupe.models.identity import Principal
from loupe.models.rendering import DashboardRenderQuery, DashboardRenderRequest, VisualizationRenderQuery
from loupe.services import rendering
from loupe.services.rendering import BINARY_TYPES, Picture

router = LoupeRouter()
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

SPEC_EXAMPLE = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "title": {"text": "Revenue by region", "anchor": "start"},
    "width": 800,
    "height": 450,
    "autosize": {"type": "fit", "contains": "padding"},
    "background": "white",
    "data": {"values": [{"x": "emea", "series": "revenue", "value": 1234.5, "axis": "left"}]},
    "mark": {"type": "bar", "tooltip": True},
    "encoding": {
        "x": {"field": "x", "type": "nominal", "title": "region", "sort": None},
        "y": {"field": "value", "type": "quantitative", "title": "revenue"},
    },
}
BINARY_SCHEMA = {"type": "string", "format": "binary"}
VISUALIZATION_PICTURES = {
    200: {
        "description": "The chart: an SVG document, a PNG (send `Accept: image/png`), or its Vega-Lite"
        " specification with the data inline. `Loupe-Run-Id` names the run it was drawn from.",
        "content": {
            "image/svg+xml": {"schema": {"type": "string"}},
            "image/png": {"schema": BINARY_SCHEMA},
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A Vega-Lite v5 specification",
                    "additionalProperties": True,
                    "examples": [SPEC_EXAMPLE],
                }
            },
        },
    }
}
DASHBOARD_PICTURES = {
    200: {
        "description": "The dashboard as one page: a PNG (send `Accept: image/png`) or a PDF (`Accept:"
        " application/pdf`)",
        "content": {"image/png": {"schema": BINARY_SCHEMA}, "application/pdf": {"schema": BINARY_SCHEMA}},
    }
}


def require_accepted(content_type: str, require_shown: Callable[[], None]) -> None:
    """A binary body reaches the client as bytes only when the first type it accepts is that type. What
    is not there is a 404 first, whatever the Accept header."""
    if content_type not in BINARY_TYPES:
        return
    accepted = current_request().headers.get("accept", "")
    first = accepted.split(",", 1)[0].split(";", 1)[0].strip().lower()
    if first != content_type:
        require_shown()
        raise NotAcceptable(
            f"Send `Accept: {content_type}`: API Gateway hands a binary body only to a client whose Accept"
            " header names its type first"
        )


def picture_response(picture: Picture, name: str, extension: str) -> Response[Any]:
    headers = {"Content-Disposition": f'inline; filename="{SAFE_NAME.sub("-", name)[:100]}.{extension}"'}
    if picture.run_id is not None:
        headers["Loupe-Run-Id"] = str(picture.run_id)
    if isinstance(picture.body, bytes):
        # Base64 text flagged as such, which is what API Gateway decodes: given bytes, Powertools' response
        # validation would first try to read them as UTF-8.
        response = Response(
            status_code=200,
            content_type=picture.content_type,
            body=base64.b64encode(picture.body).decode("ascii"),
            headers=headers,
        )
        response.base64_encoded = True
        return response
    return Response(status_code=200, content_type=picture.content_type, body=picture.body, headers=headers)


@router.get(
    "/visualizations/<visualization_id>/render",
    operation_id="renderVisualization",
    errors=(404, 406, 409, 410),
    success_headers=("Content-Disposition", "Loupe-Run-Id"),
    tags=["visualizations"],
    summary="Draw a visualization as SVG, PNG or Vega-Lite",
    description="Drawn from `run_id`, or from the newest stored result of its query with the parameters'"
    " defaults (409 when there is none: no run is started). Large results are aggregated or sampled by the"
    " rule in docs/charts.md, which the chart's subtitle names when it applies.",
    responses=VISUALIZATION_PICTURES,
)
def render_visualization(
    visualization_id: UUID, caller: Caller, query: Annotated[VisualizationRenderQuery, Query()]
) -> Response[Any]:
    require_accepted(
        rendering.CONTENT_TYPES[query.format],
        lambda: rendering.require_visualization(caller, visualization_id),
    )
    picture = rendering.render_visualization(caller, visualization_id, query)
    extension = "json" if query.format == "vega-lite" else query.format
    return picture_response(picture, f"visualization-{visualization_id}", extension)


@router.get(
    "/dashboards/<dashboard_id>/render",
    operation_id="renderDashboard",
    errors=(404, 406),
    success_headers=("Content-Disposition",),
    tags=["dashboards"],
    summary="Draw a dashboard as one PNG or PDF page, with its filters' defaults",
    description="Each tile is drawn from the newest stored result the dashboard's data call would show;"
    " a tile without one says so (rendering starts no run: refresh the dashboard first).",
    responses=DASHBOARD_PICTURES,
)
def render_dashboard(
    dashboard_id: UUID, caller: Caller, query: Annotated[DashboardRenderQuery, Query()]
) -> Response[Any]:
    require_accepted(
        rendering.CONTENT_TYPES[query.format], lambda: rendering.require_dashboard(caller, dashboard_id)
    )
    request = DashboardRenderRequest(format=query.format, width=query.width, scale=query.scale)
    picture = rendering.render_dashboard(caller, dashboard_id, request)
    return picture_response(picture, f"dashboard-{dashboard_id}", query.format)


@router.post(
    "/dashboards/<dashboard_id>/render",
    operation_id="renderDashboardWithFilters",
    errors=(404, 406),
    success_headers=("Content-Disposition",),
    tags=["dashboards"],
    summary="Draw a dashboard as one PNG or PDF page, with these filter values",
    description="As GET, with the filters' values in the body (those left out take their default).",
    responses=DASHBOARD_PICTURES,
)
def render_dashboard_with_filters(
    dashboard_id: UUID, body: DashboardRenderRequest, caller: Caller
) -> Response[Any]:
    require_accepted(
        rendering.CONTENT_TYPES[body.format], lambda: rendering.require_dashboard(caller, dashboard_id)
    )
    picture = rendering.render_dashboard(caller, dashboard_id, body)
    return picture_response(picture, f"dashboard-{dashboard_id}", body.format)


def _render_for_guest(guest: Principal, request: DashboardRenderRequest) -> Response[Any]:
    require_accepted(rendering.CONTENT_TYPES[request.format], lambda: None)
    token = guest_token()
    picture = rendering.render_for_guest(guest, token, request)
    return picture_response(picture, f"{token['resource_type']}-{token['resource_id']}", request.format)


@router.get(
    "/embed/render",
    operation_id="renderEmbedded",
    security=GUEST_SECURITY,
    errors=(404, 406, 429, 503),
    success_headers=("Content-Disposition",),
    tags=["embedding"],
    summary="Draw the guest's resource as one PNG or PDF page, with its locked values and the filters'"
    " defaults (guests)",
    description="As GET /dashboards/{id}/render, for the dashboard, visualization or query result an embed"
    " token or share link shows: each tile from the newest stored result its data call would show (a"
    " tile without one says so; no run is started).",
    responses=DASHBOARD_PICTURES,
)
def render_embedded(guest: Guest, query: Annotated[DashboardRenderQuery, Query()]) -> Response[Any]:
    request = DashboardRenderRequest(format=query.format, width=query.width, scale=query.scale)
    return _render_for_guest(guest, request)


@router.post(
    "/embed/render",
    operation_id="renderEmbeddedWithFilters",
    security=GUEST_SECURITY,
    errors=(404, 406, 429, 503),
    success_headers=("Content-Disposition",),
    tags=["embedding"],
    summary="Draw the guest's resource as one PNG or PDF page, with values for its editable filters (guests)",
    description="As GET, with values for the filters the token lets the guest change (422 naming any other).",
    responses=DASHBOARD_PICTURES,
)
def render_embedded_with_filters(body: DashboardRenderRequest, guest: Guest) -> Response[Any]:
    return _render_for_guest(guest, body)


@router.route("/embed/render", method="OPTIONS", include_in_schema=False)
def preflight() -> Response[None]:
    return guest_preflight()
