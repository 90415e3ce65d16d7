"""Runs through `make dev`'s HTTP API only, with the demo datasource: a saved query and an ad-hoc run
paged and exported, a cached run reused, a long statement cancelled, each limit hit, a duplicate queue
delivery and a runner that died mid-run."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest

from infra.local.stack_process import StackProcess
from tests.e2e.test_local_stack import client, stack

__all__ = ["client", "stack"]  # the stack's fixtures, shared with this module

# The log of the module's stack, for a failure to quote.
STACK_LOGS: list[Path] = []
SLOW_SQL = "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"
ORDERS_SQL = "SELECT id, status FROM orders WHERE id <= {{ last }} ORDER BY id"


@pytest.fixture(scope="module")
def headers(stack: StackProcess) -> dict[str, str]:
    STACK_LOGS.append(stack.log)
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        login = http.post(
            "/api/v1/auth/login", json={"email": stack.demo_email, "password": stack.demo_password}
        )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture(scope="module")
def demo_id(stack: StackProcess, headers: dict[str, str]) -> str:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        items = http.get("/api/v1/datasources", headers=headers).json()["items"]
    return str(next(item for item in items if item["name"].startswith("Demo shop"))["id"])


@pytest.fixture
def settings(client: httpx.Client, headers: dict[str, str]) -> Iterator[Any]:
    """Set organization settings for one test; they return to their defaults after it."""
    changed: set[str] = set()

    def apply(**values: Any) -> None:
        changed.update(values)
        response = client.patch("/api/v1/organizations/current", headers=headers, json={"settings": values})
        assert response.status_code == 200, response.text

    yield apply
    if changed:
        apply(**dict.fromkeys(changed))


def finished(
    client: httpx.Client, headers: dict[str, str], run_id: str, timeout: float = 60
) -> dict[str, Any]:
    """The run once it has ended. A run still queued or running after `timeout` fails the test with what
    the stack logged, for the run's id (the stack's folder is gone once the module ends)."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
        if run["status"] not in ("queued", "running"):
            return run
        if time.monotonic() > deadline:
            log = STACK_LOGS[-1].read_text(encoding="utf-8", errors="replace") if STACK_LOGS else ""
            # Not this loop's own reads of the run: they would crowd out what the runner said.
            mentions = "\n".join(
                line
                for line in log.splitlines()
                if (run_id in line or "Traceback" in line) and not line.startswith("GET /api/v1/runs/")
            )
            pytest.fail(
                f"run {run_id} still {run['status']} after {timeout} s; the stack logged:\n{mentions[:6000]}"
            )
        time.sleep(0.1)


def adhoc(client: httpx.Client, headers: dict[str, str], demo_id: str, sql: str, **parameters: Any) -> str:
    body = {"datasource_id": demo_id, "sql": sql, "parameters": parameters}
    created = client.post("/api/v1/runs", headers=headers, json=body)
    assert created.status_code == 202, created.text
    return str(created.json()["id"])


def metadata(stack: StackProcess) -> psycopg.Connection[Any]:
    return psycopg.connect(stack.metadata_url, autocommit=True)


def test_a_saved_query_runs_pages_exports_and_is_reused(
    client: httpx.Client, headers: dict[str, str], demo_id: str
) -> None:
    query = client.post(
        "/api/v1/queries",
        headers=headers,
        json={
            "name": "First orders",
            "datasource_id": demo_id,
            "sql": ORDERS_SQL,
            "parameters": [{"name": "last", "type": "number", "required": True}],
        },
    )
    assert query.status_code == 201, query.text
    runs_path = f"/api/v1/queries/{query.json()['id']}/runs"
    started = client.post(runs_path, headers=headers, json={"parameters": {"last": 25}})
    assert started.status_code == 202, started.text
    run = finished(client, headers, started.json()["id"])
    assert (run["status"], run["row_count"], run["truncated"]) == ("succeeded", 25, False)

    pages = [
        client.get(
            f"/api/v1/runs/{run['id']}/results", headers=headers, params={"offset": offset, "limit": 10}
        )
        for offset in (0, 10, 20)
    ]
    rows = [row for page in pages for row in page.json()["rows"]]
    assert [row[0] for row in rows] == list(range(1, 26))

    for fmt, check in (
        ("csv", lambda body: list(csv.reader(io.StringIO(body.decode())))[1][0] == "1"),
        ("json", lambda body: json.loads(body)["rows"][0][0] == 1),
        ("xlsx", lambda body: body[:2] == b"PK"),
    ):
        exported = client.get(f"/api/v1/runs/{run['id']}/export", headers=headers, params={"format": fmt})
        assert exported.status_code == 302, exported.text
        download = httpx.get(exported.headers["Location"], timeout=30)
        assert download.status_code == 200
        assert check(download.content), fmt

    cached = client.post(
        runs_path, headers=headers, json={"parameters": {"last": 25}, "max_age_seconds": 600}
    )
    assert cached.status_code == 200
    assert cached.json()["id"] == run["id"]
    other_values = client.post(
        runs_path, headers=headers, json={"parameters": {"last": 3}, "max_age_seconds": 600}
    )
    assert other_values.status_code == 202


def test_an_adhoc_run_binds_its_values(client: httpx.Client, headers: dict[str, str], demo_id: str) -> None:
    run_id = adhoc(client, headers, demo_id, ORDERS_SQL, last=2)
    run = finished(client, headers, run_id)
    assert (run["status"], run["row_count"], run["query_id"]) == ("succeeded", 2, None)
    injected = adhoc(client, headers, demo_id, "SELECT {{ text }} AS echoed", text="1; DROP TABLE orders")
    assert finished(client, headers, injected)["status"] == "succeeded"
    page = client.get(f"/api/v1/runs/{injected}/results", headers=headers).json()
    assert page["rows"] == [["1; DROP TABLE orders"]]


def test_a_long_statement_is_cancelled_inside_the_database(
    stack: StackProcess, client: httpx.Client, headers: dict[str, str], demo_id: str
) -> None:
    run_id = adhoc(client, headers, demo_id, SLOW_SQL)
    # One connection for every look (autocommit: each look is a fresh snapshot of the activity), so
    # the polling does not spend the sample reader's connection limit that the runner needs too.
    with psycopg.connect(stack.reader_url(), autocommit=True) as reader:

        def statement_active() -> bool:
            row = reader.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'loupe_sample' AND state = 'active'"
                " AND query LIKE 'FETCH%%'"
            ).fetchone()
            return bool(row and row[0])

        deadline = time.monotonic() + 30
        while not statement_active():
            if time.monotonic() > deadline:
                run = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
                log = stack.log.read_text(encoding="utf-8", errors="replace")[-4000:]
                pytest.fail(f"the statement never showed in pg_stat_activity; the run: {run}\n{log}")
            time.sleep(0.1)
        cancelled = client.post(f"/api/v1/runs/{run_id}/cancel", headers=headers)
        assert cancelled.status_code == 202, cancelled.text
        run = finished(client, headers, run_id, timeout=15)
        assert (run["status"], run["error"]["code"]) == ("cancelled", "cancelled")
        assert not statement_active()
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=headers).status_code == 409


def test_each_limit_ends_a_run_with_its_own_code(
    client: httpx.Client, headers: dict[str, str], demo_id: str, settings: Any
) -> None:
    settings(max_rows_per_run=5)
    capped = finished(client, headers, adhoc(client, headers, demo_id, "SELECT id FROM orders"))
    assert (capped["status"], capped["row_count"], capped["truncated"]) == ("succeeded", 5, True)
    assert capped["error"]["code"] == "row_limit"

    settings(query_timeout_seconds=1)
    slow = finished(client, headers, adhoc(client, headers, demo_id, SLOW_SQL))
    assert (slow["status"], slow["error"]["code"]) == ("timed_out", "statement_timeout")

    settings(max_query_cost=10)
    costly = finished(client, headers, adhoc(client, headers, demo_id, "SELECT * FROM orders"))
    assert (costly["status"], costly["error"]["code"]) == ("failed", "cost_too_high")


def test_a_duplicate_delivery_and_a_dead_runner_are_harmless(
    stack: StackProcess, client: httpx.Client, headers: dict[str, str], demo_id: str
) -> None:
    run_id = adhoc(client, headers, demo_id, ORDERS_SQL, last=7)
    first = finished(client, headers, run_id)
    assert first["status"] == "succeeded"

    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{stack.moto_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's placeholder credentials
    )
    queue_url = sqs.get_queue_url(QueueName="loupe-runs")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"run_id": run_id}))
    deadline = time.monotonic() + 15
    while int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    ):
        assert time.monotonic() < deadline, "the duplicate was never consumed"
        time.sleep(0.1)
    time.sleep(0.5)
    again = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
    assert again == first

    # A runner that died mid-run leaves the run running with a lease that lapses; the reaper (every
    # second here) puts it back in the queue and a runner finishes it.
    with metadata(stack) as conn:
        conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, row_count = NULL,"
            " lease_expires_at = now() - interval '1 second' WHERE id = %s",
            (run_id,),
        )
    recovered = finished(client, headers, run_id)
    assert (recovered["status"], recovered["row_count"]) == ("succeeded", 7)
    with metadata(stack) as conn:
        attempts = conn.execute("SELECT attempts FROM runs WHERE id = %s", (run_id,)).fetchone()
    assert attempts == (2,)


def test_a_due_schedule_fires_through_the_scheduler_and_its_queue(
    stack: StackProcess, client: httpx.Client, headers: dict[str, str], demo_id: str
) -> None:
    query = client.post(
        "/api/v1/queries",
        headers=headers,
        json={"name": "Scheduled orders", "datasource_id": demo_id, "sql": "SELECT count(*) FROM orders"},
    )
    assert query.status_code == 201, query.text
    created = client.post(
        "/api/v1/schedules",
        headers=headers,
        json={"name": "hourly", "query_id": query.json()["id"], "cron": "0 * * * *"},
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["id"]
    with metadata(stack) as conn:
        conn.execute(
            "UPDATE schedules SET next_run_at = now() - interval '1 minute' WHERE id = %s", (schedule_id,)
        )

    deadline = time.monotonic() + 30
    while not (runs := client.get(f"/api/v1/schedules/{schedule_id}/runs", headers=headers).json()["items"]):
        assert time.monotonic() < deadline, "the scheduler never fired the schedule"
        time.sleep(0.2)
    assert len(runs) == 1
    run = finished(client, headers, runs[0]["id"])
    assert (run["status"], run["row_count"]) == ("succeeded", 1)
    later = client.get(f"/api/v1/schedules/{schedule_id}", headers=headers).json()
    assert later["next_run_at"] > later["last_run_at"]
