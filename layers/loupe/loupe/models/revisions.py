"""Responses of a resource's history: its revisions (number, author, time, full definition), a diff
between two, and the query strings that page and compare them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

RevisedType = Literal["query", "visualization", "dashboard", "canvas"]

REVISION_EXAMPLE: dict[str, Any] = {
    "number": 3,
    "author": {"kind": "user", "id": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60"},
    "created_at": "2026-11-18T16:03:51Z",
    "restored_from": None,
}


class RevisionAuthor(BaseModel):
    kind: Literal["user", "api_key"]
    id: UUID


class RevisionSummary(BaseModel):
    """A revision as listed: who made it and when."""

    model_config = ConfigDict(json_schema_extra={"examples": [REVISION_EXAMPLE]})

    number: int = Field(ge=1, description="From 1, one more on each change")
    author: RevisionAuthor | None = Field(
        description="The member or API key that made the change; null when it is gone, or for a resource's"
        " state from before history began"
    )
    created_at: datetime
    restored_from: int | None = Field(description="The revision this one restored, if it is a restore")


class FieldChange(BaseModel):
    path: str = Field(description="A JSON pointer into the definition, like /tiles/0/w")
    before: Any = Field(description="The value in the revision `diff_to` names (null: absent)")
    after: Any = Field(description="The value in this revision (null: absent)")


class RevisionOut(RevisionSummary):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **REVISION_EXAMPLE,
                    "definition": {"name": "Monthly revenue", "sql": "SELECT 1", "tags": []},
                    "changes": [{"path": "/name", "before": "Revenue", "after": "Monthly revenue"}],
                }
            ]
        }
    )

    definition: dict[str, Any] = Field(
        description="The resource as the API showed it then, without its id, times and author"
    )
    changes: list[FieldChange] | None = Field(
        None, description="With ?diff_to=: each field that differs from that revision; otherwise null"
    )


class RevisionListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class RevisionReadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    diff_to: int | None = Field(None, ge=1, le=2_147_483_647, description="Compare with this revision")
