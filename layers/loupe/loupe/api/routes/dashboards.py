"""Routes of the dashboards function: tiles on a 12-column grid (editors write, every role reads)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.models.dashboards import DashboardCreate, DashboardUpdate
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
)


@router.post(
    "/dashboards/<dashboard_id>/refresh",
    operation_id="refreshDashboard",
    status_code=202,
    errors=(404, 429, 503),
    tags=TAGS,
    summary="Run the query of every tile",
    description="One run per distinct query of the dashboard's visualization tiles, with the queries'"
    " default parameter values. With `max_age_seconds`, a young enough succeeded run is reused.",
)
def refresh_dashboard(
    dashboard_id: UUID, caller: Caller, query: Annotated[RefreshQuery, Query()]
) -> Response[RefreshOut]:
    refreshed = dashboards.refresh(caller, dashboard_id, query.max_age_seconds)
    return Response(status_code=202, content_type="application/json", body=refreshed)
