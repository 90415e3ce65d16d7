"""Organizations, their members and their usage; every statement names the organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from loupe.db import execute, fetch_all, fetch_one
from loupe.models.identity import RoleName
from loupe.models.organizations import MemberOut, UsageOut

_ORGANIZATION_COLUMNS = sql.SQL("id, name, settings, created_at, updated_at")
_MEMBER_COLUMNS = sql.SQL("u.id, u.email, u.name, m.role, m.claims, m.created_at AS joined_at")


class OrganizationRecord(BaseModel):
    id: UUID
    name: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def get(organization_id: UUID, *, for_update: bool = False) -> OrganizationRecord | None:
    row = fetch_one(
        sql.SQL("SELECT {} FROM organizations WHERE id = %s{}").format(
            _ORGANIZATION_COLUMNS, sql.SQL(" FOR UPDATE" if for_update else "")
        ),
        (organization_id,),
    )
    return OrganizationRecord.model_validate(row) if row else None


def update(organization_id: UUID, name: str, settings: dict[str, Any]) -> OrganizationRecord:
    row = fetch_one(
        sql.SQL("UPDATE organizations SET name = %s, settings = %s WHERE id = %s RETURNING {}").format(
            _ORGANIZATION_COLUMNS
        ),
        (name, Jsonb(settings), organization_id),
    )
    return OrganizationRecord.model_validate(row)


def list_members(organization_id: UUID, limit: int, offset: int) -> tuple[list[MemberOut], int]:
    rows = fetch_all(
        sql.SQL(
            "SELECT {}, count(*) OVER () AS total_count FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.organization_id = %s ORDER BY m.created_at, u.id LIMIT %s OFFSET %s"
        ).format(_MEMBER_COLUMNS),
        (organization_id, limit, offset),
    )
    if rows:
        return [MemberOut.model_validate(row) for row in rows], int(rows[0]["total_count"])
    # An offset past the end returns no rows, hence no window count.
    counted = fetch_one(
        "SELECT count(*) AS total_count FROM memberships WHERE organization_id = %s", (organization_id,)
    )
    return [], int(counted["total_count"]) if counted else 0


def get_member(organization_id: UUID, user_id: UUID) -> MemberOut | None:
    row = fetch_one(
        sql.SQL(
            "SELECT {} FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.organization_id = %s AND m.user_id = %s"
        ).format(_MEMBER_COLUMNS),
        (organization_id, user_id),
    )
    return MemberOut.model_validate(row) if row else None


def is_member_by_email(organization_id: UUID, email: str) -> bool:
    row = fetch_one(
        "SELECT 1 AS found FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.organization_id = %s AND u.email = %s",
        (organization_id, email),
    )
    return row is not None


def lock_admins(organization_id: UUID) -> list[UUID]:
    """The organization's admins, locked until the transaction ends: two admins demoting or removing
    each other at once are serialized, so one of them stays."""
    rows = fetch_all(
        "SELECT user_id FROM memberships WHERE organization_id = %s AND role = 'admin'"
        " ORDER BY user_id FOR UPDATE",
        (organization_id,),
    )
    return [row["user_id"] for row in rows]


def set_role(organization_id: UUID, user_id: UUID, role: RoleName) -> None:
    execute(
        "UPDATE memberships SET role = %s WHERE organization_id = %s AND user_id = %s",
        (role, organization_id, user_id),
    )


def remove_member(organization_id: UUID, user_id: UUID) -> None:
    """Delete the membership; its sessions (and their refresh tokens) go with it by cascade."""
    execute("DELETE FROM memberships WHERE organization_id = %s AND user_id = %s", (organization_id, user_id))


def usage(organization_id: UUID) -> UsageOut:
    row = fetch_one(
        "SELECT"
        " (SELECT count(*) FROM queries WHERE organization_id = %(org)s) AS queries,"
        " (SELECT count(*) FROM runs WHERE organization_id = %(org)s"
        "   AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
        "   AS runs_this_month,"
        " (SELECT coalesce(sum(byte_size), 0) FROM runs WHERE organization_id = %(org)s)"
        "   AS stored_result_bytes",
        {"org": organization_id},
    )
    return UsageOut.model_validate(row)
