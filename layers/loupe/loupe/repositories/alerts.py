"""Alert SQL: a schedule's rules and their state, locked while a run is evaluated, and the firings with
their delivery outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute, execute_many, fetch_one
from loupe.repositories.listing import Collection

ALERT_FIRINGS = Collection(
    table="alert_firings",
    columns=(
        "id",
        "schedule_id",
        "run_id",
        "rule_id",
        "rule",
        "kind",
        "muted",
        "value",
        "sns_status",
        "webhook_status",
        "destinations",
        "delivery_attempts",
        "delivery_error",
        "delivered_at",
        "created_at",
    ),
    sortable=frozenset({"created_at"}),
    default_sort="-created_at",
    searchable=(),
    tagged=False,
    filters=frozenset({"schedule_id", "rule_id", "kind"}),
)


def rules_for_evaluation(schedule_id: UUID) -> dict[str, Any] | None:
    """The schedule's rules and their state, locked: runs of one schedule finishing together are
    evaluated one after the other."""
    return fetch_one(
        "SELECT id, organization_id, name, alert_rules, alert_state FROM schedules WHERE id = %s FOR UPDATE",
        (schedule_id,),
    )


def save_state(schedule_id: UUID, state: dict[str, Any]) -> None:
    execute("UPDATE schedules SET alert_state = %s WHERE id = %s", (Jsonb(state), schedule_id))


def insert_firings(firings: list[dict[str, Any]]) -> None:
    """Firings and resolutions; a resolution, or a firing of a muted rule, is notified nowhere (it is
    delivered as it is written)."""
    rows = []
    for firing in firings:
        notified = firing["kind"] == "fired" and not firing["muted"]
        webhook = firing["webhook_url"] if notified else None
        destinations = dict.fromkeys(firing["destination_ids"], "pending") if notified else {}
        rows.append(
            (
                firing["id"],
                firing["organization_id"],
                firing["schedule_id"],
                firing["run_id"],
                firing["rule_id"],
                Jsonb(firing["rule"]),
                firing["kind"],
                firing["muted"],
                Jsonb(firing["value"]),
                webhook,
                "pending" if webhook else None,
                "pending" if notified else "skipped",
                Jsonb(destinations),
                None if notified else firing["created_at"],
                firing["created_at"],
            )
        )
    execute_many(
        "INSERT INTO alert_firings (id, organization_id, schedule_id, run_id, rule_id, rule, kind, muted,"
        " value, webhook_url, webhook_status, sns_status, destinations, delivered_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def next_undelivered(
    max_attempts: int, firing_ids: list[UUID] | None, handled: list[UUID]
) -> dict[str, Any] | None:
    """One firing with notifications still to send (of `firing_ids` if given, not in `handled`), locked;
    a firing another sender holds is skipped."""
    return fetch_one(
        "SELECT alert_firings.id, alert_firings.organization_id, alert_firings.schedule_id,"
        " alert_firings.run_id, alert_firings.rule_id, alert_firings.rule, alert_firings.value,"
        " alert_firings.webhook_url, alert_firings.sns_status, alert_firings.webhook_status,"
        " alert_firings.destinations,"
        " alert_firings.delivery_attempts, alert_firings.created_at, schedules.name AS schedule_name"
        " FROM alert_firings JOIN schedules ON schedules.id = alert_firings.schedule_id"
        " WHERE alert_firings.delivered_at IS NULL AND alert_firings.delivery_attempts < %s"
        " AND (%s::uuid[] IS NULL OR alert_firings.id = ANY(%s::uuid[]))"
        " AND alert_firings.id <> ALL(%s::uuid[])"
        " ORDER BY alert_firings.created_at LIMIT 1 FOR UPDATE OF alert_firings SKIP LOCKED",
        (max_attempts, firing_ids, firing_ids, handled),
    )


def undelivered(max_attempts: int) -> bool:
    row = fetch_one(
        "SELECT EXISTS (SELECT 1 FROM alert_firings WHERE delivered_at IS NULL AND delivery_attempts < %s)"
        " AS found",
        (max_attempts,),
    )
    return bool(row and row["found"])


def save_destinations(firing_id: UUID, destinations: dict[str, str]) -> None:
    execute("UPDATE alert_firings SET destinations = %s WHERE id = %s", (Jsonb(destinations), firing_id))


def record_delivery(
    firing_id: UUID,
    sns_status: str,
    webhook_status: str | None,
    destinations: dict[str, str],
    error: str | None,
    delivered_at: datetime | None,
) -> None:
    execute(
        "UPDATE alert_firings SET sns_status = %s, webhook_status = %s, destinations = %s,"
        " delivery_error = %s, delivered_at = %s, delivery_attempts = delivery_attempts + 1 WHERE id = %s",
        (sns_status, webhook_status, Jsonb(destinations), error, delivered_at, firing_id),
    )
