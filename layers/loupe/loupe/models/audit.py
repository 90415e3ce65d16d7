"""Responses and filters of the audit-events resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, IPvAnyAddress

from loupe.models.common import ListQuery

ACTION_PATTERN = r"^[a-z_]{1,50}(\.[a-z_]{1,50}){0,3}$"


class AuditEventOut(BaseModel):
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
