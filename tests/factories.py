"""Rows inserted straight into the database, for tests that need a parent resource of another
function (a datasource under a query, a query under a visualization...) without going through it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def _insert(database_url: str, table: str, values: dict[str, Any]) -> str:
    names = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    adapted = [Jsonb(value) if isinstance(value, dict) else value for value in values.values()]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"INSERT INTO {table} ({names}) VALUES ({placeholders}) RETURNING id", adapted
        ).fetchone()
    assert row is not None
    return str(row[0])


def datasource(database_url: str, organization_id: str, name: str | None = None) -> str:
    return _insert(
        database_url,
        "datasources",
        {
            "organization_id": organization_id,
            "name": name or f"ds-{uuid.uuid4().hex[:8]}",
            "type": "postgres",
            "connection_ciphertext": b"not-a-real-ciphertext",
            "connection_display": "postgresql://reader:****@db.example:5432/shop",
        },
    )


def query(
    database_url: str, organization_id: str, datasource_id: str | None = None, sql: str = "SELECT 1"
) -> str:
    return _insert(
        database_url,
        "queries",
        {
            "organization_id": organization_id,
            "name": f"q-{uuid.uuid4().hex[:8]}",
            "datasource_id": datasource_id or datasource(database_url, organization_id),
            "sql": sql,
        },
    )


def visualization(database_url: str, organization_id: str, query_id: str | None = None) -> str:
    return _insert(
        database_url,
        "visualizations",
        {
            "organization_id": organization_id,
            "name": f"v-{uuid.uuid4().hex[:8]}",
            "query_id": query_id or query(database_url, organization_id),
            "type": "table",
            "options": {},
        },
    )


def dashboard(database_url: str, organization_id: str) -> str:
    return _insert(database_url, "dashboards", {"organization_id": organization_id, "name": "d"})


MEMBER_PASSWORD = "member password 1"


def member(api: Any, database_url: str, organization_id: str, role: str) -> tuple[str, dict[str, Any]]:
    """A user of `role` in the organization, inserted by SQL and logged in: (user id, login body)."""
    from loupe.security import passwords

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user_id = _insert(
        database_url,
        "users",
        {"email": email, "name": role.title(), "password_hash": passwords.hash_password(MEMBER_PASSWORD)},
    )
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO memberships (organization_id, user_id, role) VALUES (%s, %s, %s)",
            (organization_id, user_id, role),
        )
    login = api.post("/api/v1/auth/login", json_body={"email": email, "password": MEMBER_PASSWORD})
    assert login.status == 200, login.body
    return user_id, login.json()
