"""`make dev`'s console: quiet while idle (its pollers and schedules running), one readable line per request
and background event, errors with their error_id and traceback; LOUPE_LOG_FORMAT=json gives JSON lines."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from infra.local.stack_process import StackFailed, StackProcess, running_stack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads worker activity in /proc"),
]

# How long the idle stack is watched; its schedules tick every second meanwhile.
IDLE_SECONDS = float(os.environ.get("LOUPE_TEST_IDLE_SECONDS") or 4)
QUICK_TICKS = {"LOUPE_LOCAL_SCHEDULER_SECONDS": "1", "LOUPE_LOCAL_REAPER_SECONDS": "1"}
LINE = r"\d\d:\d\d:\d\d (?P<function>\w+) (?P<what>.+) (?P<status>\S+) (?P<ms>\d+)ms (?P<correlation>\S+)"


def started(format_: str) -> Iterator[StackProcess]:
    try:
        with running_stack({"LOUPE_LOG_FORMAT": format_, **QUICK_TICKS}) as running:
            yield running
    except StackFailed as failure:
        pytest.fail(str(failure))


@pytest.fixture(scope="module")
def text_stack() -> Iterator[StackProcess]:
    yield from started("text")


@pytest.fixture(scope="module")
def json_stack() -> Iterator[StackProcess]:
    yield from started("json")


def log_of(stack: StackProcess) -> str:
    return stack.log.read_text(encoding="utf-8", errors="replace")


def wait_for(found: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


def settle(stack: StackProcess, *functions: str, quiet_for: float = 2.0) -> None:
    """Wait until `functions` have started their workers and the console has been still `quiet_for`."""
    wait_for(
        lambda: all(re.search(rf"{name}\W+(worker|pid)", log_of(stack)) for name in functions), "workers"
    )
    size, still_since = -1, time.monotonic()
    deadline = time.monotonic() + 90
    while time.monotonic() - still_since < quiet_for:
        assert time.monotonic() < deadline, "the console never went quiet:\n" + log_of(stack)[-3000:]
        if len(log_of(stack)) != size:
            size, still_since = len(log_of(stack)), time.monotonic()
        time.sleep(0.1)


def served_events(stack: StackProcess, function: str) -> int:
    """How often the function's worker has woken up: it sleeps on its events pipe between events."""
    pid = re.search(rf"{function}: worker (\d+) initialized", log_of(stack))
    assert pid, f"{function} has no worker"
    status = Path(f"/proc/{pid[1]}/status").read_text(encoding="utf-8")
    found = re.search(r"^voluntary_ctxt_switches:\s+(\d+)$", status, re.MULTILINE)
    assert found
    return int(found[1])


def new_lines(stack: StackProcess, offset: int, expected: str, timeout: float = 30) -> list[str]:
    """The lines written from `offset` on, once one holds `expected` and a moment more has passed."""
    wait_for(lambda: expected in log_of(stack)[offset:], expected, timeout)
    time.sleep(1.0)
    return [line for line in log_of(stack)[offset:].splitlines() if line]


def test_an_idle_stack_prints_nothing_while_its_schedules_and_pollers_run(text_stack: StackProcess) -> None:
    settle(text_stack, "SchedulerFunction", "ReaperFunction")
    schedules = ("SchedulerFunction", "ReaperFunction")
    size, woken = len(log_of(text_stack)), [served_events(text_stack, name) for name in schedules]
    time.sleep(IDLE_SECONDS)
    assert log_of(text_stack)[size:] == ""
    # The schedules' workers served their ticks meanwhile: quiet, not stopped.
    assert all(
        served_events(text_stack, name) > before for name, before in zip(schedules, woken, strict=True)
    )
    assert "POST / HTTP" not in log_of(text_stack)  # moto's access lines
    assert "Warning" not in log_of(text_stack)


def test_a_request_prints_one_readable_line(text_stack: StackProcess) -> None:
    with httpx.Client(base_url=text_stack.url, timeout=30) as client:
        client.get("/api/v1/health")  # the function's cold start has its own line
        settle(text_stack, "HealthFunction")
        offset = len(log_of(text_stack))
        response = client.get("/api/v1/health")
    request_id = response.headers["X-Request-Id"]
    (line,) = new_lines(text_stack, offset, request_id)
    assert re.fullmatch(LINE, line), line
    assert line.endswith(f" HealthFunction GET /api/v1/health 200 {line.split()[-2]} {request_id}")


def test_an_error_prints_its_error_id_and_traceback(text_stack: StackProcess) -> None:
    with psycopg.connect(text_stack.metadata_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users RENAME TO users_away")
        try:
            with httpx.Client(base_url=text_stack.url, timeout=30) as client:
                offset = len(log_of(text_stack))
                response = client.post(
                    "/api/v1/auth/login", json={"email": "x@example.com", "password": "a-long-password"}
                )
        finally:
            conn.execute("ALTER TABLE users_away RENAME TO users")
    assert response.status_code == 500
    error_id = response.json()["error"]["error_id"]
    head, *details = new_lines(text_stack, offset, "UndefinedTable")
    found = re.fullmatch(LINE + r" error_id=(?P<error_id>\w+)", head)
    assert found, head
    assert (found["function"], found["what"], found["status"]) == (
        "AuthFunction",
        "POST /api/v1/auth/login",
        "500",
    )
    assert (found["correlation"], found["error_id"]) == (response.headers["X-Request-Id"], error_id)
    assert all(line.startswith("    ") for line in details)
    assert "    Traceback (most recent call last):" in details
    assert any("psycopg.errors.UndefinedTable" in line for line in details)


def test_a_run_through_the_queue_prints_one_line_for_its_sqs_event(text_stack: StackProcess) -> None:
    with httpx.Client(base_url=text_stack.url, timeout=30) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": text_stack.demo_email, "password": text_stack.demo_password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        demo = client.get("/api/v1/datasources", headers=headers).json()["items"][0]
        query = client.post(
            "/api/v1/queries",
            headers=headers,
            json={"name": "one", "datasource_id": demo["id"], "sql": "SELECT 1"},
        ).json()
        run = client.post(f"/api/v1/queries/{query['id']}/runs", headers=headers, json={})
    assert run.status_code == 202, run.text
    correlation = run.headers["X-Request-Id"]

    def lines() -> list[str]:
        return [
            re.sub(r"\d+ms", "Nms", line[9:])
            for line in log_of(text_stack).splitlines()
            if line.endswith(f"ms {correlation}")
        ]

    done = f"RunnerFunction sqs 1 record ok Nms {correlation}"
    wait_for(lambda: done in lines(), "the run's sqs event")
    time.sleep(1.0)
    request, *retried, last = lines()
    assert request == f"QueriesFunction POST /api/v1/queries/{query['id']}/runs 202 Nms {correlation}"
    assert last == done
    # The request sends the run's message before it commits: a runner quicker than the commit fails the
    # record (the run is not visible yet), and the queue delivers it again, each event its own line.
    assert retried == [f"RunnerFunction sqs 1 record 1 failed Nms {correlation}"] * len(retried)


def records(lines: list[str]) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) for record in parsed)
    return parsed


def test_json_format_prints_the_functions_json_lines(json_stack: StackProcess) -> None:
    settle(json_stack, "SchedulerFunction", "ReaperFunction", quiet_for=0)
    with httpx.Client(base_url=json_stack.url, timeout=30) as client:
        # Past each worker's first event: Python prints a warning once per process, as plain text.
        warm_up = client.get("/api/v1/health").headers["X-Request-Id"]
        new_lines(json_stack, 0, warm_up)
        offset = len(log_of(json_stack))
        response = client.get("/api/v1/health")
    request_id = response.headers["X-Request-Id"]
    lines = new_lines(json_stack, offset, request_id)
    parsed = records(lines)  # every line is JSON, the schedules' ticks included
    ours = [record for record in parsed if record.get("correlation_id") == request_id]
    assert [(record["message"], record["function_name"], record["status"]) for record in ours] == [
        ("request", "HealthFunction", 200)
    ]
    assert any(record.get("route") == "GET /health" and "_aws" in record for record in parsed)  # its metrics
    assert records([line for line in log_of(json_stack).splitlines() if "worker initialized" in line])
