"""The audit trail's table: how it is listed, and the one statement that appends to it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.db import execute
from loupe.repositories.listing import Collection

AUDIT_EVENTS = Collection(
    table="audit_events",
    columns=("id", "actor_id", "action", "target_type", "target_id", "ip", "created_at", "metadata"),
    sortable=frozenset({"created_at", "action"}),
    default_sort="-created_at",
    searchable=("action",),
    tagged=False,
    filters=frozenset({"action", "actor_id"}),
)


def insert(
    organization_id: UUID,
    action: str,
    *,
    actor_id: UUID | None,
    target_type: str | None,
    target_id: UUID | None,
    ip: str | None,
    metadata: dict[str, Any],
) -> None:
    execute(
        "INSERT INTO audit_events (organization_id, actor_id, action, target_type, target_id, ip, metadata)"
        " VALUES (%s, %s, %s, %s, %s, %s::inet, %s)",
        (organization_id, actor_id, action, target_type, target_id, ip, Jsonb(metadata)),
    )
