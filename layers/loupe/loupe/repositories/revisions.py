"""The revisions table: each revised resource's history, append-only, numbered per resource."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute, fetch_all, fetch_one

SUMMARY_COLUMNS = "number, author_user_id, author_api_key_id, created_at, restored_from"


def latest(organization_id: UUID, resource_type: str, resource_id: UUID) -> dict[str, Any] | None:
    """The resource's newest revision's number and definition; None before its first."""
    return fetch_one(
        "SELECT number, definition FROM revisions"
        " WHERE organization_id = %s AND resource_type = %s AND resource_id = %s"
        " ORDER BY number DESC LIMIT 1",
        (organization_id, resource_type, resource_id),
    )


def insert(
    organization_id: UUID,
    resource_type: str,
    resource_id: UUID,
    number: int,
    definition: dict[str, Any],
    author: tuple[UUID | None, UUID | None],
    restored_from: int | None,
) -> None:
    """Keep a revision; the resource's row is locked (or new) in the caller's transaction."""
    author_user_id, author_api_key_id = author
    execute(
        "INSERT INTO revisions (organization_id, resource_type, resource_id, number, definition,"
        " author_user_id, author_api_key_id, restored_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            organization_id,
            resource_type,
            resource_id,
            number,
            Jsonb(definition),
            author_user_id,
            author_api_key_id,
            restored_from,
        ),
    )


def page(
    organization_id: UUID, resource_type: str, resource_id: UUID, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the resource's revisions, newest first, and how many it has."""
    rows = fetch_all(
        f"SELECT {SUMMARY_COLUMNS}, count(*) OVER () AS total FROM revisions"  # noqa: S608  # constant columns
        " WHERE organization_id = %s AND resource_type = %s AND resource_id = %s"
        " ORDER BY number DESC LIMIT %s OFFSET %s",
        (organization_id, resource_type, resource_id, limit, offset),
    )
    if rows or offset == 0:
        return rows, rows[0]["total"] if rows else 0
    counted = fetch_one(
        "SELECT count(*) AS total FROM revisions"
        " WHERE organization_id = %s AND resource_type = %s AND resource_id = %s",
        (organization_id, resource_type, resource_id),
    )
    return rows, counted["total"] if counted else 0


def get(organization_id: UUID, resource_type: str, resource_id: UUID, number: int) -> dict[str, Any] | None:
    return fetch_one(
        f"SELECT {SUMMARY_COLUMNS}, definition FROM revisions"  # noqa: S608  # constant columns
        " WHERE organization_id = %s AND resource_type = %s AND resource_id = %s AND number = %s",
        (organization_id, resource_type, resource_id, number),
    )


def forget(organization_id: UUID, resource_type: str, resource_id: UUID) -> None:
    """A deleted resource's history goes with it."""
    execute(
        "DELETE FROM revisions WHERE organization_id = %s AND resource_type = %s AND resource_id = %s",
        (organization_id, resource_type, resource_id),
    )
