"""Requests and responses of snippets: an organization's reusable SQL fragments, written into a query's
SQL as `{{> name }}`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from loupe.models.common import StrictModel, refuse_null
from loupe.models.queries import Description, ParameterName, Sql

SNIPPET_EXAMPLE: JsonDict = {
    "name": "paid_orders",
    "description": "Orders that were paid, whatever their channel.",
    "sql": "SELECT * FROM orders WHERE status = 'paid'",
}


def _no_snippets_inside(sql: str) -> str:
    if "{{>" in sql:
        raise ValueError("a snippet may not include another snippet")
    return sql


class SnippetCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SNIPPET_EXAMPLE]})

    name: ParameterName = Field(description="An identifier, written into a query's SQL as {{> name }}")
    description: Description = ""
    sql: Sql = Field(description="The fragment; it may use a query's {{ parameters }}, not other snippets")

    _flat = field_validator("sql")(_no_snippets_inside)


class SnippetUpdate(StrictModel):
    """Only the fields sent change; the name stays (queries write it)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sql": "SELECT * FROM orders WHERE status IN ('paid', 'refunded')"}]}
    )

    description: Description | None = None
    sql: Sql | None = None

    _present = field_validator("description", "sql")(refuse_null)
    _flat = field_validator("sql")(_no_snippets_inside)


class SnippetOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "4b3a2918-0f1e-4d2c-9b8a-7f6e5d4c3b2a",
                    **SNIPPET_EXAMPLE,
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-11-02T09:14:27Z",
                    "updated_at": "2026-11-18T16:03:51Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    description: str
    sql: str
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
