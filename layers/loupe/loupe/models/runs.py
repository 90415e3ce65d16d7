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
