"""Requests and responses of runs: a query's execution, its status, and its stored result."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from loupe.models.common import StrictModel
from loupe.models.queries import ParameterValue, Sql
from loupe.models.schedules import ScheduleRunListQuery, ScheduleRunOut
from loupe.results.exports import ExportFormat

ParameterValues = dict[str, ParameterValue]
# A day: an older cached result is not worth the lookup.
MAX_AGE_SECONDS = 86_400


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
    parameters: ParameterValues = Field(
        default_factory=dict, max_length=50, description="A value for each {{ name }} in the SQL"
    )


class RunListQuery(ScheduleRunListQuery):
    query_id: UUID | None = Field(None, description="Only runs of this query")


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(0, ge=0)
    limit: int = Field(1000, ge=1, le=10_000)


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = Field(description="The file's format")


class ResultColumn(BaseModel):
    name: str
    type: str


class RunResults(BaseModel):
    """One page of a succeeded run's rows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "columns": [{"name": "region", "type": "text"}, {"name": "revenue", "type": "numeric"}],
                    "rows": [["EMEA", "182340.50"], ["Americas", "251120.00"]],
                    "total_rows": 2,
                    "offset": 0,
                    "limit": 1000,
                }
            ]
        }
    )

    columns: list[ResultColumn]
    rows: list[list[Any]]
    total_rows: int
    offset: int
    limit: int


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
