"""A run's limits and its cancellation, through the HTTP API and the runner handler: rows, bytes, time and
cost each end a run with their own code, and a cancel stops the statement inside the datasource."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import psycopg
import pymysql
import pytest

from loupe import db
from loupe.config import get_settings
from tests import factories
from tests.integration import runs_support
from tests.integration.runs_support import BUCKET, deliver, receive, run_row, run_runner, setup_org
from tests.integration.test_connectors import LOCAL_MARIADB, throwaway_mariadb
from tests.read_only_logins import mariadb_reader, mariadb_reader_url, postgres_reader_url

aws = runs_support.aws
postgres_database = runs_support.postgres_database

# Minutes of work for PostgreSQL and for MariaDB (cross joins), without sleep(): the guard refuses
# sleeping functions.
SLOW_POSTGRES_SQL = "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"
SLOW_MARIADB_SQL = (
    "SELECT COUNT(*) FROM information_schema.columns a, information_schema.columns b,"
    " information_schema.columns c"
)


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    """A throwaway database and its documented read-only login."""
    with throwaway_mariadb() as name, mariadb_reader(name):
        yield name


def adhoc(api: Any, token: str, datasource_id: str, sql: str) -> str:
    created = api.post("/api/v1/runs", json_body={"datasource_id": datasource_id, "sql": sql}, token=token)
    assert created.status == 202, created.body
    return str(created.json()["id"])


def organization_settings(api: Any, token: str, **settings: Any) -> None:
    patched = api.request(
        "PATCH", "/api/v1/organizations/current", json_body={"settings": settings}, token=token
    )
    assert patched.status == 200, patched.body


def stored_keys(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def wait_for(found: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


def postgres_statement_active(database: str) -> bool:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        row = conn.execute(
            # The statement shows as the cursor's FETCH, from the runner's session.
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
            " AND application_name = 'loupe' AND query LIKE 'FETCH%%'",
            (database,),
        ).fetchone()
    return bool(row and row[0])


def mariadb_statement_active(database: str) -> bool:
    root = pymysql.connect(host=LOCAL_MARIADB[0], port=LOCAL_MARIADB[1], user="root", autocommit=True)
    try:
        with root.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND COMMAND = 'Query'"
                " AND INFO LIKE %s",
                (database, "%information_schema.columns a%"),
            )
            row = cursor.fetchone()
    finally:
        root.close()
    return bool(row and row[0])


class RunnerThread:
    """The runner handler on its own thread and database connection, as another Lambda container."""

    def __init__(self, queue_url: str) -> None:
        self.result: dict[str, Any] | None = None
        self.seconds = 0.0
        messages = receive(queue_url)
        assert messages, "nothing was queued"

        def invoke() -> None:
            started = time.monotonic()
            with db.own_connection("test-runner"):
                self.result = run_runner(messages, queue_url)
            self.seconds = time.monotonic() - started

        self._thread = threading.Thread(target=invoke)
        self._thread.start()

    def join(self) -> dict[str, Any] | None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the runner did not stop"
        return self.result


def test_a_queued_run_cancels_at_once_and_never_starts(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    run_id = adhoc(api, admin.access_token, datasource_id, "SELECT id FROM widgets")

    cancelled = api.post(f"/api/v1/runs/{run_id}/cancel", token=admin.access_token)
    assert cancelled.status == 202, cancelled.body
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["code"] == "cancelled"

    # The message is still delivered; the runner finds nothing to do and stores nothing.
    _, result = deliver(aws)
    assert result == {"batchItemFailures": []}
    row = run_row(clean_db, run_id)
    assert (row["status"], row["attempts"]) == ("cancelled", 0)
    assert stored_keys("org/") == []
    again = api.post(f"/api/v1/runs/{run_id}/cancel", token=admin.access_token)
    assert again.status == 409
    assert again.json()["error"]["code"] == "conflict"


def test_cancel_stops_a_running_postgres_statement_inside_the_database(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_RUN_CANCEL_POLL_SECONDS", "0.2")
    get_settings.cache_clear()
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    run_id = adhoc(api, admin.access_token, datasource_id, SLOW_POSTGRES_SQL)
    runner = RunnerThread(aws)
    wait_for(lambda: postgres_statement_active(postgres_database), "the statement in pg_stat_activity")

    cancelled = api.post(f"/api/v1/runs/{run_id}/cancel", token=admin.access_token)
    assert cancelled.status == 202, cancelled.body
    assert cancelled.json()["status"] == "running"

    assert runner.join() == {"batchItemFailures": []}
    assert runner.seconds < 15
    assert not postgres_statement_active(postgres_database)
    run = api.get(f"/api/v1/runs/{run_id}", token=admin.access_token).json()
    assert run["status"] == "cancelled"
    assert run["error"]["code"] == "cancelled"
    assert stored_keys("org/") == []


def test_cancel_stops_a_running_mariadb_statement_with_kill_query(
    api: Any, register: Any, clean_db: str, aws: str, mariadb_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_RUN_CANCEL_POLL_SECONDS", "0.2")
    get_settings.cache_clear()
    admin = register()
    datasource = api.post(
        "/api/v1/datasources",
        json_body={
            "name": "widgets on mariadb",
            "type": "mysql",
            "connection_string": mariadb_reader_url(mariadb_database),
        },
        token=admin.access_token,
    )
    assert datasource.status == 201, datasource.body
    run_id = adhoc(api, admin.access_token, datasource.json()["id"], SLOW_MARIADB_SQL)
    runner = RunnerThread(aws)
    wait_for(lambda: mariadb_statement_active(mariadb_database), "the statement in the PROCESSLIST")

    assert api.post(f"/api/v1/runs/{run_id}/cancel", token=admin.access_token).status == 202
    assert runner.join() == {"batchItemFailures": []}
    assert not mariadb_statement_active(mariadb_database)
    assert run_row(clean_db, run_id)["status"] == "cancelled"


def test_only_editors_cancel_and_only_their_organizations_runs(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    run_id = adhoc(api, admin.access_token, datasource_id, "SELECT 1")
    stranger = register()
    assert api.post(f"/api/v1/runs/{run_id}/cancel", token=stranger.access_token).status == 404
    assert api.post("/api/v1/runs/not-a-uuid/cancel", token=admin.access_token).status == 422
    viewer = factories.member(api, clean_db, admin.organization_id, "viewer")[1]["access_token"]
    refused = api.post(f"/api/v1/runs/{run_id}/cancel", token=viewer)
    assert refused.status == 403
    assert run_row(clean_db, run_id)["status"] == "queued"


def test_the_row_limit_keeps_the_first_rows_and_says_so(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    organization_settings(api, admin.access_token, max_rows_per_run=3)
    run_id = adhoc(api, admin.access_token, datasource_id, "SELECT id FROM widgets ORDER BY id")
    deliver(aws)
    run = api.get(f"/api/v1/runs/{run_id}", token=admin.access_token).json()
    assert (run["status"], run["row_count"], run["truncated"]) == ("succeeded", 3, True)
    assert run["error"]["code"] == "row_limit"
    page = api.get(f"/api/v1/runs/{run_id}/results", token=admin.access_token).json()
    assert page["rows"] == [[1], [2], [3]]


def test_the_byte_limit_fails_the_run_and_keeps_nothing(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_RUN_MAX_RESULT_BYTES", "2048")
    get_settings.cache_clear()
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    wide = "SELECT n, repeat('x', 100) AS filler FROM generate_series(1, 100) AS n"
    run_id = adhoc(api, admin.access_token, datasource_id, wide)
    deliver(aws)
    run = api.get(f"/api/v1/runs/{run_id}", token=admin.access_token).json()
    assert run["status"] == "failed"
    assert run["error"]["code"] == "result_too_large"
    assert stored_keys("org/") == []
    assert api.get(f"/api/v1/runs/{run_id}/results", token=admin.access_token).status == 409


def test_the_organizations_time_limit_times_the_run_out(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    organization_settings(api, admin.access_token, query_timeout_seconds=1)
    run_id = adhoc(api, admin.access_token, datasource_id, SLOW_POSTGRES_SQL)
    started = time.monotonic()
    deliver(aws)
    assert time.monotonic() - started < 15
    run = api.get(f"/api/v1/runs/{run_id}", token=admin.access_token).json()
    assert run["status"] == "timed_out"
    assert run["error"]["code"] == "statement_timeout"
    assert not postgres_statement_active(postgres_database)


@pytest.mark.parametrize("database", ["postgres", "mariadb"])
def test_the_cost_guard_rejects_an_expensive_plan_before_it_runs(
    api: Any, register: Any, clean_db: str, aws: str, database: str, request: pytest.FixtureRequest
) -> None:
    admin = register()
    if database == "postgres":
        name = request.getfixturevalue("postgres_database")
        connection_string = postgres_reader_url(name)
        expensive, cheap = SLOW_POSTGRES_SQL, "SELECT id FROM widgets WHERE id = 1"
        kind = "postgres"
    else:
        name = request.getfixturevalue("mariadb_database")
        connection_string = mariadb_reader_url(name)
        # Eleven copies of a three-row table: MariaDB expects 3^11 = 177,147 row combinations.
        joined = ", ".join(f"widgets w{copy}" for copy in range(11))
        expensive, cheap = f"SELECT COUNT(*) FROM {joined}", "SELECT id FROM widgets WHERE id = 1"
        kind = "mysql"
    datasource = api.post(
        "/api/v1/datasources",
        json_body={"name": "costed", "type": kind, "connection_string": connection_string},
        token=admin.access_token,
    )
    assert datasource.status == 201, datasource.body
    organization_settings(api, admin.access_token, max_query_cost=100_000)

    refused_id = adhoc(api, admin.access_token, datasource.json()["id"], expensive)
    deliver(aws)
    refused = api.get(f"/api/v1/runs/{refused_id}", token=admin.access_token).json()
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "cost_too_high"
    assert "100000" in refused["error"]["message"]

    allowed_id = adhoc(api, admin.access_token, datasource.json()["id"], cheap)
    deliver(aws)
    allowed = api.get(f"/api/v1/runs/{allowed_id}", token=admin.access_token).json()
    assert (allowed["status"], allowed["row_count"]) == ("succeeded", 1)
