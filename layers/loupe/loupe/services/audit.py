"""The audit trail: who did what to which resource, from where. Written in the caller's transaction,
so an action and its record commit (or roll back) together."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from loupe.api.context import current_request_or_none
from loupe.db import execute
from loupe.models.identity import Principal


def record(
    action: str,
    organization_id: UUID,
    *,
    actor_id: UUID | None = None,
    target_type: str | None = None,
    target_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Append one event. `action` is dotted, e.g. `auth.login_failed`, `datasource.created`."""
    request = current_request_or_none()
    ip = request.client_ip if request else None
    execute(
        "INSERT INTO audit_events (organization_id, actor_id, action, target_type, target_id, ip, metadata)"
        " VALUES (%s, %s, %s, %s, %s, %s::inet, %s)",
        (organization_id, actor_id, action, target_type, target_id, ip, Jsonb(metadata or {})),
    )


def record_by(principal: Principal, action: str, **details: Any) -> None:
    """An event caused by an authenticated caller (a user, or an API key named in the metadata)."""
    metadata = dict(details.pop("metadata", None) or {})
    if principal.api_key_id is not None:
        metadata["api_key_id"] = str(principal.api_key_id)
    record(action, principal.organization_id, actor_id=principal.user_id, metadata=metadata, **details)
