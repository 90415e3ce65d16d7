"""The subscriptions table and its deliveries: due subscriptions taken by the scheduler, deliveries worked
through as an outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute, execute_many, fetch_all, fetch_one
from loupe.repositories.listing import Collection

SUBSCRIPTIONS = Collection(
    table="subscriptions",
    columns=(
        "id",
        "name",
        "owner_id",
        "resource_type",
        "resource_id",
        "cron",
        "timezone",
        "filters",
        "formats",
        "destination_ids",
        "enabled",
        "next_run_at",
        "last_status",
        "last_error",
        "last_delivered_at",
        "share_id",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "created_at", "updated_at", "next_run_at"}),
    writable=frozenset(
        {
            "name",
            "owner_id",
            "resource_type",
            "resource_id",
            "cron",
            "timezone",
            "filters",
            "formats",
            "destination_ids",
            "enabled",
            "next_run_at",
            "share_id",
            "share_secret_ciphertext",
            "created_by",
        }
    ),
    json_columns=frozenset({"filters", "formats", "destination_ids"}),
    default_sort="name",
    tagged=False,
    filters=frozenset({"resource_id"}),
)
DELIVERIES = Collection(
    table="subscription_deliveries",
    columns=(
        "id",
        "subscription_id",
        "status",
        "run_ids",
        "destinations",
        "attempts",
        "error",
        "created_at",
        "finished_at",
    ),
    sortable=frozenset({"created_at"}),
    default_sort="-created_at",
    searchable=(),
    tagged=False,
    filters=frozenset({"subscription_id", "status"}),
)


def fire_due(now: datetime, limit: int) -> list[dict[str, Any]]:
    """Due subscriptions, locked (one tick takes each): the caller advances them and writes their
    deliveries in the same transaction."""
    return fetch_all(
        "SELECT id, organization_id, cron, timezone, destination_ids FROM subscriptions"
        " WHERE enabled AND next_run_at <= %s ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    )


def showing(organization_id: UUID, resource_type: str, resource_ids: list[UUID]) -> list[dict[str, Any]]:
    """The id and name of the organization's subscriptions that deliver one of these resources."""
    return fetch_all(
        "SELECT id, name FROM subscriptions WHERE organization_id = %s AND resource_type = %s"
        " AND resource_id = ANY(%s) ORDER BY name, id",
        (organization_id, resource_type, resource_ids),
    )


def sending_to(organization_id: UUID, destination_id: UUID) -> list[dict[str, Any]]:
    """The id and name of the organization's subscriptions that deliver to the destination."""
    return fetch_all(
        "SELECT id, name FROM subscriptions WHERE organization_id = %s AND destination_ids ? %s"
        " ORDER BY name, id",
        (organization_id, str(destination_id)),
    )


def next_work_at() -> datetime | None:
    """The earliest of the next firing and the next delivery attempt, or None when nothing waits."""
    row = fetch_one(
        "SELECT LEAST((SELECT min(next_run_at) FROM subscriptions WHERE enabled),"
        " (SELECT min(next_attempt_at) FROM subscription_deliveries WHERE status = 'pending')) AS due_at"
    )
    return row["due_at"] if row else None


def advance_many(advances: list[tuple[datetime, UUID]]) -> None:
    execute_many("UPDATE subscriptions SET next_run_at = %s WHERE id = %s", advances)


def insert_deliveries(deliveries: list[tuple[UUID, UUID, dict[str, str]]]) -> None:
    """(organization, subscription, destination statuses) of each delivery to make."""
    execute_many(
        "INSERT INTO subscription_deliveries (organization_id, subscription_id, destinations)"
        " VALUES (%s, %s, %s)",
        [
            (organization_id, subscription_id, Jsonb(statuses))
            for organization_id, subscription_id, statuses in deliveries
        ],
    )


def next_pending(now: datetime, handled: list[UUID]) -> dict[str, Any] | None:
    """One delivery due for an attempt (not in `handled`), locked with its subscription's row."""
    return fetch_one(
        "SELECT d.id, d.organization_id, d.subscription_id, d.run_ids, d.run_plan_digest,"
        " d.destinations, d.attempts, d.error, d.created_at, s.name, s.owner_id, s.resource_type,"
        " s.resource_id, s.filters, s.formats"
        " FROM subscription_deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= %s AND d.id <> ALL(%s::uuid[])"
        " ORDER BY d.next_attempt_at LIMIT 1 FOR UPDATE OF d SKIP LOCKED",
        (now, handled),
    )


def hold(delivery_id: UUID, until: datetime) -> None:
    """Take the delivery up again no sooner than `until`: a tick's claim while it works on it, a wait for
    its runs, a postponement."""
    execute("UPDATE subscription_deliveries SET next_attempt_at = %s WHERE id = %s", (until, delivery_id))


def share_of(subscription_id: UUID) -> dict[str, Any] | None:
    """The subscription's filters, share link and sealed secret, its row locked; None once it is deleted."""
    return fetch_one(
        "SELECT filters, share_id, share_secret_ciphertext FROM subscriptions WHERE id = %s FOR UPDATE",
        (subscription_id,),
    )


def save_share(subscription_id: UUID, share_id: UUID, secret_ciphertext: bytes) -> None:
    """The share link the subscription's chat messages carry, and its sealed secret."""
    execute(
        "UPDATE subscriptions SET share_id = %s, share_secret_ciphertext = %s WHERE id = %s",
        (share_id, secret_ciphertext, subscription_id),
    )


def save_runs(delivery_id: UUID, run_ids: list[UUID], plan_digest: str, next_attempt_at: datetime) -> None:
    """The runs started for the delivery, and the digest of what they were started for."""
    execute(
        "UPDATE subscription_deliveries SET run_ids = %s, run_plan_digest = %s, next_attempt_at = %s"
        " WHERE id = %s",
        (Jsonb([str(run_id) for run_id in run_ids]), plan_digest, next_attempt_at, delivery_id),
    )


def begin_attempt(delivery_id: UUID, until: datetime, error: str) -> None:
    """An attempt at drawing and sending begins: counted now, with `error` standing until it ends, so that
    one the tick never ends (out of time or memory) is counted and says so."""
    execute(
        "UPDATE subscription_deliveries SET attempts = attempts + 1, error = %s, next_attempt_at = %s"
        " WHERE id = %s",
        (error, until, delivery_id),
    )


def save_destinations(delivery_id: UUID, destinations: dict[str, str]) -> None:
    """Each destination's status as soon as it is known: one sent to is not sent to again."""
    execute(
        "UPDATE subscription_deliveries SET destinations = %s WHERE id = %s",
        (Jsonb(destinations), delivery_id),
    )


def record_attempt(
    delivery: dict[str, Any],
    status: str,
    destinations: dict[str, str] | None,
    error: str | None,
    next_attempt_at: datetime,
    now: datetime,
) -> None:
    """An attempt's outcome on the delivery (`attempts` counting it; `destinations` None keeps the statuses
    saved), and on its subscription once it is finished."""
    finished = now if status != "pending" else None
    statuses = None if destinations is None else Jsonb(destinations)
    execute(
        "UPDATE subscription_deliveries SET status = %s, destinations = coalesce(%s, destinations),"
        " error = %s, attempts = %s, next_attempt_at = %s, finished_at = %s WHERE id = %s",
        (status, statuses, error, delivery["attempts"], next_attempt_at, finished, delivery["id"]),
    )
    if status == "delivered":
        execute(
            "UPDATE subscriptions SET last_status = 'delivered', last_error = NULL, last_delivered_at = %s"
            " WHERE id = %s",
            (now, delivery["subscription_id"]),
        )
    elif status == "failed":
        execute(
            "UPDATE subscriptions SET last_status = 'failed', last_error = %s WHERE id = %s",
            (error, delivery["subscription_id"]),
        )
