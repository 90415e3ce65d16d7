"""Requests and responses of the api-keys resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from loupe.models.common import DisplayName, ResourceListQuery, StrictModel
from loupe.models.identity import RoleName

# Personal keys belong to the member who created them and are revoked when that member is removed;
# service keys belong to the organization (a backend's integration) and outlive whoever created them.
ApiKeyKind = Literal["personal", "service"]
KIND_DESCRIPTION = (
    "`personal` (the default): the creator's, revoked when they leave the organization;"
    " `service`: the organization's, kept when its creator leaves (admins only)"
)

# An example for the OpenAPI document, never issued.
API_KEY_EXAMPLE = "lk_7Hq2mZ9xR4vT1bN8cK3wP6yJ5dF0gL2sA9eU4iO7tY1"


class ApiKeyCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Warehouse sync", "role": "editor", "kind": "service"}]}
    )

    name: DisplayName
    role: RoleName = Field(description="At most the creator's own role")
    kind: ApiKeyKind = Field("personal", description=KIND_DESCRIPTION)


class ApiKeyListQuery(ResourceListQuery):
    kind: ApiKeyKind | None = Field(None, description="Only personal or only service keys")


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3e5a7c9e-1b3d-4f7a-9c1e-3a5c7e9a1c3e",
                    "name": "Nightly export",
                    "role": "viewer",
                    "kind": "personal",
                    "prefix": "lk_7Hq2mZ9",
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_by_api_key_id": None,
                    "created_at": "2026-11-10T22:00:00Z",
                    "last_used_at": "2026-11-26T02:00:04Z",
                    "revoked_at": None,
                    "claims": {"tenant": "acme"},
                }
            ]
        }
    )

    id: UUID
    name: str
    role: RoleName
    kind: ApiKeyKind = Field(description=KIND_DESCRIPTION)
    prefix: str = Field(description="The key's first characters, to recognize it; never the key")
    created_by: UUID | None = Field(
        description="The member who created the key; null when it was created with an API key"
    )
    created_by_api_key_id: UUID | None = Field(description="The API key it was created with, if any")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    claims: dict[str, Any] = Field(
        description="Values the row policies naming this key bind (admins set them)"
    )


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3e5a7c9e-1b3d-4f7a-9c1e-3a5c7e9a1c3e",
                    "name": "Nightly export",
                    "role": "viewer",
                    "kind": "personal",
                    "prefix": "lk_7Hq2mZ9",
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_by_api_key_id": None,
                    "created_at": "2026-11-10T22:00:00Z",
                    "last_used_at": None,
                    "revoked_at": None,
                    "claims": {},
                    "key": API_KEY_EXAMPLE,
                }
            ]
        }
    )

    key: str = Field(description="Shown once: only its digest is stored")
