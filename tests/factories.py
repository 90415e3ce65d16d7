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
