"""Requests and responses of the auth resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from loupe.models.identity import RoleName


def _normalized_email(value: str) -> str:
    """Syntax-check with email-validator (no DNS), then lower-case: emails are case-insensitive here."""
    # Imported on first use: it costs cold-start time that most requests never need.
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None
    return value.lower()


Email = Annotated[
    str,
    Field(min_length=3, max_length=254, json_schema_extra={"format": "email"}),
    AfterValidator(_normalized_email),
]
NewPassword = Annotated[str, Field(min_length=8, max_length=128, json_schema_extra={"format": "password"})]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


class RegisterRequest(StrictModel):
    email: Email
    password: NewPassword
    name: DisplayName
    organization_name: DisplayName


class LoginRequest(StrictModel):
    email: Email
    # Any length up to the maximum: a short wrong password is a wrong password, not a 422.
    password: Annotated[str, Field(min_length=1, max_length=128, json_schema_extra={"format": "password"})]


class RefreshRequest(StrictModel):
    refresh_token: OpaqueToken


class LogoutRequest(StrictModel):
    refresh_token: OpaqueToken


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: RoleName
    organization_id: UUID


class MeOut(UserOut):
    organization_name: str


class TokenPair(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105  # a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class SessionOut(BaseModel):
    id: UUID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool = Field(description="True for the session the request was made with")


class SessionList(BaseModel):
    items: list[SessionOut]
