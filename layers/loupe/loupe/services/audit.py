"""The audit trail: who did what to which resource, from where. Written in the caller's transaction,
so an action and its record commit (or roll back) together; read by admins."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe.models.audit import AuditEventOut, AuditEventQuery
from loupe.models.common import Page
from loupe.models.identity import Principal
from loupe.repositories import audit_events
from loupe.services.resources import ResourceReader


def record(
    action: str,
    organization_id: UUID,
    *,
    ip: str | None,
    actor_id: UUID | None = None,
    target_type: str | None = None,
    target_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Append one event. `action` is dotted, e.g. `auth.login_failed`, `datasource.created`; `ip` is
    the caller's address, None for what Loupe does by itself."""
    audit_events.insert(
        organization_id,
        action,
        actor_id=actor_id,
        target_type=target_type,
        target_id=target_id,
        ip=ip,
        metadata=metadata or {},
    )


def record_by(principal: Principal, action: str, **details: Any) -> None:
    """An event caused by an authenticated caller (a user, or an API key named in the metadata)."""
    metadata = dict(details.pop("metadata", None) or {})
    if principal.api_key_id is not None:
        metadata["api_key_id"] = str(principal.api_key_id)
    record(
        action,
        principal.organization_id,
        ip=principal.client_ip,
        actor_id=principal.user_id,
        metadata=metadata,
        **details,
    )


_events = ResourceReader(audit_events.AUDIT_EVENTS, AuditEventOut, "audit event")


def list_events(principal: Principal, query: AuditEventQuery) -> Page[AuditEventOut]:
    """Newest first unless `sort` says otherwise; filtered by action, actor and creation time."""
    return _events.list(principal, query)
