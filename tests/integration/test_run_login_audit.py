"""The login audit on the run path, through real API Gateway and SQS events against the local
PostgreSQL: a refused login fails its runs, a datasource never inspected is inspected by the runner
before its run, and a datasource's allowed functions reach the SQL guard."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.integration import runs_support
from tests.integration.runs_support import deliver, run_query, run_row, setup_org
from tests.read_only_logins import reader_name

# pytest finds fixtures by the module's names: these make the shared ones this module's.
aws = runs_support.aws
postgres_database = runs_support.postgres_database


def make_superuser(database: str, superuser: bool = True) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} {}").format(
                sql.Identifier(reader_name(database)), sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER")
            )
        )


def forget_inspection(database_url: str, datasource_id: str) -> None:
    """As migration 0007 leaves a datasource made before it."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE datasources SET login_audit_status = 'not_inspected', login_findings = '[]',"
            " login_inspected_at = NULL WHERE id = %s",
            (datasource_id,),
        )


def login_audit_row(database_url: str, datasource_id: str) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT login_audit_status, login_inspected_at IS NOT NULL FROM datasources WHERE id = %s",
            (datasource_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def audit_events(database_url: str, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT metadata FROM audit_events WHERE action = %s", (action,)).fetchall()
    return [row[0] for row in rows]


def test_a_run_on_a_refused_login_fails_naming_the_finding(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    make_superuser(postgres_database)
    try:
        tested = api.post(f"/api/v1/datasources/{datasource_id}/test", token=admin.access_token)
        assert tested.json()["login_audit"]["status"] == "refused"
        started = run_query(api, admin.access_token, query_id, parameters={"minimum": 1})
        assert started.status == 202, started.body
        deliver(aws)
    finally:
        make_superuser(postgres_database, superuser=False)
    row = run_row(clean_db, started.json()["id"])
    assert row["status"] == "failed"
    assert row["error"]["code"] == "login_refused"
    assert "superuser" in row["error"]["message"]


@pytest.mark.parametrize("superuser", [False, True])
def test_the_runner_inspects_a_datasource_never_inspected(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, superuser: bool
) -> None:
    admin, datasource_id, query_id = setup_org(api, register, postgres_database)
    forget_inspection(clean_db, datasource_id)
    make_superuser(postgres_database, superuser)
    try:
        started = run_query(api, admin.access_token, query_id, parameters={"minimum": 1})
        deliver(aws)
    finally:
        make_superuser(postgres_database, superuser=False)
    row = run_row(clean_db, started.json()["id"])
    if superuser:
        assert (row["status"], row["error"]["code"]) == ("failed", "login_refused")
        assert login_audit_row(clean_db, datasource_id) == ("refused", True)
        assert audit_events(clean_db, "datasource.login_refused") == [
            {"trigger": "run", "findings": ["superuser"]}
        ]
    else:
        assert (row["status"], row["row_count"]) == ("succeeded", 5)
        assert login_audit_row(clean_db, datasource_id) == ("passed", True)


def test_allowed_functions_reach_the_guard(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    body = {"datasource_id": datasource_id, "sql": "SELECT pg_sleep(0) AS slept"}
    refused = api.post("/api/v1/runs", json_body=body, token=admin.access_token)
    assert (refused.json()["status"], refused.json()["error"]["code"]) == ("failed", "sql_not_allowed")
    patched = api.request(
        "PATCH",
        f"/api/v1/datasources/{datasource_id}",
        json_body={"allowed_functions": ["pg_sleep"]},
        token=admin.access_token,
    )
    assert patched.status == 200, patched.body
    allowed = api.post("/api/v1/runs", json_body=body, token=admin.access_token)
    assert allowed.json()["status"] == "queued", allowed.body
    deliver(aws)
    assert run_row(clean_db, allowed.json()["id"])["status"] == "succeeded"
