"""Requests and responses of the api-keys resource."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from loupe.models.auth import DisplayName, StrictModel
from loupe.models.identity import RoleName


class ApiKeyCreate(StrictModel):
    name: DisplayName
    role: RoleName = Field(description="At most the creator's own role")


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    role: RoleName
    prefix: str = Field(description="The key's first characters, to recognize it; never the key")
    created_by: UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="Shown once: only its digest is stored")
