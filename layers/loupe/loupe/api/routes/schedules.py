"""Routes of the schedules function: saved queries on a cron (editors write, every role reads)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.models.alerts import AlertFiringListQuery, AlertFiringOut
from loupe.models.common import Page
from loupe.models.runs import ScheduleRunListQuery, ScheduleRunOut
from loupe.models.schedules import ScheduleCreate, ScheduleListQuery, ScheduleUpdate
from loupe.services.schedules import schedules

router = LoupeRouter()
TAGS = ["schedules"]

crud_routes(
    router,
    collection_path="/schedules",
    service=schedules,
    create_model=ScheduleCreate,
    update_model=ScheduleUpdate,
    list_query=ScheduleListQuery,
    tag="schedules",
    names=("Schedule", "Schedules"),
)


@router.get(
    "/schedules/<schedule_id>/runs",
    operation_id="listScheduleRuns",
    errors=(404,),
    tags=TAGS,
    summary="List the runs a schedule started",
)
def list_schedule_runs(
    schedule_id: UUID, caller: Caller, query: Annotated[ScheduleRunListQuery, Query()]
) -> Page[ScheduleRunOut]:
    return schedules.runs(caller, schedule_id, query)


@router.get(
    "/schedules/<schedule_id>/alerts",
    operation_id="listScheduleAlerts",
    errors=(404,),
    tags=TAGS,
    summary="List the firings of a schedule's alert rules",
)
def list_schedule_alerts(
    schedule_id: UUID, caller: Caller, query: Annotated[AlertFiringListQuery, Query()]
) -> Page[AlertFiringOut]:
    return schedules.alert_firings(caller, schedule_id, query)
