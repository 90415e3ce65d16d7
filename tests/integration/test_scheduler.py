"""The scheduler against the real PostgreSQL and moto's SQS: due selection, catch-up, concurrent ticks,
the outbox after a queue failure, backoff and auto-disable, through the scheduler function's handler."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from infra.local.events import LocalLambdaContext, scheduled_event
from infra.local.template_routes import load_handler
from loupe import db, next_tick
from loupe.config import get_settings
from loupe.services.scheduler import FIRST_BACKOFF, TickCounts, tick
from tests.integration import runs_support
from tests.integration.runs_support import deliver, receive, setup_org

aws = runs_support.aws
postgres_database = runs_support.postgres_database

RULE = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/SchedulerFunction"


def schedule(api: Any, token: str, query_id: str, **body: Any) -> str:
    created = api.post(
        "/api/v1/schedules",
        json_body={"name": "hourly", "query_id": query_id, "cron": "0 * * * *", "parameters": {"minimum": 1}}
        | body,
        token=token,
    )
    assert created.status == 201, created.body
    return str(created.json()["id"])


def make_due(database_url: str, schedule_id: str, ago: timedelta = timedelta(minutes=1)) -> None:
    """Move the schedule's next firing into the past behind the services' back, and poke the scheduler
    as a change through them does."""
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE schedules SET next_run_at = now() - %s WHERE id = %s", (ago, schedule_id))
    next_tick.poke()


def schedule_row(database_url: str, schedule_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(
            "SELECT enabled, next_run_at, last_run_at, consecutive_failures, disabled_reason"
            " FROM schedules WHERE id = %s",
            (schedule_id,),
        )
        names = [column.name for column in cursor.description or ()]
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def schedule_runs(database_url: str, schedule_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT id, status, enqueued_at FROM runs WHERE schedule_id = %s ORDER BY created_at",
            (schedule_id,),
        ).fetchall()


def run_scheduler() -> dict[str, Any]:
    result: dict[str, Any] = load_handler("SchedulerFunction")(
        scheduled_event(RULE), LocalLambdaContext("SchedulerFunction", timeout_seconds=60)
    )
    return result


def test_only_due_enabled_schedules_fire_once_and_advance(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    due = schedule(api, admin.access_token, query_id)
    disabled = schedule(api, admin.access_token, query_id, enabled=False)
    later = schedule(api, admin.access_token, query_id)
    make_due(clean_db, due)
    make_due(clean_db, disabled)
    before = datetime.now(UTC)

    assert run_scheduler() == {
        "fired": 1,
        "sent": 1,
        "alerts_delivered": 0,
        "reports_fired": 0,
        "report_attempts": 0,
    }

    runs = schedule_runs(clean_db, due)
    assert [(status, enqueued is not None) for _, status, enqueued in runs] == [("queued", True)]
    assert [json.loads(message["Body"])["run_id"] for message in receive(aws)] == [str(runs[0][0])]
    shown = api.get(f"/api/v1/runs/{runs[0][0]}", token=admin.access_token).json()
    assert (shown["origin"], shown["schedule_id"], shown["query_revision"]) == ("schedule", due, 1)
    state = schedule_row(clean_db, due)
    assert state["last_run_at"] >= before
    assert state["next_run_at"] > datetime.now(UTC)
    assert state["next_run_at"].minute == 0
    assert schedule_runs(clean_db, disabled) == []
    assert schedule_runs(clean_db, later) == []
    # The next tick finds nothing due.
    assert run_scheduler() == asdict(TickCounts())


def test_after_a_long_gap_a_schedule_fires_once(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id)
    make_due(clean_db, hourly, ago=timedelta(days=3))

    assert tick(datetime.now(UTC)).fired == 1

    assert len(schedule_runs(clean_db, hourly)) == 1
    next_run = schedule_row(clean_db, hourly)["next_run_at"]
    assert datetime.now(UTC) < next_run <= datetime.now(UTC) + timedelta(hours=1)


def test_two_ticks_at_once_create_each_run_once(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    schedules = [schedule(api, admin.access_token, query_id) for _ in range(30)]
    for schedule_id in schedules:
        make_due(clean_db, schedule_id)
    now = datetime.now(UTC)
    fired: list[int] = []
    start = threading.Barrier(2)

    def one_tick(owner: str) -> None:
        with db.own_connection(owner):
            start.wait()
            fired.append(tick(now).fired)

    threads = [threading.Thread(target=one_tick, args=(f"tick-{index}",)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(fired) == 30
    assert all(len(schedule_runs(clean_db, schedule_id)) == 1 for schedule_id in schedules)
    sent = runs_support.drain(aws)
    assert len(sent) == len(set(sent)) == 30


def test_runs_the_queue_refused_after_the_commit_go_with_the_next_tick(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id)
    make_due(clean_db, hourly)
    monkeypatch.setenv("LOUPE_SCHEDULED_RUNS_QUEUE_URL", aws.replace("loupe-runs", "no-such-queue"))
    get_settings.cache_clear()

    assert tick(datetime.now(UTC)).sent == 0
    [(run_id, status, enqueued)] = schedule_runs(clean_db, hourly)
    assert (status, enqueued) == ("queued", None)
    assert receive(aws) == []

    monkeypatch.setenv("LOUPE_SCHEDULED_RUNS_QUEUE_URL", aws)
    get_settings.cache_clear()
    counts = tick(datetime.now(UTC))
    assert (counts.fired, counts.sent) == (0, 1)
    assert [json.loads(message["Body"])["run_id"] for message in receive(aws)] == [str(run_id)]
    assert schedule_runs(clean_db, hourly)[0][2] is not None


def test_failing_runs_back_off_then_disable_the_schedule(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOUPE_SCHEDULE_MAX_FAILURES", "2")
    get_settings.cache_clear()
    admin, datasource_id, _ = setup_org(api, register, postgres_database)
    broken = api.post(
        "/api/v1/queries",
        json_body={"name": "broken", "datasource_id": datasource_id, "sql": "SELECT * FROM no_such_table"},
        token=admin.access_token,
    ).json()["id"]
    failing = schedule(api, admin.access_token, broken, parameters={})

    make_due(clean_db, failing)
    assert tick(datetime.now(UTC)).fired == 1
    deliver(aws)
    assert schedule_row(clean_db, failing)["consecutive_failures"] == 1

    make_due(clean_db, failing)
    fired_at = datetime.now(UTC)
    assert tick(fired_at).fired == 1
    # One failure behind it: the next firing is at least the first backoff away.
    assert schedule_row(clean_db, failing)["next_run_at"] >= fired_at + FIRST_BACKOFF
    deliver(aws)

    state = schedule_row(clean_db, failing)
    assert (state["enabled"], state["consecutive_failures"], state["next_run_at"]) == (False, 2, None)
    assert state["disabled_reason"] == "its last 2 runs failed"
    shown = api.get(f"/api/v1/schedules/{failing}", token=admin.access_token).json()
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "its last 2 runs failed")
    with psycopg.connect(clean_db) as conn:
        events = conn.execute(
            "SELECT metadata->>'reason' FROM audit_events"
            " WHERE action = 'schedule.disabled' AND target_id = %s",
            (failing,),
        ).fetchall()
    assert events == [("its last 2 runs failed",)]


def test_a_success_resets_the_failure_count(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id)
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE schedules SET consecutive_failures = 3 WHERE id = %s", (hourly,))
    make_due(clean_db, hourly)
    tick(datetime.now(UTC))
    deliver(aws)
    assert schedule_runs(clean_db, hourly)[0][1] == "succeeded"
    assert schedule_row(clean_db, hourly)["consecutive_failures"] == 0


@pytest.mark.parametrize(
    ("zone", "fires_at", "then"),
    [
        # 02:30 happens twice in Berlin on 25 October 2026: it fires at the first, then the next day.
        (
            "Europe/Berlin",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
        ),
        # 02:30 does not exist in New York on 8 March 2026: it fires at 03:30 EDT, then 02:30 EDT.
        (
            "America/New_York",
            datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
            datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
        ),
    ],
)
def test_ticks_across_clock_changes_fire_each_day_once(
    api: Any,
    register: Any,
    clean_db: str,
    aws: str,
    postgres_database: str,
    zone: str,
    fires_at: datetime,
    then: datetime,
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    daily = schedule(api, admin.access_token, query_id, cron="30 2 * * *", timezone=zone)
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE schedules SET next_run_at = %s WHERE id = %s", (fires_at, daily))
    next_tick.poke()

    for minutes_later in range(0, 120, 10):
        tick(fires_at + timedelta(minutes=minutes_later))

    assert len(schedule_runs(clean_db, daily)) == 1
    assert schedule_row(clean_db, daily)["next_run_at"] == then


def test_a_scheduled_run_the_reaper_gives_up_counts_against_its_schedule(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id)
    make_due(clean_db, hourly)
    tick(datetime.now(UTC))
    [(run_id, _, _)] = schedule_runs(clean_db, hourly)
    # Its runner died three times: claimed, never finished, lease long gone.
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "UPDATE runs SET status = 'running', attempts = 3, lease_expires_at = now() - interval '1 minute'"
            " WHERE id = %s",
            (run_id,),
        )

    assert load_handler("ReaperFunction")(
        scheduled_event(RULE.replace("SchedulerFunction", "ReaperFunction")),
        LocalLambdaContext("ReaperFunction", timeout_seconds=60),
    ) == {"requeued": 0, "failed": 1, "cancelled": 0}
    assert schedule_runs(clean_db, hourly)[0][1] == "failed"
    assert schedule_row(clean_db, hourly)["consecutive_failures"] == 1


def test_a_schedule_whose_values_no_longer_fit_its_query_is_disabled_not_run(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id)
    with psycopg.connect(clean_db) as conn:
        # The query now declares another parameter, which the schedule's saved values do not name.
        conn.execute(
            "UPDATE queries SET sql = 'SELECT {{ floor }}',"
            ' parameters = \'[{"name": "floor", "type": "number", "required": true}]\' WHERE id = %s',
            (query_id,),
        )
    make_due(clean_db, hourly)

    assert tick(datetime.now(UTC)).fired == 1

    assert schedule_runs(clean_db, hourly) == []
    state = schedule_row(clean_db, hourly)
    assert (state["enabled"], state["next_run_at"]) == (False, None)
    assert state["disabled_reason"].startswith("its parameters no longer fit the query")


def test_an_idle_tick_reads_one_object_and_leaves_the_database_alone(
    api: Any, register: Any, clean_db: str, aws: str, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _, query_id = setup_org(api, register, postgres_database)
    hourly = schedule(api, admin.access_token, query_id)
    assert run_scheduler()["fired"] == 0
    # The tick noted when work is next due: the schedule's next firing, at the top of the hour.
    mark = next_tick.read()
    assert mark.due_at == schedule_row(clean_db, hourly)["next_run_at"]
    db.close()
    with monkeypatch.context() as patched:
        patched.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/unreachable")
        get_settings.cache_clear()
        assert run_scheduler() == asdict(TickCounts())
    get_settings.cache_clear()
    # A schedule saved through the API pokes the scheduler once its transaction commits.
    other = schedule(api, admin.access_token, query_id, cron="*/5 * * * *")
    assert not next_tick.read().idle_at(datetime.now(UTC))
    make_due(clean_db, other)
    assert run_scheduler()["fired"] == 1


def test_a_poke_while_the_tick_looks_at_the_database_wins_over_what_the_tick_saw(aws: str) -> None:
    now = datetime.now(UTC)
    before = next_tick.read()
    next_tick.poke()  # a change committed after the tick read the mark
    assert not next_tick.keep(now + timedelta(hours=1), now, before)
    assert not next_tick.read().idle_at(now)
    # The same race when the tick itself started from a poke: the second poke is a new version too.
    poked = next_tick.read()
    next_tick.poke()
    assert not next_tick.keep(now + timedelta(hours=1), now, poked)
    assert not next_tick.read().idle_at(now)
    current = next_tick.read()
    assert next_tick.keep(now + timedelta(days=3), now, current)
    # Never trusted further ahead than the horizon.
    assert next_tick.read().due_at == now + next_tick.HORIZON
