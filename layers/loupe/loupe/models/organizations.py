"""Requests and responses of the organizations resource: settings, members, invitations, usage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loupe.models.auth import DisplayName, Email, NewPassword, OpaqueToken, StrictModel
from loupe.models.identity import RoleName


def _iana_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"not an IANA time zone: {name!r}") from None
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_iana_timezone)]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
QueryTimeoutSeconds = Annotated[int, Field(ge=1, le=900)]
MaxRows = Annotated[int, Field(ge=1, le=10_000_000)]


class OrganizationSettings(BaseModel):
    """The settings every organization has; stored values override these defaults."""

    model_config = ConfigDict(extra="ignore")  # keys a newer version stored are not an error on read

    default_timezone: TimeZoneName = "UTC"
    result_retention_days: RetentionDays = 30
    query_timeout_seconds: QueryTimeoutSeconds = 300
    max_rows_per_run: MaxRows = 1_000_000


class SettingsPatch(StrictModel):
    """Settings to change; the ones left out keep their value."""

    default_timezone: TimeZoneName | None = None
    result_retention_days: RetentionDays | None = None
    query_timeout_seconds: QueryTimeoutSeconds | None = None
    max_rows_per_run: MaxRows | None = None


class OrganizationUpdate(StrictModel):
    name: DisplayName | None = None
    settings: SettingsPatch | None = None


class OrganizationOut(BaseModel):
    id: UUID
    name: str
    settings: OrganizationSettings
    created_at: datetime
    updated_at: datetime


class MemberOut(BaseModel):
    id: UUID = Field(description="The user's id")
    email: str
    name: str
    role: RoleName
    joined_at: datetime


class RoleChange(StrictModel):
    role: RoleName


class InvitationCreate(StrictModel):
    email: Email
    role: RoleName


class InvitationOut(BaseModel):
    id: UUID
    email: str
    role: RoleName
    invited_by: UUID | None
    expires_at: datetime
    created_at: datetime


class InvitationCreated(InvitationOut):
    token: str = Field(description="Shown once: only its digest is stored")


class AcceptInvitationRequest(StrictModel):
    token: OpaqueToken
    name: DisplayName
    password: NewPassword


class PageQuery(BaseModel):
    """Paging for the organization's own lists (members, invitations)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class UsageOut(BaseModel):
    queries: int = Field(description="Saved queries")
    runs_this_month: int = Field(description="Runs created since the start of the month (UTC)")
    stored_result_bytes: int = Field(description="Sum of the result sizes of the organization's runs")
