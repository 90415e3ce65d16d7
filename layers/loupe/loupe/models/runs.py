"""Requests and responses of runs: a query's execution, its status, and its stored result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from loupe.models.common import ListQuery, Page, StrictModel
from loupe.models.queries import ParameterValue, ScalarValue, Sql
from loupe.results.exports import InstantExportFormat
from loupe.results.page import ResultColumn as ResultColumn
from loupe.results.page import RunResults as RunResults

ParameterValues = dict[str, ParameterValue]
# A day: an older cached result is not worth the lookup.
MAX_AGE_SECONDS = 86_400
# A long poll answers within API Gateway's 29 s, with room for the request around the wait.
MAX_WAIT_SECONDS = 20
# A dashboard's runs at once (GET /runs?ids=...).
MAX_BATCH_IDS = 100
WAIT_DESCRIPTION = (
    f"Seconds (0-{MAX_WAIT_SECONDS}) to wait for a change before answering; an unfinished run's change is"
    " seen within half a second. The baseline is the version If-None-Match names, else the one when the"
    " request arrives. Finished runs do not change, so they answer at once."
)


class RunStatus(StrEnum):
    """Queued, then running, then one of four ends; a queued run may also end cancelled at once."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class RunOrigin(StrEnum):
    """What started a run: a person, a schedule, a dashboard load or refresh, a report, an embed or a
    share link."""

    INTERACTIVE = "interactive"
    SCHEDULE = "schedule"
    DASHBOARD = "dashboard"
    REFRESH = "refresh"
    SUBSCRIPTION = "subscription"
    EMBED = "embed"
    SHARE = "share"


class PrincipalKind(StrEnum):
    """Who a run ran for: a member, an API key, or (reserved) a guest of a shared link."""

    USER = "user"
    API_KEY = "api_key"
    GUEST = "guest"


class RunPrincipal(BaseModel):
    kind: PrincipalKind
    id: UUID


# Runs that still hold a place in the queue and count against the per-user limit.
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class RunError(BaseModel):
    code: str
    message: str


RUN_EXAMPLE: JsonDict = {
    "id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
    "query_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
    "datasource_id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
    "status": "succeeded",
    "error": None,
    "row_count": 48,
    "byte_size": 3120,
    "truncated": False,
    "created_at": "2026-11-26T06:00:00Z",
    "started_at": "2026-11-26T06:00:01Z",
    "finished_at": "2026-11-26T06:00:01.412Z",
    "duration_ms": 412,
    "created_by": None,
    "schedule_id": "2b4d6f8a-0c1e-4a3b-9d5f-7e9a1c3b5d7f",
    "parameters": {"start": "2026-11-01"},
    "query_revision": 3,
    "origin": "schedule",
    "principal": None,
    "notices": [],
    "sql": "SELECT region, sum(amount) FROM orders WHERE day >= {{ start }} GROUP BY region",
}


class ScheduleRunOut(BaseModel):
    """A run the schedule started (the fields of GET /runs/{id})."""

    model_config = ConfigDict(json_schema_extra={"examples": [RUN_EXAMPLE]})

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
    schedule_id: UUID | None = Field(description="The schedule that started it (origin `schedule`)")
    parameters: dict[str, ParameterValue] = Field(description="The values it ran with")
    query_revision: int | None = Field(
        description="The saved query's `revision` it ran; null for an editor's SQL and runs from before"
    )
    origin: RunOrigin = Field(description="What started it")
    principal: RunPrincipal | None = Field(
        description="Who it ran for: the user, or the API key that started it; null for a schedule whose"
        " creator is gone"
    )
    sql: str | None = Field(
        description="The SQL it ran, `{{ name }}` placeholders and all: a saved query's for every role, an"
        " editor's ad-hoc SQL for editors and admins only (null for viewers)"
    )
    notices: list[str] = Field(
        description="What the datasource reported beside the rows (PostgreSQL's notices and warnings, as"
        " `SEVERITY: message`): the first 20, each at most 500 characters"
    )
    results_expired: bool = Field(
        False, description="The run succeeded, but its stored result is gone (organization retention)"
    )


class ScheduleRunListQuery(ListQuery):
    q: str | None = Field(None, min_length=1, max_length=200, description="Text search over the run's SQL")
    status: RunStatus | None = Field(None, description="Only runs in this state")


class RunOut(ScheduleRunOut):
    """A run (GET /runs/{id}); a schedule's runs have the same shape."""


class QueryRunCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"parameters": {"start": "2026-01-01"}, "max_age_seconds": 300}]},
    )

    parameters: ParameterValues = Field(
        default_factory=dict, max_length=50, description="Values for the query's declared parameters"
    )
    max_age_seconds: int | None = Field(
        None,
        ge=1,
        le=MAX_AGE_SECONDS,
        description="Return a succeeded run of the same SQL and values at most this old instead of a new one",
    )


class AdhocRunCreate(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "datasource_id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
                    "sql": "SELECT id, label FROM widgets WHERE id > {{ minimum }}",
                    "parameters": {"minimum": 2},
                }
            ]
        },
    )

    datasource_id: UUID = Field(description="A datasource of the caller's organization")
    sql: Sql
    parameters: dict[str, ScalarValue | list[ScalarValue] | None] = Field(
        default_factory=dict,
        max_length=50,
        description="A value for each {{ name }} in the SQL; a list for `IN {{ name }}` (ranges are a saved"
        " query's)",
    )


class RunListQuery(ScheduleRunListQuery):
    query_id: UUID | None = Field(None, description="Only runs of this query")


# Filters that mean nothing beside a list of ids: the ids already name the runs, in their order.
FILTERS_BESIDE_IDS = ("q", "tag", "created_after", "created_before", "status", "query_id", "sort")


class RunsQuery(RunListQuery):
    """GET /runs: the organization's runs by filter, or many runs by id, at once or after a wait."""

    ids: list[UUID] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCH_IDS,
        description=f"These runs (at most {MAX_BATCH_IDS}), in this order, without other filters; ids that"
        " are not the organization's runs are listed in `missing`. `limit` defaults to their number.",
    )
    wait: int = Field(0, ge=0, le=MAX_WAIT_SECONDS, description=f"With `ids` only. {WAIT_DESCRIPTION}")

    @field_validator("ids")
    @classmethod
    def _ids_alone(cls, ids: list[UUID] | None, info: ValidationInfo) -> list[UUID] | None:
        beside = [name for name in FILTERS_BESIDE_IDS if info.data.get(name) is not None]
        if ids is not None and beside:
            raise ValueError(f"ids takes no other filter: {', '.join(beside)}")
        return list(dict.fromkeys(ids)) if ids is not None else None

    @field_validator("wait")
    @classmethod
    def _wait_on_ids(cls, wait: int, info: ValidationInfo) -> int:
        if wait and info.data.get("ids") is None:
            raise ValueError("wait needs ids: a long poll watches named runs")
        return wait

    @model_validator(mode="after")
    def _limit_of_ids(self) -> Self:
        if self.ids is not None and "limit" not in self.model_fields_set:
            self.limit = len(self.ids)
        return self


class RunWaitQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: int = Field(0, ge=0, le=MAX_WAIT_SECONDS, description=WAIT_DESCRIPTION)


class RunPage(Page[RunOut]):
    """A page of runs; asked for by id, it names the ids that are not the organization's runs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [RUN_EXAMPLE],
                    "total": 1,
                    "limit": 2,
                    "offset": 0,
                    "next_offset": None,
                    "truncated_by": None,
                    "missing": ["0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"],
                }
            ]
        }
    )

    missing: list[UUID] = Field(
        default_factory=list,
        description="Ids asked for (`ids`) that are no run of the organization: unknown, or another's",
    )


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0)
    limit: int = Field(1000, ge=1, le=10_000)


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: InstantExportFormat = Field(description="The file's format")


class RefreshQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_age_seconds: int | None = Field(
        None,
        ge=1,
        le=MAX_AGE_SECONDS,
        description="Reuse a succeeded run of the same query and values at most this old",
    )


class SkippedQueryOut(BaseModel):
    query_id: UUID
    reason: str


class RefreshOut(BaseModel):
    """The runs a dashboard refresh started (or reused), one per distinct query of its tiles."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "runs": [
                        {
                            "id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                            "query_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
                            "datasource_id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
                            "status": "queued",
                            "error": None,
                            "row_count": None,
                            "byte_size": None,
                            "truncated": False,
                            "created_at": "2026-11-26T06:00:00Z",
                            "started_at": None,
                            "finished_at": None,
                            "duration_ms": None,
                            "created_by": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
                            "schedule_id": None,
                            "parameters": {},
                            "query_revision": 1,
                            "origin": "refresh",
                            "notices": [],
                            "sql": "SELECT count(*) FROM orders",
                            "principal": {"kind": "user", "id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"},
                        }
                    ],
                    "skipped": [
                        {
                            "query_id": "0f1e2d3c-4b5a-4697-8877-665544332211",
                            "reason": "The parameters do not fit the query (region: required: the query"
                            " gives it no default)",
                        }
                    ],
                }
            ]
        }
    )

    runs: list[RunOut]
    skipped: list[SkippedQueryOut] = Field(
        default_factory=list, description="Queries left out: a required parameter has no default"
    )
