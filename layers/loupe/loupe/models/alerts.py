"""Alert rules on a schedule (a value of each successful run compared with a threshold, or the run
failing) and their history: firings and resolutions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from loupe.models.common import DisplayName, ListQuery, StrictModel

Operator = Literal[">", ">=", "<", "<=", "==", "!=", "changed"]
ORDERING_OPERATORS = frozenset({">", ">=", "<", "<="})
Threshold = (
    StrictBool
    | StrictInt
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[str, StringConstraints(max_length=200)]
    | None
)
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    Field(
        description="Also POST each firing here as JSON. https (http only where private hosts are allowed);"
        " its host must pass the datasources' network policy; redirects are not followed. Write-only.",
        examples=["https://hooks.example.com/loupe/alerts"],
    ),
]
MAX_RULES = 20
MAX_RULE_DESTINATIONS = 10
Source = Literal["column", "row_count", "run_failed"]


class AlertRuleIn(StrictModel):
    """`source` picks the value: a column of the first row, or the run's row count; `run_failed` fires
    when a run of the schedule fails, and takes no operator."""

    id: UUID | None = Field(
        None, description="Keep a rule's id when sending it again, and it keeps its state (armed or fired)"
    )
    name: DisplayName | None = None
    source: Source = "column"
    column: ColumnName | None = Field(None, description="Required when source is `column`")
    operator: Operator | None = Field(None, description="Required unless source is `run_failed`")
    threshold: Threshold = Field(
        None, description="Compared with the value; not given for `changed`, a number for `row_count`"
    )
    webhook_url: WebhookUrl | None = None
    destination_ids: Annotated[list[UUID] | None, Field(max_length=MAX_RULE_DESTINATIONS)] = Field(
        None, description="Destinations of the organization each firing is delivered to"
    )
    muted_until: AwareDatetime | None = Field(
        None,
        description="Until then a firing is kept in the history, marked `muted`, and notified nowhere;"
        " changing it keeps the rule's state",
    )

    @model_validator(mode="after")
    def _coherent(self) -> AlertRuleIn:
        if self.source == "column" and self.column is None:
            raise ValueError("a rule on a column names the column")
        if self.source != "column" and self.column is not None:
            raise ValueError(f"a rule on {self.source} names no column")
        if self.destination_ids and len(set(self.destination_ids)) != len(self.destination_ids):
            raise ValueError("each destination may be named once")
        if self.source == "run_failed":
            if self.operator is not None or "threshold" in self.model_fields_set:
                raise ValueError("a rule on the run failing takes no operator or threshold")
            return self
        if self.operator is None:
            raise ValueError(f"a rule on {self.source} needs an operator")
        if self.operator == "changed":
            if self.threshold is not None:
                raise ValueError("`changed` compares with the previous run and takes no threshold")
            return self
        if "threshold" not in self.model_fields_set:
            raise ValueError(f"`{self.operator}` needs a threshold")
        if self.operator in ORDERING_OPERATORS and (
            self.threshold is None or isinstance(self.threshold, bool)
        ):
            raise ValueError(f"`{self.operator}` compares with a number or a string, not {self.threshold!r}")
        numeric = isinstance(self.threshold, int | float) and not isinstance(self.threshold, bool)
        if self.source == "row_count" and not numeric:
            raise ValueError("the row count is compared with a number")
        return self


AlertRules = Annotated[
    list[AlertRuleIn],
    Field(max_length=MAX_RULES, description="Evaluated after each successful run of the schedule"),
]


class AlertRuleOut(BaseModel):
    id: UUID
    name: str | None
    source: Source
    column: str | None
    operator: Operator | None
    threshold: Any
    webhook: str | None = Field(description="The webhook's scheme and host; the full URL is write-only")
    destination_ids: list[UUID] = Field(default_factory=list)
    muted_until: datetime | None = None
    triggered: bool = Field(description="True from a firing until the rule is false again (re-armed)")
    last_value: Any = Field(None, description="The value seen by the last evaluation")
    last_evaluated_at: datetime | None = None
    last_error: str | None = Field(None, description="Why the last evaluation found no value, if it did not")


class AlertFiringOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b2d4f6a-8c0e-4a2c-9e4a-6c8e0a2c4e6a",
                    "rule_id": "9a1c3e5f-7b9d-4f1b-8d3f-5a7c9e1b3d5f",
                    "run_id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                    "rule": {
                        "name": "Revenue dropped",
                        "source": "column",
                        "column": "revenue",
                        "operator": "<",
                        "threshold": 1000,
                    },
                    "value": "812.40",
                    "kind": "fired",
                    "muted": False,
                    "sns": "sent",
                    "webhook": "failed",
                    "destinations": {"7c9e1a3b-5d7f-4b9d-8f1b-3d5f7b9d1f3b": "sent"},
                    "delivery_attempts": 5,
                    "delivery_error": "webhook: HTTP 500",
                    "delivered_at": None,
                    "fired_at": "2026-11-26T06:00:02Z",
                }
            ]
        }
    )

    id: UUID
    rule_id: UUID
    run_id: UUID | None = Field(description="Null once the run is deleted by retention")
    rule: dict[str, Any] = Field(description="The rule as it was when it fired (without its webhook URL)")
    kind: Literal["fired", "resolved"] = Field(
        description="`fired` when the rule became true (or a run failed), `resolved` when it is false again"
        " (resolutions are history only: nothing is notified)"
    )
    muted: bool = Field(description="Fired while the rule was muted: kept, notified nowhere")
    value: Any = Field(description="The value that made the rule true (or false again); a failed run's error")
    sns: Literal["pending", "sent", "failed", "skipped"] = Field(
        description="Publishing to the alerts topic; `skipped` when no topic is configured"
    )
    webhook: Literal["pending", "sent", "failed"] | None = Field(description="Null when the rule has none")
    destinations: dict[str, Literal["pending", "sent", "failed", "gone"]] = Field(
        description="Each destination's delivery, by destination id (`gone`: deleted before it was sent)"
    )
    delivery_attempts: int
    delivery_error: str | None
    delivered_at: datetime | None = Field(description="When every notification was done")
    fired_at: datetime


class AlertFiringListQuery(ListQuery):
    rule_id: UUID | None = Field(None, description="Only firings of this rule")
    kind: Literal["fired", "resolved"] | None = Field(None, description="Only firings, or only resolutions")
