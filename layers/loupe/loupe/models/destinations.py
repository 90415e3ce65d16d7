"""Requests and responses of the destinations resource: where reports and alerts are delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loupe.models.auth import Email
from loupe.models.common import DisplayName, ResourceListQuery, StrictModel, refuse_null

DestinationType = Literal["email", "slack", "webhook", "s3"]
MAX_RECIPIENTS = 50

Recipients = Annotated[
    list[Email],
    Field(
        min_length=1,
        max_length=MAX_RECIPIENTS,
        description="Members' addresses, or addresses the organization's `delivery_allowed_recipients` allow",
    ),
]
DestinationUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    Field(
        description="https (http only where private hosts are allowed); its host must pass the datasources'"
        " network policy, when saved and at each delivery; redirects are not followed. Write-only: the"
        " API shows its scheme and host.",
        examples=["https://hooks.slack.com/services/T000/B000/XXXX"],
    ),
]


def _no_dot_segments(prefix: str) -> str:
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise ValueError("a prefix has no `.` or `..` segments")
    return prefix


DeliveryPrefix = Annotated[
    str,
    StringConstraints(
        min_length=2, max_length=512, pattern=r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$"
    ),
    AfterValidator(_no_dot_segments),
    Field(
        description="Where in the deployment's delivery bucket messages go: a key prefix ending in `/`",
        examples=["reports/finance/"],
    ),
]
SIGNING_NOTE = (
    "The webhook's signing secret (HMAC-SHA256, docs/deliveries.md). Shown in the answer to a create and"
    " to a rotation only: keep it, it is not shown again"
)


def _unique(recipients: list[str] | None) -> list[str] | None:
    if recipients is not None and len(set(recipients)) != len(recipients):
        raise ValueError("each address may be named once")
    return recipients


class DestinationCreate(StrictModel):
    """`to` for an email destination, `url` for a Slack or generic webhook, `prefix` for an S3 one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Finance team", "type": "email", "to": ["finance@acme.example"]},
                {"name": "Ops channel", "type": "slack", "url": "https://hooks.slack.com/services/T0/B0/X"},
            ]
        }
    )

    name: DisplayName
    type: DestinationType
    to: Recipients | None = None
    url: DestinationUrl | None = None
    prefix: DeliveryPrefix | None = None

    _distinct = field_validator("to")(_unique)

    @model_validator(mode="after")
    def _fits_type(self) -> Self:
        takes = {"email": "to", "slack": "url", "webhook": "url", "s3": "prefix"}[self.type]
        given = [name for name in ("to", "url", "prefix") if getattr(self, name) is not None]
        if given != [takes]:
            raise ValueError(f"a {self.type} destination takes `{takes}`, and none of the others")
        return self


class DestinationUpdate(StrictModel):
    """Only the fields sent change; `to` fits an email destination, `url` a webhook."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"to": ["finance@acme.example", "cfo@acme.example"]}]}
    )

    name: DisplayName | None = None
    to: Recipients | None = None
    url: DestinationUrl | None = None
    prefix: DeliveryPrefix | None = None

    _present = field_validator("name", "to", "url", "prefix")(refuse_null)
    _distinct = field_validator("to")(_unique)


class DestinationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3b",
                    "name": "Ops channel",
                    "type": "webhook",
                    "to": [],
                    "url": "https://hooks.example.com",
                    "prefix": None,
                    "signing_secret": None,
                    "previous_secret_until": None,
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-12-04T09:00:00Z",
                    "updated_at": "2026-12-04T09:00:00Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    type: DestinationType
    to: list[str] = Field(description="An email destination's recipients")
    url: str | None = Field(description="A webhook's scheme and host; the full URL is write-only")
    prefix: str | None = Field(description="An S3 destination's key prefix in the delivery bucket")
    signing_secret: str | None = Field(None, description=SIGNING_NOTE)
    previous_secret_until: datetime | None = Field(
        description="After a rotation, deliveries are signed with the previous secret too until then"
    )
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class SecretRotated(BaseModel):
    """A webhook's new signing secret; the previous one signs beside it until `previous_secret_until`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signing_secret": "lwhs_example",
                    "previous_secret_until": "2026-12-05T09:00:00Z",
                }
            ]
        }
    )

    signing_secret: str = Field(description=SIGNING_NOTE)
    previous_secret_until: datetime


class DestinationTestOut(BaseModel):
    """What a test delivery did: sent, or why not."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"delivered": False, "error": "https://hooks.example.com answered HTTP 500"}]
        }
    )

    delivered: bool
    error: str | None = Field(description="Why it was not delivered; never repeats a webhook's path or query")


class DestinationListQuery(ResourceListQuery):
    type: DestinationType | None = Field(None, description="Only destinations of this type")
