"""Exports of runs in the metadata database: one per run and format, found again when asked twice, and the
export function's transitions (claim, finish once)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute, fetch_all, fetch_one

COLUMNS = (
    "id, run_id, format, status, error, object_key, byte_size, row_count, created_at, finished_at, expires_at"
)


def find(organization_id: UUID, run_id: UUID, fmt: str) -> dict[str, Any] | None:
    return fetch_one(
        f"SELECT {COLUMNS} FROM run_exports"  # noqa: S608  # a constant column list
        " WHERE organization_id = %s AND run_id = %s AND format = %s",
        (organization_id, run_id, fmt),
    )


def get(organization_id: UUID, run_id: UUID, export_id: UUID) -> dict[str, Any] | None:
    return fetch_one(
        f"SELECT {COLUMNS} FROM run_exports"  # noqa: S608  # a constant column list
        " WHERE organization_id = %s AND run_id = %s AND id = %s",
        (organization_id, run_id, export_id),
    )


def of_run(organization_id: UUID, run_id: UUID) -> list[dict[str, Any]]:
    return fetch_all(
        f"SELECT {COLUMNS} FROM run_exports"  # noqa: S608  # a constant column list
        " WHERE organization_id = %s AND run_id = %s ORDER BY created_at, id",
        (organization_id, run_id),
    )


def queue(
    organization_id: UUID, run_id: UUID, fmt: str, created_by: UUID | None, default_retention_days: int
) -> dict[str, Any] | None:
    """A queued export of the run in this format: a new one, or the failed one queued again (the same
    row: one per run and format); None when a live one exists. It expires when the organization's result
    retention removes the result."""
    return fetch_one(
        "INSERT INTO run_exports (organization_id, run_id, format, created_by, expires_at)"  # noqa: S608
        " SELECT runs.organization_id, runs.id, %(format)s, %(created_by)s, runs.finished_at + make_interval("
        " days => COALESCE((organizations.settings->>'result_retention_days')::int, %(days)s))"
        " FROM runs JOIN organizations ON organizations.id = runs.organization_id"
        " WHERE runs.organization_id = %(organization_id)s AND runs.id = %(run_id)s"
        " ON CONFLICT (run_id, format) DO UPDATE SET status = 'queued', error = NULL, object_key = NULL,"
        " byte_size = NULL, row_count = NULL, attempts = 0, created_by = EXCLUDED.created_by,"
        " created_at = now(), started_at = NULL, finished_at = NULL, expires_at = EXCLUDED.expires_at"
        f" WHERE run_exports.status = 'failed' RETURNING {COLUMNS}",
        {
            "organization_id": organization_id,
            "run_id": run_id,
            "format": fmt,
            "created_by": created_by,
            "days": default_retention_days,
        },
    )


def claim(export_id: UUID, lease_seconds: int) -> dict[str, Any] | None:
    """queued → running, or take over a running export whose function died past its lease; None when
    another delivery has it or it is finished. `attempts` afterwards fences `finish`."""
    return fetch_one(
        "UPDATE run_exports SET status = 'running', attempts = run_exports.attempts + 1, started_at = now()"
        " FROM runs WHERE run_exports.id = %s AND runs.id = run_exports.run_id"
        " AND (run_exports.status = 'queued' OR (run_exports.status = 'running'"
        " AND run_exports.started_at < now() - make_interval(secs => %s)))"
        " RETURNING run_exports.id, run_exports.organization_id, run_exports.run_id, run_exports.format,"
        " run_exports.attempts, runs.result_location",
        (export_id, lease_seconds),
    )


def exists(export_id: UUID) -> bool:
    return fetch_one("SELECT 1 AS found FROM run_exports WHERE id = %s", (export_id,)) is not None


def release(export_id: UUID, attempt: int) -> None:
    """running → queued again, by the claim numbered `attempt` only: the next delivery takes it."""
    execute(
        "UPDATE run_exports SET status = 'queued', started_at = NULL"
        " WHERE id = %s AND attempts = %s AND status = 'running'",
        (export_id, attempt),
    )


def finish(export_id: UUID, attempt: int, values: dict[str, Any]) -> bool:
    """running → succeeded or failed, by the claim numbered `attempt` only."""
    return (
        execute(
            "UPDATE run_exports SET status = %(status)s, error = %(error)s, object_key = %(object_key)s,"
            " byte_size = %(byte_size)s, row_count = %(row_count)s, finished_at = now()"
            " WHERE id = %(id)s AND attempts = %(attempt)s AND status = 'running'",
            {
                "status": values["status"],
                "error": Jsonb(values["error"]) if values.get("error") is not None else None,
                "object_key": values.get("object_key"),
                "byte_size": values.get("byte_size"),
                "row_count": values.get("row_count"),
                "id": export_id,
                "attempt": attempt,
            },
        )
        == 1
    )


def fail_active(export_id: UUID, error: dict[str, str]) -> bool:
    """A queued or running export ends failed (its messages were dead-lettered)."""
    return (
        execute(
            "UPDATE run_exports SET status = 'failed', error = %s, finished_at = now(),"
            " started_at = coalesce(started_at, now()) WHERE id = %s AND status IN ('queued', 'running')",
            (Jsonb(error), export_id),
        )
        == 1
    )
