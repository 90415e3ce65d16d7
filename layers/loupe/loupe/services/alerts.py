"""Alert rules of schedules: checked when saved, evaluated after each scheduled run, and notified once
per firing through the alerts topic, the rule's webhook and its destinations.

A rule fires when it becomes true and resolves when it is false again (re-armed); `changed` fires on
every run whose value differs from the previous run's; `run_failed` fires when a run fails and resolves
at the next success. A muted rule's firings are kept and notified nowhere. Firings are written in the
run's own transaction and delivered after it commits (an outbox): the scheduler's tick retries what is
not yet delivered.
"""

from __future__ import annotations

import functools
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit

from loupe import db, next_tick
from loupe.config import get_settings
from loupe.errors import FieldIssue, InvalidInput
from loupe.models.alerts import AlertFiringOut, AlertRuleIn, AlertRuleOut
from loupe.observability import logger, metrics
from loupe.repositories import alerts as alerts_repository
from loupe.repositories.destinations import DESTINATIONS
from loupe.security.connection_policy import ConnectionPolicyError
from loupe.security.webhooks import WebhookFailed, check_webhook_url, parse_webhook_url, post_json
from loupe.services import destinations
from loupe.services.resources import require_references

# A firing whose notifications keep failing is given up after this many attempts (one per tick).
MAX_DELIVERY_ATTEMPTS = 5
MAX_VALUE_CHARACTERS = 1000
ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Observation:
    """What a successful run shows its rules: column names, the first row (as JSON values, the way
    the results API shows them) and the row count."""

    columns: list[str]
    first_row: list[Any] | None
    row_count: int


def checked_rules(organization_id: UUID, rules: list[AlertRuleIn]) -> list[dict[str, Any]]:
    """The rules as stored: each with an id (a new one unless given), webhook URLs checked against the
    network policy, destinations the organization's. Raises InvalidInput naming the rule."""
    stored: list[dict[str, Any]] = []
    seen: set[UUID] = set()
    require_references(
        DESTINATIONS,
        organization_id,
        [
            (f"alert_rules[{index}].destination_ids[{position}]", destination_id)
            for index, rule in enumerate(rules)
            for position, destination_id in enumerate(rule.destination_ids or [])
        ],
    )
    for index, rule in enumerate(rules):
        field = f"alert_rules[{index}]"
        if rule.id is not None and rule.id in seen:
            raise InvalidInput(issues=[FieldIssue(f"{field}.id", "repeats another rule's id")])
        if rule.webhook_url is not None:
            try:
                check_webhook_url(rule.webhook_url)
            except ConnectionPolicyError as error:
                raise InvalidInput(issues=[FieldIssue(f"{field}.webhook_url", str(error))]) from None
        rule_id = rule.id or uuid.uuid4()
        seen.add(rule_id)
        stored.append({**rule.model_dump(mode="json"), "id": str(rule_id)})
    return stored


def kept_state(
    previous_rules: list[dict[str, Any]], rules: list[dict[str, Any]], state: dict[str, Any]
) -> dict[str, Any]:
    """The state of the rules sent again unchanged (same id, same definition, whatever their muting); a
    new or changed rule starts armed."""
    previous = {rule["id"]: _unmuted(rule) for rule in previous_rules}
    return {
        rule["id"]: state[rule["id"]]
        for rule in rules
        if rule["id"] in state and previous.get(rule["id"]) == _unmuted(rule)
    }


def _unmuted(rule: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in rule.items() if name != "muted_until"}


def rules_out(rules: list[dict[str, Any]], state: dict[str, Any]) -> list[AlertRuleOut]:
    shown = []
    for rule in rules:
        current = state.get(rule["id"], {})
        url = rule.get("webhook_url")
        shown.append(
            AlertRuleOut(
                **{
                    name: value
                    for name, value in rule.items()
                    if name not in ("webhook_url", "destination_ids")
                },
                destination_ids=rule.get("destination_ids") or [],
                webhook=_display_webhook(url) if url else None,
                triggered=current.get("triggered", False),
                last_value=current.get("value"),
                last_evaluated_at=current.get("evaluated_at"),
                last_error=current.get("error"),
            )
        )
    return shown


def _display_webhook(url: str) -> str:
    try:
        return parse_webhook_url(url).display()
    except ConnectionPolicyError:
        # Saved where the policy allowed it, shown where it no longer does: still only its shape.
        return "(refused by the current network policy)"


def firing_out(row: dict[str, Any]) -> AlertFiringOut:
    return AlertFiringOut(
        id=row["id"],
        rule_id=row["rule_id"],
        run_id=row["run_id"],
        rule=row["rule"],
        kind=row["kind"],
        muted=row["muted"],
        value=row["value"],
        sns=row["sns_status"],
        webhook=row["webhook_status"],
        destinations=row["destinations"],
        delivery_attempts=row["delivery_attempts"],
        delivery_error=row["delivery_error"],
        delivered_at=row["delivered_at"],
        fired_at=row["created_at"],
    )


def observed_value(rule: dict[str, Any], observation: Observation) -> tuple[Any, str | None]:
    """The rule's value in the run, or why there is none."""
    if rule["source"] == "row_count":
        return observation.row_count, None
    if rule["column"] not in observation.columns:
        return None, f"the result has no column named {rule['column']!r}"
    if observation.first_row is None:
        return None, "the result has no rows"
    return observation.first_row[observation.columns.index(rule["column"])], None


def _number(value: Any) -> Decimal | None:
    """A finite number from a JSON number or the text of one (PostgreSQL numerics arrive as text)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _equal(value: Any, threshold: Any) -> bool:
    if isinstance(threshold, int | float) and not isinstance(threshold, bool):
        number = _number(value)
        return number is not None and number == _number(threshold)
    return type(value) is type(threshold) and bool(value == threshold)


def compare(operator_name: str, value: Any, threshold: Any) -> bool:
    """`value operator threshold`: numbers (or numeric text) against a number, text against text; a
    value that cannot be compared makes an ordering false."""
    if operator_name == "==":
        return _equal(value, threshold)
    if operator_name == "!=":
        return not _equal(value, threshold)
    ordering = ORDERINGS[operator_name]
    if isinstance(threshold, str):
        return isinstance(value, str) and ordering(value, threshold)
    number, limit = _number(value), _number(threshold)
    return number is not None and limit is not None and ordering(number, limit)


def _bounded(value: Any) -> Any:
    """A value as kept and notified: at most MAX_VALUE_CHARACTERS of JSON (SNS takes 256 KB, and a
    cell can hold far more); a longer one is kept as the start of its JSON text."""
    encoded = json.dumps(value)
    if len(encoded) <= MAX_VALUE_CHARACTERS:
        return value
    return encoded[:MAX_VALUE_CHARACTERS] + "…"


def _muted(rule: dict[str, Any], now: datetime) -> bool:
    until = rule.get("muted_until")
    if until is None:
        return False
    moment = datetime.fromisoformat(until)
    # Saved with its offset (the model asks for one); a time without one is read as UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) > now


def _event(
    schedule: dict[str, Any], run_id: UUID, rule: dict[str, Any], kind: str, value: Any, now: datetime
) -> dict[str, Any]:
    """A firing or a resolution of the rule, as recorded."""
    return {
        "id": uuid.uuid4(),
        "organization_id": schedule["organization_id"],
        "schedule_id": schedule["id"],
        "run_id": run_id,
        "rule_id": UUID(rule["id"]),
        "rule": {name: value for name, value in rule.items() if name not in ("id", "webhook_url")},
        "kind": kind,
        "muted": kind == "fired" and _muted(rule, now),
        "value": value,
        "webhook_url": rule.get("webhook_url"),
        "destination_ids": rule.get("destination_ids") or [],
        "created_at": now,
    }


def _record(schedule: dict[str, Any], state: dict[str, Any], events: list[dict[str, Any]]) -> list[UUID]:
    alerts_repository.save_state(schedule["id"], state)
    alerts_repository.insert_firings(events)
    fired = [event for event in events if event["kind"] == "fired"]
    if fired:
        metrics.add_metric(name="AlertsFired", unit=MetricUnit.Count, value=len(fired))
    if any(not event["muted"] for event in events):
        # Delivered by the caller at once; should that fail, the scheduler's next tick tries again.
        db.after_commit(next_tick.poke)
    return [event["id"] for event in fired if not event["muted"]]


def evaluate(schedule_id: UUID, run_id: UUID, observation: Observation) -> list[UUID]:
    """Evaluate the schedule's rules on a successful run, in the caller's transaction; the ids of the
    firings it recorded that are to be notified, to deliver once that transaction commits."""
    schedule = alerts_repository.rules_for_evaluation(schedule_id)
    if schedule is None or not schedule["alert_rules"]:
        return []
    now = datetime.now(UTC)
    previous_state: dict[str, Any] = schedule["alert_state"]
    state: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    for rule in schedule["alert_rules"]:
        previous = previous_state.get(rule["id"], {})
        if rule["source"] == "run_failed":
            # A success resolves a failure.
            state[rule["id"]] = {
                **previous,
                "triggered": False,
                "evaluated_at": now.isoformat(),
                "error": None,
            }
            if previous.get("triggered"):
                events.append(_event(schedule, run_id, rule, "resolved", None, now))
            continue
        value, error = observed_value(rule, observation)
        if error is not None:
            # No value says nothing about the condition: the rule stays as it was (no re-arming).
            state[rule["id"]] = {**previous, "evaluated_at": now.isoformat(), "error": error}
            continue
        value = _bounded(value)
        if rule["operator"] == "changed":
            fires = "value" in previous and previous["value"] != value
            holds = fires
        else:
            holds = compare(rule["operator"], value, rule["threshold"])
            fires = holds and not previous.get("triggered", False)
        state[rule["id"]] = {
            "triggered": holds,
            "value": value,
            "evaluated_at": now.isoformat(),
            "error": None,
        }
        if fires:
            events.append(_event(schedule, run_id, rule, "fired", value, now))
        elif previous.get("triggered") and not holds and rule["operator"] != "changed":
            events.append(_event(schedule, run_id, rule, "resolved", value, now))
    return _record(schedule, state, events)


def evaluate_failure(schedule_id: UUID, run_id: UUID, error: str) -> list[UUID]:
    """A run of the schedule failed: its `run_failed` rules fire (once, until a run succeeds), in the
    caller's transaction; the ids of the firings to notify."""
    schedule = alerts_repository.rules_for_evaluation(schedule_id)
    if schedule is None or all(rule["source"] != "run_failed" for rule in schedule["alert_rules"]):
        return []
    now = datetime.now(UTC)
    state: dict[str, Any] = dict(schedule["alert_state"])
    events: list[dict[str, Any]] = []
    for rule in schedule["alert_rules"]:
        if rule["source"] != "run_failed":
            continue
        previous = state.get(rule["id"], {})
        value = _bounded(error)
        state[rule["id"]] = {
            "triggered": True,
            "value": value,
            "evaluated_at": now.isoformat(),
            "error": None,
        }
        if not previous.get("triggered"):
            events.append(_event(schedule, run_id, rule, "fired", value, now))
    return _record(schedule, state, events)


def undelivered() -> bool:
    """Whether any firing still has notifications to try."""
    return alerts_repository.undelivered(MAX_DELIVERY_ATTEMPTS)


def deliver_pending(firing_ids: list[UUID] | None = None, deadline: datetime | None = None) -> int:
    """Make one attempt at the notifications of each firing not yet delivered (only `firing_ids` if
    given), one firing per transaction: its row stays locked while it is sent, so no other sender sends
    it too. Returns the number of firings attempted."""
    handled: list[UUID] = []
    while deadline is None or datetime.now(UTC) < deadline:
        with db.transaction():
            firing = alerts_repository.next_undelivered(MAX_DELIVERY_ATTEMPTS, firing_ids, handled)
            if firing is None:
                break
            _deliver(firing)
        handled.append(firing["id"])
    return len(handled)


def _deliver(firing: dict[str, Any]) -> None:
    payload = json.dumps(
        {
            "type": "loupe.alert",
            "firing_id": str(firing["id"]),
            "organization_id": str(firing["organization_id"]),
            "schedule_id": str(firing["schedule_id"]),
            "schedule_name": firing["schedule_name"],
            "run_id": str(firing["run_id"]) if firing["run_id"] else None,
            "rule_id": str(firing["rule_id"]),
            "rule": firing["rule"],
            "value": firing["value"],
            "fired_at": firing["created_at"].isoformat(),
        }
    )
    errors: list[str] = []
    sns_status = firing["sns_status"]
    if sns_status == "pending" or sns_status == "failed":
        sns_status, sns_error = _publish(firing, payload)
        if sns_error:
            errors.append(f"sns: {sns_error}")
    webhook_status = firing["webhook_status"]
    if webhook_status in ("pending", "failed"):
        try:
            post_json(firing["webhook_url"], payload.encode(), get_settings().webhook_timeout_seconds)
            webhook_status = "sent"
        except WebhookFailed as error:
            webhook_status = "failed"
            errors.append(f"webhook: {error}")
    statuses = _to_destinations(firing, json.loads(payload), errors)
    done = not errors or firing["delivery_attempts"] + 1 >= MAX_DELIVERY_ATTEMPTS
    alerts_repository.record_delivery(
        firing["id"],
        sns_status,
        webhook_status,
        statuses,
        "; ".join(errors)[:1000] or None,
        datetime.now(UTC) if not errors else None,
    )
    details = {"firing_id": str(firing["id"]), "schedule_id": str(firing["schedule_id"])}
    if errors:
        logger.warning("alert delivery failed", extra={**details, "errors": errors, "given_up": done})
        metrics.add_metric(name="AlertDeliveryFailures", unit=MetricUnit.Count, value=1)
    else:
        logger.info("alert delivered", extra=details)


def _to_destinations(firing: dict[str, Any], payload: dict[str, Any], errors: list[str]) -> dict[str, str]:
    """Deliver the firing to each of its destinations not yet sent; their statuses after this attempt,
    each written as soon as it is known (a statement between calls, so the transaction is never idle for
    long)."""
    name = firing["rule"].get("name") or "an alert rule"

    def message_for(destination: Mapping[str, Any]) -> destinations.Message:
        return destinations.Message(
            kind="alert",
            subject=f"Loupe alert: {name} on {firing['schedule_name']}",
            text=f"{name} fired on the schedule {firing['schedule_name']!r}:"
            f" the value is {json.dumps(firing['value'])}.",
            data=payload,
            # The same on every attempt at this destination, so that its receiver can refuse a replay.
            id=uuid.uuid5(firing["id"], str(destination["id"])),
            created_at=firing["created_at"],
        )

    statuses, failed = destinations.deliver_each(
        firing["organization_id"],
        firing["destinations"],
        message_for,
        lambda known: alerts_repository.save_destinations(firing["id"], known),
    )
    errors.extend(failed)
    return statuses


def _publish(firing: dict[str, Any], payload: str) -> tuple[str, str | None]:
    topic_arn = get_settings().alerts_topic_arn
    if topic_arn is None:
        return "skipped", None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sns_client().publish(
            TopicArn=topic_arn,
            Subject="Loupe alert",
            Message=payload,
            # Subscribers can filter by organization or schedule.
            MessageAttributes={
                "organization_id": {"DataType": "String", "StringValue": str(firing["organization_id"])},
                "schedule_id": {"DataType": "String", "StringValue": str(firing["schedule_id"])},
            },
        )
    except (BotoCoreError, ClientError) as error:
        return "failed", type(error).__name__
    return "sent", None


@functools.cache
def sns_client() -> Any:
    """Created on first use (boto3 costs cold-start time); AWS_ENDPOINT_URL points it at moto locally."""
    import boto3

    return boto3.client("sns")
