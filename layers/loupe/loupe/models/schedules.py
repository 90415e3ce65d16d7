"""Requests and responses of the schedules resource: a saved query on a cron, in a time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loupe.models.alerts import AlertRuleOut, AlertRules
from loupe.models.common import DisplayName, ResourceListQuery, StrictModel, Tags, refuse_null
from loupe.models.organizations import TimeZoneName
from loupe.models.queries import ParameterValue

Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Five fields: minute hour day-of-month month day-of-week, as wall time in `timezone`",
        examples=["0 7 * * mon-fri"],
    ),
]
ParameterValues = Annotated[
    dict[str, ParameterValue],
    Field(max_length=50, description="Values for parameters the query declares, by name"),
]


class ScheduleCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Every weekday at 07:00",
                    "query_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
                    "cron": "0 7 * * 1-5",
                    "timezone": "Europe/Berlin",
                    "parameters": {"start": "2026-01-01"},
                    "enabled": True,
                    "tags": ["finance"],
                    "alert_rules": [
                        {
                            "name": "Revenue dropped",
                            "source": "column",
                            "column": "revenue",
                            "operator": "<",
                            "threshold": 1000,
                            "webhook_url": "https://hooks.example.com/loupe/alerts",
                        }
                    ],
                }
            ]
        }
    )

    name: DisplayName
    query_id: UUID = Field(description="A query of the caller's organization")
    cron: Cron
    timezone: TimeZoneName = Field("UTC", description="IANA name; the cron's times are wall times there")
    parameters: ParameterValues = Field(default_factory=dict)
    enabled: bool = True
    tags: Tags = Field(default_factory=list)
    alert_rules: AlertRules = Field(default_factory=list)


class ScheduleUpdate(StrictModel):
    """Only the fields sent change; a new cron, time zone or enabled state moves next_run_at. Sent
    alert_rules replace the rules (webhook URLs are write-only: send them again)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"cron": "30 6 * * 1-5", "enabled": True}]})

    name: DisplayName | None = None
    query_id: UUID | None = None
    cron: Cron | None = None
    timezone: TimeZoneName | None = None
    parameters: ParameterValues | None = None
    enabled: bool | None = None
    tags: Tags | None = None
    alert_rules: AlertRules | None = None

    _present = field_validator(
        "name", "query_id", "cron", "timezone", "parameters", "enabled", "tags", "alert_rules"
    )(refuse_null)


class ScheduleOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6e8a0c2e-4f6b-4d8f-a0c2-e4f6a8b0c2d4",
                    "name": "Every weekday at 07:00",
                    "query_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
                    "cron": "0 7 * * 1-5",
                    "timezone": "Europe/Berlin",
                    "parameters": {"start": "2026-01-01"},
                    "enabled": True,
                    "tags": ["finance"],
                    "next_run_at": "2026-11-27T06:00:00Z",
                    "last_run_at": "2026-11-26T06:00:00Z",
                    "consecutive_failures": 0,
                    "disabled_reason": None,
                    "alert_rules": [
                        {
                            "id": "9a1c3e5f-7b9d-4f1b-8d3f-5a7c9e1b3d5f",
                            "name": "Revenue dropped",
                            "source": "column",
                            "column": "revenue",
                            "operator": "<",
                            "threshold": 1000,
                            "webhook": "https://hooks.example.com",
                            "triggered": False,
                            "last_value": "1520.00",
                            "last_evaluated_at": "2026-11-26T06:00:02Z",
                            "last_error": None,
                        }
                    ],
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-11-04T12:20:05Z",
                    "updated_at": "2026-11-04T12:20:05Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    query_id: UUID
    cron: str
    timezone: str
    parameters: dict[str, Any]
    enabled: bool
    tags: list[str]
    next_run_at: datetime | None = Field(description="UTC; null while the schedule is disabled")
    last_run_at: datetime | None
    consecutive_failures: int
    disabled_reason: str | None = Field(description="Why the scheduler disabled it, if it did")
    alert_rules: list[AlertRuleOut]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class ScheduleListQuery(ResourceListQuery):
    query_id: UUID | None = Field(None, description="Only schedules of this query")
    enabled: bool | None = Field(None, description="Only enabled (or only disabled) schedules")
