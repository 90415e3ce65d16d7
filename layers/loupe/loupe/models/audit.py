"""Responses and filters of the audit-events resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress

from loupe.models.common import ListQuery

ACTION_PATTERN = r"^[a-z_]{1,50}(\.[a-z_]{1,50}){0,3}$"


class AuditEventOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9e1b3d5f-7a9c-4f3a-85c7-9a1c3e5a7c9e",
                    "actor_id": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "action": "datasource.created",
                    "target_type": "datasource",
                    "target_id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
                    "ip": "203.0.113.24",
                    "created_at": "2026-11-01T08:00:00Z",
                    "metadata": {"name": "Shop replica", "type": "postgres"},
                }
            ]
        }
    )

    id: UUID
    actor_id: UUID | None
    action: str
    target_type: str | None
    target_id: UUID | None
    ip: IPvAnyAddress | None
    created_at: datetime
    metadata: dict[str, Any]


class AuditEventQuery(ListQuery):
    action: str | None = Field(None, pattern=ACTION_PATTERN, description="Exact action, e.g. auth.login")
    actor_id: UUID | None = None
