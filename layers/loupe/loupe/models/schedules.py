"""Requests and responses of the schedules resource: a saved query on a cron, in a time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from loupe.models.auth import DisplayName, StrictModel
from loupe.models.common import ListQuery
from loupe.models.organizations import TimeZoneName
from loupe.models.queries import ParameterValue, Tags, refuse_null

Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Five fields: minute hour day-of-month month day-of-week, as wall time in `timezone`",
        examples=["0 7 * * mon-fri"],
    ),
]
ParameterValues = Annotated[
    dict[str, ParameterValue],
    Field(max_length=50, description="Values for parameters the query declares, by name"),
]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]


class ScheduleCreate(StrictModel):
    name: DisplayName
    query_id: UUID = Field(description="A query of the caller's organization")
    cron: Cron
    timezone: TimeZoneName = Field("UTC", description="IANA name; the cron's times are wall times there")
    parameters: ParameterValues = Field(default_factory=dict)
    enabled: bool = True
    tags: Tags = Field(default_factory=list)


class ScheduleUpdate(StrictModel):
    """Only the fields sent change; a new cron, time zone or enabled state moves next_run_at."""

    name: DisplayName | None = None
    query_id: UUID | None = None
    cron: Cron | None = None
    timezone: TimeZoneName | None = None
    parameters: ParameterValues | None = None
    enabled: bool | None = None
    tags: Tags | None = None

    _present = field_validator("name", "query_id", "cron", "timezone", "parameters", "enabled", "tags")(
        refuse_null
    )


class ScheduleOut(BaseModel):
    id: UUID
    name: str
    query_id: UUID
    cron: str
    timezone: str
    parameters: dict[str, Any]
    enabled: bool
    tags: list[str]
    next_run_at: datetime | None = Field(description="UTC; null while the schedule is disabled")
    last_run_at: datetime | None
    consecutive_failures: int
    disabled_reason: str | None = Field(description="Why the scheduler disabled it, if it did")
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class ScheduleListQuery(ListQuery):
    query_id: UUID | None = Field(None, description="Only schedules of this query")
    enabled: bool | None = Field(None, description="Only enabled (or only disabled) schedules")


class RunError(BaseModel):
    code: str
    message: str


class ScheduleRunOut(BaseModel):
    """A run the schedule started (the fields of GET /runs/{id})."""

    id: UUID
    query_id: UUID | None
    datasource_id: UUID
    status: RunStatus
    error: RunError | None
    row_count: int | None
    byte_size: int | None
    truncated: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    created_by: UUID | None


class ScheduleRunListQuery(ListQuery):
    q: str | None = Field(None, min_length=1, max_length=200, description="Text search over the run's SQL")
    status: RunStatus | None = Field(None, description="Only runs in this state")
