"""Routes of the audit-events function: the organization's audit trail, for admins."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Admin
from loupe.api.resolver import LoupeRouter
from loupe.models.audit import AuditEventOut, AuditEventQuery
from loupe.models.common import Page
from loupe.services import audit

router = LoupeRouter()


@router.get(
    "/audit-events",
    operation_id="listAuditEvents",
    tags=["audit"],
    summary="Audit events, newest first; filter by action, actor_id, created_after / created_before",
)
def list_events(caller: Admin, query: Annotated[AuditEventQuery, Query()]) -> Page[AuditEventOut]:
    return audit.list_events(caller, query)
