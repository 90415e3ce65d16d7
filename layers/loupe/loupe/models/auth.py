"""Requests and responses of the auth resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from loupe.models.common import DisplayName, StrictModel
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
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


# Examples for the OpenAPI document; the tokens have the real shapes but were never issued.
REFRESH_TOKEN_EXAMPLE = "lrt_Vq7nR2xK9mB4tW8cJ1yH6dL3fP0sZ5gA2eU9iO4kT7"  # noqa: S105
ACCESS_TOKEN_EXAMPLE = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI1ZjFjMmU4YSIsImV4cCI6MTc5NTY4MDAwMH0.mX1w3pQ8rT5vY2zA7cF4hJ9kL0nB6dG3"  # noqa: S105
)
USER_EXAMPLE: JsonDict = {
    "id": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
    "email": "ada@acme.example",
    "name": "Ada Lovelace",
    "role": "admin",
    "organization_id": "0b6f3c52-8d1e-4a7b-9c2f-5e4d3a2b1c0d",
}


class RegisterRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@acme.example",
                    "password": "correct horse battery staple",
                    "name": "Ada Lovelace",
                    "organization_name": "Acme Retail",
                }
            ]
        }
    )

    email: Email
    password: NewPassword
    name: DisplayName
    organization_name: DisplayName


class LoginRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "ada@acme.example", "password": "correct horse battery staple"}]
        }
    )

    email: Email
    # Any length up to the maximum: a short wrong password is a wrong password, not a 422.
    password: Annotated[str, Field(min_length=1, max_length=128, json_schema_extra={"format": "password"})]


class PasswordChangeRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current_password": "correct horse battery staple",
                    "new_password": "tr0ub4dor and then some",
                }
            ]
        }
    )

    current_password: Annotated[
        str, Field(min_length=1, max_length=128, json_schema_extra={"format": "password"})
    ]
    new_password: NewPassword


class PasswordResetRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "ada@acme.example"}]})

    email: Email


class PasswordResetConfirm(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "lpr_3kT9wQ2mZ7xV1cB8nR4yH6jL0fD5sA9gE2uI7oP1",
                    "new_password": "a brand new passphrase",
                }
            ]
        }
    )

    token: OpaqueToken
    new_password: NewPassword


class RefreshRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": REFRESH_TOKEN_EXAMPLE}]})

    refresh_token: OpaqueToken


class LogoutRequest(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": REFRESH_TOKEN_EXAMPLE}]})

    refresh_token: OpaqueToken


class UserOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [USER_EXAMPLE]})

    id: UUID
    email: str
    name: str
    role: RoleName
    organization_id: UUID


class MembershipOut(BaseModel):
    organization_id: UUID
    organization_name: str
    role: RoleName


class MeOut(UserOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **USER_EXAMPLE,
                    "organization_name": "Acme Retail",
                    "memberships": [
                        {
                            "organization_id": USER_EXAMPLE["organization_id"],
                            "organization_name": "Acme Retail",
                            "role": USER_EXAMPLE["role"],
                        }
                    ],
                }
            ]
        }
    )

    organization_name: str
    memberships: list[MembershipOut] = Field(
        description="Every organization the account belongs to; POST /auth/switch-organization enters another"
    )


class SwitchOrganization(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"organization_id": "0b6f3c52-8d1e-4a7b-9c2f-5e4d3a2b1c0d"}]}
    )

    organization_id: UUID


class TokenPair(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user": USER_EXAMPLE,
                    "access_token": ACCESS_TOKEN_EXAMPLE,
                    "refresh_token": REFRESH_TOKEN_EXAMPLE,
                    "token_type": "Bearer",
                    "expires_in": 900,
                }
            ]
        }
    )

    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105  # a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class SessionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7c9e1b3d-5f7a-4d1e-b3a5-7e9a1c3e5a7c",
                    "created_at": "2026-11-20T08:12:03Z",
                    "last_used_at": "2026-11-26T07:45:10Z",
                    "expires_at": "2026-12-20T08:12:03Z",
                    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
                    "ip": "203.0.113.24",
                    "current": True,
                }
            ]
        }
    )

    id: UUID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool = Field(description="True for the session the request was made with")


class SessionList(BaseModel):
    items: list[SessionOut]
