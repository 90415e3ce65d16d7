"""The schedules table: how it is listed, the scheduler's due schedules locked in bounded batches,
their next firing, and their failure count as their runs end."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from loupe.db import execute, execute_many, fetch_all, fetch_one
from loupe.repositories.listing import Collection

SCHEDULES = Collection(
    table="schedules",
    columns=(
        "id",
        "name",
        "query_id",
        "cron",
        "timezone",
        "parameters",
        "enabled",
        "tags",
        "next_run_at",
        "last_run_at",
        "consecutive_failures",
        "disabled_reason",
        "alert_rules",
        "alert_state",
        "created_by",
        "created_at",
        "updated_at",
    ),
    sortable=frozenset({"name", "next_run_at", "last_run_at", "created_at", "updated_at"}),
    writable=frozenset(
        {
            "name",
            "query_id",
            "cron",
            "timezone",
            "parameters",
            "enabled",
            "tags",
            "next_run_at",
            "consecutive_failures",
            "disabled_reason",
            "alert_rules",
            "alert_state",
            "created_by",
        }
    ),
    filters=frozenset({"query_id", "enabled"}),
    json_columns=frozenset({"parameters", "alert_rules", "alert_state"}),
)

# Enabled schedules whose next firing is not after now, oldest first, with their query and its
# datasource's type and allowed functions; locked, and rows another tick holds are skipped
# (schedules_due_idx).
DUE_SQL = (
    "SELECT schedules.id, schedules.organization_id, schedules.query_id, schedules.cron,"
    " schedules.timezone, schedules.parameters, schedules.consecutive_failures, schedules.created_by,"
    " queries.sql, queries.datasource_id, queries.parameters AS declared, queries.revision AS query_revision,"
    " datasources.type AS kind, datasources.allowed_functions"
    " FROM schedules"
    " JOIN queries ON queries.organization_id = schedules.organization_id"
    " AND queries.id = schedules.query_id"
    " JOIN datasources ON datasources.organization_id = queries.organization_id"
    " AND datasources.id = queries.datasource_id"
    " WHERE schedules.enabled AND schedules.next_run_at <= %s"
    " ORDER BY schedules.next_run_at LIMIT %s FOR UPDATE OF schedules SKIP LOCKED"
)


def alerting_to(organization_id: UUID, destination_id: UUID) -> list[dict[str, Any]]:
    """The id and name of the organization's schedules with an alert rule that notifies the destination."""
    return fetch_all(
        "SELECT id, name FROM schedules WHERE organization_id = %s AND EXISTS ("
        " SELECT 1 FROM jsonb_array_elements(alert_rules) AS alert_rule"
        " WHERE alert_rule -> 'destination_ids' ? %s) ORDER BY name, id",
        (organization_id, str(destination_id)),
    )


def due(now: datetime, limit: int) -> list[dict[str, Any]]:
    return fetch_all(DUE_SQL, (now, limit))


def next_run_at() -> datetime | None:
    """The earliest firing of an enabled schedule, or None when none is enabled."""
    row = fetch_one("SELECT min(next_run_at) AS due_at FROM schedules WHERE enabled")
    return row["due_at"] if row else None


def advance_many(advances: list[tuple[datetime, datetime, UUID]]) -> None:
    """(next_run_at, fired_at, schedule id) for each schedule that fired."""
    execute_many("UPDATE schedules SET next_run_at = %s, last_run_at = %s WHERE id = %s", advances)


def disable(schedule_id: UUID, reason: str) -> None:
    execute(
        "UPDATE schedules SET enabled = false, disabled_reason = %s, next_run_at = NULL WHERE id = %s",
        (reason, schedule_id),
    )


def record_outcome(schedule_id: UUID, succeeded: bool) -> dict[str, Any] | None:
    """Reset the failure count after a success, add one after a failure; the schedule's state after."""
    return fetch_one(
        "UPDATE schedules SET consecutive_failures = CASE WHEN %s THEN 0 ELSE consecutive_failures + 1 END"
        " WHERE id = %s RETURNING id, organization_id, enabled, consecutive_failures",
        (succeeded, schedule_id),
    )
