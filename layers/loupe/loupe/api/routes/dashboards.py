"""Routes of the dashboards function: tiles on a 12-column grid (editors write, every role reads)."""

from uuid import UUID

from loupe.api.auth import Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.models.dashboards import DashboardCreate, DashboardUpdate
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
)


@router.post(
    "/dashboards/<dashboard_id>/refresh",
    errors=(404, 501),
    tags=TAGS,
    summary="Run the query of every tile (501 not_implemented until runs exist)",
)
def refresh_dashboard(dashboard_id: UUID, caller: Caller) -> None:
    dashboards.refresh(caller, dashboard_id)
