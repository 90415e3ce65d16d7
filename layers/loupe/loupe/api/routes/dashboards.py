"""Routes of the dashboards function: tiles on a 12-column grid (editors write, every role reads)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.api.revisions import revision_routes
from loupe.api.shares import share_routes
from loupe.models.dashboards import (
    DashboardCreate,
    DashboardData,
    DashboardDataQuery,
    DashboardDataRequest,
    DashboardFilterValues,
    DashboardUpdate,
    FilterOptionsRequest,
)
from loupe.models.queries import ParameterOptionsPage
from loupe.models.runs import RefreshOut, RefreshQuery
from loupe.services.dashboards import dashboards

router = LoupeRouter()
TAGS = ["dashboards"]

# Lists carry each dashboard's tiles too (read in one query per page), as DashboardOut documents.
crud_routes(
    router,
    collection_path="/dashboards",
    service=dashboards,
    create_model=DashboardCreate,
    update_model=DashboardUpdate,
    tag="dashboards",
    names=("Dashboard", "Dashboards"),
    cascades=True,
)
revision_routes(
    router,
    collection_path="/dashboards",
    service=dashboards,
    update_model=DashboardUpdate,
    tag="dashboards",
    one="Dashboard",
)
share_routes(router, collection_path="/dashboards", resource_type="dashboard", one="Dashboard")


@router.post(
    "/dashboards/<dashboard_id>/refresh",
    operation_id="refreshDashboard",
    status_code=202,
    errors=(404, 429, 503),
    tags=TAGS,
    summary="Run the query of every tile",
    description="One run per distinct query and values of the dashboard's visualization tiles: the filters'"
    " values of the body (`filters`, as for POST /dashboards/{id}/data; without a body, their defaults)"
    " where a tile maps them, the queries' defaults elsewhere. With `max_age_seconds`, a young enough"
    " succeeded run is reused. A tile whose query still lacks a required value is skipped, with the reason.",
)
def refresh_dashboard(
    dashboard_id: UUID,
    caller: Caller,
    query: Annotated[RefreshQuery, Query()],
    body: DashboardFilterValues | None = None,
) -> Response[RefreshOut]:
    filters = body.filters if body is not None else {}
    refreshed = dashboards.refresh(caller, dashboard_id, filters, query.max_age_seconds)
    return Response(status_code=202, content_type="application/json", body=refreshed)


DATA_DESCRIPTION = (
    "Per tile: its visualization (with `warnings`), the run that serves it (a succeeded run of the same query"
    " and values at most `max_age_seconds` old, else a new one, started with origin `dashboard`), and once"
    " that run has succeeded the first page of its rows (at most 1,000). The whole answer keeps to 4 MiB:"
    " a tile whose rows no longer fit says `results_deferred` (read them with GET /runs/{id}/results)."
    " Wait for `pending_run_ids` with one GET /runs?ids=...&wait=20, then ask again: the runs are reused."
    " Filters left out take their default; a filter's value is checked as a query parameter's is (422 on"
    " `body.filters.<name>`); a tile whose query still lacks a value says why in `skipped`."
)


@router.get(
    "/dashboards/<dashboard_id>/data",
    operation_id="getDashboardData",
    errors=(404, 429, 503),
    tags=TAGS,
    summary="Draw a dashboard in one call, with its filters' defaults",
    description=DATA_DESCRIPTION,
)
def get_dashboard_data(
    dashboard_id: UUID, caller: Caller, query: Annotated[DashboardDataQuery, Query()]
) -> DashboardData:
    return dashboards.data(caller, dashboard_id, DashboardDataRequest(max_age_seconds=query.max_age_seconds))


@router.post(
    "/dashboards/<dashboard_id>/data",
    operation_id="drawDashboard",
    errors=(404, 429, 503),
    tags=TAGS,
    summary="Draw a dashboard in one call, with filter values",
    description=DATA_DESCRIPTION,
)
def draw_dashboard(dashboard_id: UUID, body: DashboardDataRequest, caller: Caller) -> DashboardData:
    return dashboards.data(caller, dashboard_id, body)


@router.post(
    "/dashboards/<dashboard_id>/filters/<name>/options",
    operation_id="listDashboardFilterOptions",
    errors=(404, 409, 429, 503),
    tags=TAGS,
    summary="List a filter's options, given the other filters' values",
    description="The values (and labels) of the filter's options query's result, those whose label or value"
    " holds `q`. A cascading filter's options query takes other filters' values as parameters (its"
    " `options_query.parameters`): the result is the run with those values, reused when at most the"
    " dashboard's `max_age_seconds` old, else started, and then the answer is `pending` (no items yet):"
    " wait for `run_id` and ask again. 409 `options_unavailable` when that run failed or lacks a column.",
)
def list_dashboard_filter_options(
    dashboard_id: UUID, name: str, body: FilterOptionsRequest, caller: Caller
) -> ParameterOptionsPage:
    return dashboards.filter_options(caller, dashboard_id, name, body)
