"""Requests and responses of embed tokens: a guest's signed access to one dashboard, with values locked,
filters it may change, claims for row policies and the origins its page is served from."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loupe.models.common import StrictModel
from loupe.models.queries import ParameterName, ParameterValue
from loupe.models.row_policies import Claims

# https://host or http://host:port, lower case, no path: what a browser sends as Origin.
ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
DEFAULT_LIFETIME_SECONDS = 600
MAX_LIFETIME_SECONDS = 86_400


def _origin(value: str) -> str:
    if not ORIGIN.fullmatch(value):
        raise ValueError("an origin is scheme://host[:port] in lower case, like https://app.example.com")
    return value


Origin = Annotated[str, Field(max_length=300), AfterValidator(_origin)]


class EmbeddedResource(StrictModel):
    type: Literal["dashboard"] = Field(description="What the token shows")
    id: UUID


class EmbedTokenCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resource": {"type": "dashboard", "id": "7b6a5f4e-3d2c-4b1a-9f8e-7d6c5b4a3f2e"},
                    "locked": {"customer": "acme"},
                    "editable_filters": ["period"],
                    "claims": {"tenant": "acme"},
                    "allowed_origins": ["https://app.example.com"],
                    "lifetime_seconds": 600,
                }
            ]
        }
    )

    resource: EmbeddedResource
    locked: dict[ParameterName, ParameterValue] = Field(
        default_factory=dict, max_length=50, description="Filter values the guest cannot change"
    )
    editable_filters: list[ParameterName] = Field(
        default_factory=list, max_length=50, description="Filters the guest may set; the others keep defaults"
    )
    claims: Claims = Field(default_factory=dict)
    allowed_origins: list[Origin] = Field(
        default_factory=list, max_length=20, description="Pages allowed to call with the token (CORS)"
    )
    lifetime_seconds: int = Field(DEFAULT_LIFETIME_SECONDS, ge=60, le=MAX_LIFETIME_SECONDS)


class EmbedTokenCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "eyJhbGciOiJIUzI1NiIsImtpZCI6Ii4uLiJ9.eyJqdGkiOiIuLi4ifQ.c2lnbmF0dXJl",
                    "jti": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                    "expires_at": "2026-12-04T10:10:00Z",
                }
            ]
        }
    )

    token: str = Field(description="Sent by the guest as Authorization: Bearer <token> to /embed/ routes")
    jti: UUID = Field(description="The token's id: DELETE /embed-tokens/{jti} revokes it")
    expires_at: datetime


class EmbedTokenRevocation(BaseModel):
    """DELETE /embed-tokens?resource_type=&resource_id=: every live token of a resource."""

    model_config = ConfigDict(extra="forbid")

    resource_type: Literal["dashboard"]
    resource_id: UUID


class EmbedTokensRevoked(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"revoked": 3}]})

    revoked: int = Field(description="How many live tokens were revoked")


class GuestFilterOptionsQuery(BaseModel):
    """GET /embed/filters/{name}/options: which options to list (other filters at their locked values or
    defaults)."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(None, min_length=1, max_length=200)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)
