"""Requests and responses of the subscriptions resource: a dashboard, visualization or query delivered on a
cron as pictures and files to destinations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loupe.models.common import DisplayName, ListQuery, ResourceListQuery, StrictModel, refuse_null
from loupe.models.organizations import TimeZoneName
from loupe.models.queries import ParameterName, ParameterValue
from loupe.models.schedules import Cron

SubscribedType = Literal["dashboard", "visualization", "query"]
ReportFormat = Literal["png", "pdf", "csv", "xlsx"]
MAX_SUBSCRIPTION_DESTINATIONS = 10
Formats = Annotated[
    list[ReportFormat],
    Field(
        min_length=1,
        max_length=4,
        description="`png` and `pdf` draw the dashboard or visualization (a query's result as a table);"
        " `csv` and `xlsx` attach each tile's rows",
    ),
]
DestinationIds = Annotated[list[UUID], Field(min_length=1, max_length=MAX_SUBSCRIPTION_DESTINATIONS)]
Filters = Annotated[
    dict[ParameterName, ParameterValue],
    Field(
        max_length=50, description="Filter values (a query's parameters); those left out take their default"
    ),
]


def _distinct(items: list[str] | list[UUID] | None) -> list[str] | list[UUID] | None:
    if items is not None and len(set(items)) != len(items):
        raise ValueError("each may be named once")
    return items


class SubscribedResource(StrictModel):
    type: SubscribedType
    id: UUID


class SubscriptionCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Sales every Monday",
                    "resource": {"type": "dashboard", "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"},
                    "cron": "0 8 * * 1",
                    "timezone": "Europe/Berlin",
                    "filters": {"region": ["emea"]},
                    "formats": ["png", "csv"],
                    "destination_ids": ["7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3b"],
                }
            ]
        }
    )

    name: DisplayName
    resource: SubscribedResource
    cron: Cron
    timezone: TimeZoneName = Field("UTC", description="IANA name; the cron's times are wall times there")
    filters: Filters = Field(default_factory=dict)
    formats: Formats
    destination_ids: DestinationIds
    enabled: bool = True

    _unique = field_validator("formats", "destination_ids")(_distinct)


class SubscriptionUpdate(StrictModel):
    """Only the fields sent change; the resource is fixed at create."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"cron": "0 9 * * 1", "formats": ["pdf"]}]})

    name: DisplayName | None = None
    cron: Cron | None = None
    timezone: TimeZoneName | None = None
    filters: Filters | None = None
    formats: Formats | None = None
    destination_ids: DestinationIds | None = None
    enabled: bool | None = None

    _present = field_validator(
        "name", "cron", "timezone", "filters", "formats", "destination_ids", "enabled"
    )(refuse_null)
    _unique = field_validator("formats", "destination_ids")(_distinct)


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "2c4e6a8c-0e2a-4c6e-8a0c-2e4a6c8e0a2c",
                    "name": "Sales every Monday",
                    "owner_id": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "resource": {"type": "dashboard", "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"},
                    "cron": "0 8 * * 1",
                    "timezone": "Europe/Berlin",
                    "filters": {"region": ["emea"]},
                    "formats": ["png", "csv"],
                    "destination_ids": ["7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3b"],
                    "enabled": True,
                    "next_run_at": "2026-12-07T07:00:00Z",
                    "last_status": "delivered",
                    "last_error": None,
                    "last_delivered_at": "2026-11-30T07:00:41Z",
                    "created_at": "2026-11-02T09:31:10Z",
                    "updated_at": "2026-11-02T09:31:10Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    owner_id: UUID = Field(
        description="Whom the report runs as: their role and row policies decide what it shows"
    )
    resource: SubscribedResource
    cron: str
    timezone: str
    filters: dict[str, ParameterValue]
    formats: list[ReportFormat]
    destination_ids: list[UUID]
    enabled: bool
    next_run_at: datetime | None
    last_status: Literal["delivered", "failed"] | None = Field(
        description="How its latest finished delivery ended; `failed` once every retry was spent"
    )
    last_error: str | None
    last_delivered_at: datetime | None
    share_id: UUID | None = Field(
        None,
        description="The share link its chat messages (Slack destinations) carry, listed and revoked with"
        " the resource's shares; a revoked one is replaced at the next delivery",
    )
    created_at: datetime
    updated_at: datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3d5f7b9d-1f3b-4d5f-8b9d-1f3b5d7f9b1d",
                    "status": "delivered",
                    "run_ids": ["1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d"],
                    "destinations": {"7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3b": "sent"},
                    "attempts": 1,
                    "error": None,
                    "created_at": "2026-11-30T07:00:00Z",
                    "finished_at": "2026-11-30T07:00:41Z",
                }
            ]
        }
    )

    id: UUID
    status: Literal["pending", "delivered", "failed"]
    run_ids: list[UUID] = Field(description="The runs the report was drawn from")
    destinations: dict[str, Literal["pending", "sent", "failed", "gone"]] = Field(
        description="Each destination's status, saved once known: one sent to is not sent to again"
    )
    attempts: int = Field(description="Attempts at drawing and sending, each counted as it begins; at most 5")
    error: str | None = Field(description="Why the last attempt failed, or that it stopped before it ended")
    created_at: datetime = Field(description="When it fired: the report's ranges are resolved at this time")
    finished_at: datetime | None


class SubscriptionListQuery(ResourceListQuery):
    resource_id: UUID | None = Field(None, description="Only subscriptions of this resource")


class DeliveryListQuery(ListQuery):
    status: Literal["pending", "delivered", "failed"] | None = None
