"""Requests and responses of embed tokens and share links: a guest's access to one dashboard, visualization
or query result, with values locked, filters it may change, claims for row policies, the origins its page
is served from and whether it may download rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from loupe.models.common import StrictModel
from loupe.models.dashboards import DashboardOut
from loupe.models.queries import ParameterName, ParameterValue
from loupe.models.row_policies import Claims
from loupe.results.exports import InstantExportFormat

# https://host or http://host:port, lower case, no path: what a browser sends as Origin.
ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
DEFAULT_LIFETIME_SECONDS = 600
MAX_LIFETIME_SECONDS = 86_400


def _origin(value: str) -> str:
    if not ORIGIN.fullmatch(value):
        raise ValueError("an origin is scheme://host[:port] in lower case, like https://app.example.com")
    return value


Origin = Annotated[str, Field(max_length=300), AfterValidator(_origin)]


GuestResourceType = Literal["dashboard", "visualization", "query"]


class EmbeddedResource(StrictModel):
    type: GuestResourceType = Field(
        description="What the guest sees: a dashboard, a visualization (its chart), or a query's result (a"
        " table)"
    )
    id: UUID


class GuestAccess(StrictModel):
    """What a guest (of an embed token or a share link) may do with the resource. A visualization's or a
    query's filters are its query's parameters."""

    locked: dict[ParameterName, ParameterValue] = Field(
        default_factory=dict, max_length=50, description="Filter values the guest cannot change"
    )
    editable_filters: list[ParameterName] = Field(
        default_factory=list, max_length=50, description="Filters the guest may set; the others keep defaults"
    )
    downloads: bool = Field(
        False, description="The guest may download the rows it is shown (POST /embed/downloads)"
    )
    claims: Claims = Field(default_factory=dict)
    allowed_origins: list[Origin] = Field(
        default_factory=list, max_length=20, description="Pages allowed to call with the token (CORS)"
    )


class EmbedTokenCreate(GuestAccess):
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
    lifetime_seconds: int = Field(DEFAULT_LIFETIME_SECONDS, ge=60, le=MAX_LIFETIME_SECONDS)


class ShareCreate(GuestAccess):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"editable_filters": ["period"], "expires_at": "2027-03-01T00:00:00Z"}]
        }
    )

    expires_at: AwareDatetime | None = Field(
        None, description="When the link stops working; null: until revoked"
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


SHARE_EXAMPLE: JsonDict = {
    "id": "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
    "resource": {"type": "dashboard", "id": "7b6a5f4e-3d2c-4b1a-9f8e-7d6c5b4a3f2e"},
    "locked": {},
    "editable_filters": ["period"],
    "downloads": False,
    "allowed_origins": [],
    "claims": [],
    "expires_at": None,
    "revoked_at": None,
    "access_count": 42,
    "last_accessed_at": "2026-12-03T18:00:00Z",
    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
    "created_at": "2026-12-01T09:14:27Z",
}


class ShareOut(BaseModel):
    """A share link as listed: never its secret, which only its creation shows."""

    model_config = ConfigDict(json_schema_extra={"examples": [SHARE_EXAMPLE]})

    id: UUID
    resource: EmbeddedResource
    locked: dict[str, Any]
    editable_filters: list[str]
    downloads: bool
    allowed_origins: list[str]
    claims: list[str] = Field(description="The claims' names (their values are not shown again)")
    expires_at: datetime | None
    revoked_at: datetime | None
    access_count: int = Field(description="Guest requests made with the link (a count, nothing personal)")
    last_accessed_at: datetime | None
    created_by: UUID | None
    created_at: datetime


class ShareCreated(ShareOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**SHARE_EXAMPLE, "access_count": 0, "last_accessed_at": None, "token": "lsh_0123abcd"}
            ]
        }
    )

    token: str = Field(
        description="Shown once. Give it to a page in the URL fragment (#token=...), never in the path or"
        " query: the page sends it as Authorization: Bearer to the /embed/ routes"
    )


class ShareList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [SHARE_EXAMPLE]}]})

    items: list[ShareOut]


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

    resource_type: GuestResourceType
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


class GuestView(BaseModel):
    """What a guest's page draws: the resource as a dashboard (a visualization or a query's result is a
    dashboard of one tile whose filters are its query's parameters), which filters the guest may set, and
    whether it may download rows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "resource": {"type": "visualization", "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"},
                    "dashboard": {
                        "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                        "name": "Revenue by region",
                        "description": None,
                        "tags": [],
                        "tiles": [
                            {
                                "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                                "visualization_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                                "text": None,
                                "x": 0,
                                "y": 0,
                                "w": 12,
                                "h": 8,
                                "param_mappings": {"start": "start"},
                            }
                        ],
                        "filters": [
                            {
                                "name": "start",
                                "type": "date",
                                "default": "2026-01-01",
                                "options": None,
                                "options_query": None,
                                "multi": False,
                                "required": True,
                            }
                        ],
                        "max_age_seconds": 300,
                        "timezone": None,
                        "created_by": None,
                        "created_at": "2026-11-02T09:31:10Z",
                        "updated_at": "2026-11-02T09:31:10Z",
                    },
                    "locked": {},
                    "editable_filters": ["start"],
                    "downloads": True,
                }
            ]
        }
    )

    resource: EmbeddedResource
    dashboard: DashboardOut = Field(
        description="A dashboard as is; a visualization as one full-width tile showing it; a query's result"
        " as one tile with neither visualization nor text, drawn as a table of its rows"
    )
    locked: dict[str, Any] = Field(description="The filter values the guest cannot change")
    editable_filters: list[str]
    downloads: bool


class GuestDownloadRequest(StrictModel):
    """POST /embed/downloads: a tile's rows, as drawn with these filter values."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tile_id": "1a3c5e7a-9b1d-4f3a-8c5e-7a9b1d3f5a7c",
                    "filters": {"period": {"preset": "last_7d"}},
                    "format": "csv",
                }
            ]
        }
    )

    tile_id: UUID
    filters: dict[ParameterName, ParameterValue] = Field(default_factory=dict, max_length=50)
    format: InstantExportFormat = "csv"


class GuestDownload(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://results.s3.amazonaws.com/org/.../export.csv?X-Amz-Signature=...",
                    "run_id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                }
            ]
        }
    )

    url: str = Field(description="A short-lived signed URL of the file: the page navigates to it")
    run_id: UUID = Field(description="The run whose rows the file holds")
