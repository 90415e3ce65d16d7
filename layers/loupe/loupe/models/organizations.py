"""Requests and responses of the organizations resource: settings, members, invitations, usage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loupe.models.auth import Email, NewPassword, OpaqueToken
from loupe.models.common import DisplayName, StrictModel
from loupe.models.identity import RoleName


def _iana_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not an IANA time zone: {name!r}") from None
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_iana_timezone)]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
RevisionsKept = Annotated[int, Field(ge=1, le=10_000)]
QueryTimeoutSeconds = Annotated[int, Field(ge=1, le=900)]
MaxRows = Annotated[int, Field(ge=1, le=10_000_000)]
# The cost guard's threshold, in the datasource planner's own unit (see docs/api-notes.md).
MaxQueryCost = Annotated[float, Field(gt=0, le=1e15, allow_inf_nan=False)]

# An address (`finance@partner.example`) or a whole domain (`@partner.example`) outside the organization
# that its destinations may mail.
AllowedRecipient = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+|@[^@\s]+\.[^@\s]+)$",
        examples=["@partner.example"],
    ),
]
AllowedRecipients = Annotated[list[AllowedRecipient], Field(max_length=200)]

# An example for the OpenAPI document, never issued.
INVITATION_TOKEN_EXAMPLE = "linv_2Yw9sKq4TzL8mVb1NcR6hXe3PjU7aDf5GkH0oWi4Qs8"  # noqa: S105


class OrganizationSettings(BaseModel):
    """The settings every organization has; stored values override these defaults."""

    model_config = ConfigDict(extra="ignore")  # keys a newer version stored are not an error on read

    default_timezone: TimeZoneName = "UTC"
    # Stored results are deleted after this many days (the run stays, `results_expired`)...
    result_retention_days: RetentionDays = 30
    # ...and finished runs themselves, with any result left, after this many.
    run_retention_days: RetentionDays = 90
    query_timeout_seconds: QueryTimeoutSeconds = 300
    max_rows_per_run: MaxRows = 10_000_000
    # Off by default: runs whose EXPLAIN estimate is above it fail before they start (cost_too_high).
    max_query_cost: MaxQueryCost | None = None
    # Off by default: public share links of dashboards (POST /dashboards/{id}/shares) and their use.
    share_links_enabled: bool = False
    # A resource keeps at most this many revisions, none older than this many days; never less than
    # its newest.
    revision_retention_count: RevisionsKept = 100
    revision_retention_days: RetentionDays = 365
    # Destinations mail members; anyone else only at these addresses or domains (none by default).
    delivery_allowed_recipients: AllowedRecipients = Field(default_factory=list)


class SettingsPatch(StrictModel):
    """Settings to change; the ones left out keep their value."""

    default_timezone: TimeZoneName | None = None
    result_retention_days: RetentionDays | None = None
    run_retention_days: RetentionDays | None = None
    query_timeout_seconds: QueryTimeoutSeconds | None = None
    max_rows_per_run: MaxRows | None = None
    max_query_cost: MaxQueryCost | None = None
    share_links_enabled: bool | None = None
    revision_retention_count: RevisionsKept | None = None
    revision_retention_days: RetentionDays | None = None
    delivery_allowed_recipients: AllowedRecipients | None = None


class OrganizationUpdate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Retail GmbH",
                    "settings": {"default_timezone": "Europe/Berlin", "result_retention_days": 90},
                }
            ]
        }
    )

    name: DisplayName | None = None
    settings: SettingsPatch | None = None


class OrganizationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f3c52-8d1e-4a7b-9c2f-5e4d3a2b1c0d",
                    "name": "Acme Retail GmbH",
                    "settings": {
                        "default_timezone": "Europe/Berlin",
                        "result_retention_days": 90,
                        "run_retention_days": 365,
                        "query_timeout_seconds": 300,
                        "max_rows_per_run": 10000000,
                        "max_query_cost": None,
                        "share_links_enabled": False,
                    },
                    "created_at": "2026-10-30T17:22:09Z",
                    "updated_at": "2026-11-12T10:15:00Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    settings: OrganizationSettings
    created_at: datetime
    updated_at: datetime


class MemberOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "email": "ada@acme.example",
                    "name": "Ada Lovelace",
                    "role": "admin",
                    "claims": {"tenant": "acme"},
                    "joined_at": "2026-10-30T17:22:09Z",
                }
            ]
        }
    )

    id: UUID = Field(description="The user's id")
    email: str
    name: str
    role: RoleName
    claims: dict[str, Any] = Field(
        description="Values the row policies naming this member bind (admins set them)"
    )
    joined_at: datetime


class RoleChange(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "editor"}]})

    role: RoleName


class InvitationCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "grace@acme.example", "role": "editor"}]}
    )

    email: Email
    role: RoleName


class InvitationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5a7c9e1b-3d5f-4b9c-a1e3-5c7e9a1c3e5a",
                    "email": "grace@acme.example",
                    "role": "editor",
                    "invited_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "expires_at": "2026-12-03T09:00:00Z",
                    "created_at": "2026-11-26T09:00:00Z",
                }
            ]
        }
    )

    id: UUID
    email: str
    role: RoleName
    invited_by: UUID | None
    expires_at: datetime
    created_at: datetime


class InvitationCreated(InvitationOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5a7c9e1b-3d5f-4b9c-a1e3-5c7e9a1c3e5a",
                    "email": "grace@acme.example",
                    "role": "editor",
                    "invited_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "expires_at": "2026-12-03T09:00:00Z",
                    "created_at": "2026-11-26T09:00:00Z",
                    "token": INVITATION_TOKEN_EXAMPLE,
                }
            ]
        }
    )

    token: str = Field(description="Shown once: only its digest is stored")


class AcceptInvitationRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": INVITATION_TOKEN_EXAMPLE,
                    "name": "Grace Hopper",
                    "password": "correct horse battery staple",
                }
            ]
        }
    )

    token: OpaqueToken
    name: DisplayName | None = Field(
        None, description="The new account's name; not needed to join with an account"
    )
    password: NewPassword = Field(
        description="The new account's password, or the existing account's, to join another organization"
    )


class PageQuery(BaseModel):
    """Paging for the organization's own lists (members, invitations)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class UsageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"queries": 42, "runs_this_month": 1318, "stored_result_bytes": 73400320}]
        }
    )

    queries: int = Field(description="Saved queries")
    runs_this_month: int = Field(description="Runs created since the start of the month (UTC)")
    stored_result_bytes: int = Field(description="Sum of the result sizes of the organization's runs")
