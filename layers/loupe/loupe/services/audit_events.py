"""Reading the organization's audit trail, for admins (services/audit.py records it)."""

from __future__ import annotations

from loupe.models.audit import AuditEventOut, AuditEventQuery
from loupe.models.common import Page
from loupe.models.identity import Principal
from loupe.repositories.audit_events import AUDIT_EVENTS
from loupe.services.resources import ResourceService

_events = ResourceService(AUDIT_EVENTS, AuditEventOut, "audit event")


def list_events(principal: Principal, query: AuditEventQuery) -> Page[AuditEventOut]:
    """Newest first unless `sort` says otherwise; filtered by action, actor and creation time."""
    return _events.list(principal, query)
