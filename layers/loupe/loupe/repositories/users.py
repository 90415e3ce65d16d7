"""Users, their memberships, and the organizations they belong to."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from loupe.db import execute, fetch_all, fetch_one
from loupe.models.identity import RoleName


class UserRecord(BaseModel):
    id: UUID
    email: str
    name: str
    password_hash: str


class Membership(BaseModel):
    organization_id: UUID
    role: RoleName


class Profile(BaseModel):
    id: UUID
    email: str
    name: str
    role: RoleName
    organization_id: UUID
    organization_name: str
    created_at: datetime


def find_by_email(email: str) -> UserRecord | None:
    row = fetch_one("SELECT id, email, name, password_hash FROM users WHERE email = %s", (email,))
    return UserRecord.model_validate(row) if row else None


def get(user_id: UUID) -> UserRecord | None:
    row = fetch_one("SELECT id, email, name, password_hash FROM users WHERE id = %s", (user_id,))
    return UserRecord.model_validate(row) if row else None


def insert(email: str, name: str, password_hash: str) -> UserRecord:
    row = fetch_one(
        "INSERT INTO users (email, name, password_hash) VALUES (%s, %s, %s)"
        " RETURNING id, email, name, password_hash",
        (email, name, password_hash),
    )
    return UserRecord.model_validate(row)


def set_password_hash(user_id: UUID, password_hash: str) -> None:
    execute("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))


def insert_organization(name: str) -> UUID:
    row = fetch_one("INSERT INTO organizations (name) VALUES (%s) RETURNING id", (name,))
    assert row is not None
    organization_id: UUID = row["id"]
    return organization_id


def add_membership(organization_id: UUID, user_id: UUID, role: RoleName) -> None:
    execute(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES (%s, %s, %s)",
        (organization_id, user_id, role),
    )


def default_membership(user_id: UUID) -> Membership | None:
    """The organization a login lands in: the membership used last (else the oldest)."""
    row = fetch_one(
        "SELECT organization_id, role FROM memberships WHERE user_id = %s"
        " ORDER BY last_used_at DESC NULLS LAST, created_at, organization_id LIMIT 1",
        (user_id,),
    )
    return Membership.model_validate(row) if row else None


def membership(user_id: UUID, organization_id: UUID) -> Membership | None:
    row = fetch_one(
        "SELECT organization_id, role FROM memberships WHERE user_id = %s AND organization_id = %s",
        (user_id, organization_id),
    )
    return Membership.model_validate(row) if row else None


def memberships(user_id: UUID) -> list[dict[str, Any]]:
    """Every organization the user belongs to, with its name and the user's role there, by name."""
    return fetch_all(
        "SELECT m.organization_id, o.name AS organization_name, m.role FROM memberships m"
        " JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = %s ORDER BY o.name, o.id",
        (user_id,),
    )


def mark_used(user_id: UUID, organization_id: UUID) -> None:
    """The membership a login or a switch entered: the next login enters it again."""
    execute(
        "UPDATE memberships SET last_used_at = now() WHERE user_id = %s AND organization_id = %s",
        (user_id, organization_id),
    )


def profile(user_id: UUID, organization_id: UUID) -> Profile | None:
    row = fetch_one(
        "SELECT u.id, u.email, u.name, m.role, m.organization_id, o.name AS organization_name,"
        " u.created_at"
        " FROM users u"
        " JOIN memberships m ON m.user_id = u.id AND m.organization_id = %s"
        " JOIN organizations o ON o.id = m.organization_id"
        " WHERE u.id = %s",
        (organization_id, user_id),
    )
    return Profile.model_validate(row) if row else None
