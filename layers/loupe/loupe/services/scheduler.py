"""The scheduler's tick: due schedules become runs and advance to their next firing in one
transaction, then the runs not yet queued are sent (an outbox), so a queue that fails after the
commit loses nothing: the next tick sends them. Alert notifications not yet delivered are retried the
same way. A schedule failing again and again backs off, then is disabled with its reason and an
audit event. A tick with nothing due reads one object (loupe.next_tick), not the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from aws_lambda_powertools.metrics import MetricUnit

from loupe import db, next_tick, queue
from loupe.config import get_settings
from loupe.errors import InvalidInput, NotPermitted
from loupe.models.runs import RunOrigin
from loupe.observability import logger, metrics
from loupe.repositories import crud
from loupe.repositories import runs as runs_repository
from loupe.repositories import schedules as schedule_rows
from loupe.repositories.runs import RUNS
from loupe.services import alerts, audit, row_policies, snippets, subscriptions
from loupe.services.runs import parameter_values, refused_run, run_columns, run_settings
from loupe.services.schedules import next_run_at

# Schedules locked and turned into runs per transaction: short transactions, and a tick that stops
# half way has committed what it did.
BATCH_SIZE = 500
# Runs sent per outbox transaction: its rows stay locked while ten SendMessageBatch calls go out,
# well inside the idle-in-transaction timeout.
OUTBOX_BATCH = 100
# After n consecutive failures the next firing waits at least FIRST_BACKOFF * 2^(n-1), up to a day.
FIRST_BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(days=1)
# How long a tick may wait for a report's runs before leaving it to the next tick.
REPORTS_WAIT = timedelta(seconds=20)


@dataclass(frozen=True)
class TickCounts:
    fired: int = 0
    sent: int = 0
    alerts_delivered: int = 0
    reports_fired: int = 0
    report_attempts: int = 0


def backoff(consecutive_failures: int) -> timedelta:
    if consecutive_failures < 1:
        return timedelta(0)
    delay: timedelta = FIRST_BACKOFF * 2 ** (consecutive_failures - 1)
    return min(MAX_BACKOFF, delay)


def tick(now: datetime, deadline: datetime | None = None) -> TickCounts:
    """Fire every due schedule once (after downtime too: the next firing is counted from `now`), then
    send the unsent runs. Stops taking new batches at `deadline`. Before the next work is due it does
    nothing; after its work it notes when that is."""
    mark = next_tick.read()
    if mark.idle_at(now):
        return TickCounts()
    counts = _work(now, deadline)
    next_tick.keep(next_work_at(now), now, mark)
    return counts


def next_work_at(now: datetime) -> datetime:
    """When the scheduler next has something to do: now while runs, alerts or reports wait to be sent,
    else the earliest firing of a schedule or subscription, or a report's next attempt."""
    with db.transaction():
        if runs_repository.any_unsent() or alerts.undelivered():
            return now
        candidates = [schedule_rows.next_run_at(), subscriptions.next_work_at()]
    return min((due for due in candidates if due is not None), default=now + next_tick.HORIZON)


def _work(now: datetime, deadline: datetime | None) -> TickCounts:
    fired = 0
    while deadline is None or datetime.now(now.tzinfo) < deadline:
        with db.transaction():
            due = schedule_rows.due(now, BATCH_SIZE)
            # Written in two pipelined statements per batch, not two round trips per schedule; the
            # advance first, so a schedule disabled below keeps the disabled state's empty next_run_at.
            schedule_rows.advance_many(
                [
                    (
                        next_run_at(schedule["cron"], schedule["timezone"], _earliest(schedule, now)),
                        now,
                        schedule["id"],
                    )
                    for schedule in due
                ]
            )
            queued = [run for schedule in due if (run := _run_for(schedule)) is not None]
            runs_repository.insert_queued(queued)
        fired += len(due)
        if len(due) < BATCH_SIZE:
            break
    sent = send_outbox(now)
    delivered = alerts.deliver_pending(deadline=deadline)
    reports_fired = subscriptions.fire_due(now)
    # Reports last: a delivery waits for its runs within what is left of the tick, at most REPORTS_WAIT.
    waited = datetime.now(UTC) + REPORTS_WAIT
    report_attempts = subscriptions.deliver_pending(min(deadline, waited) if deadline else waited)
    metrics.add_metric(name="SchedulesFired", unit=MetricUnit.Count, value=fired)
    metrics.add_metric(name="ScheduledRunsSent", unit=MetricUnit.Count, value=sent)
    metrics.add_metric(name="ReportsFired", unit=MetricUnit.Count, value=reports_fired)
    return TickCounts(
        fired=fired,
        sent=sent,
        alerts_delivered=delivered,
        reports_fired=reports_fired,
        report_attempts=report_attempts,
    )


def _earliest(schedule: dict[str, Any], now: datetime) -> datetime:
    """The next firing is the first after this: now, or later while the schedule keeps failing."""
    after: datetime = now + backoff(schedule["consecutive_failures"])
    return after


def _run_for(schedule: dict[str, Any]) -> dict[str, Any] | None:
    """The queued run a firing makes, or None when it cannot run (recorded here: a refused SQL ends
    failed at once, parameters that no longer fit disable the schedule)."""
    try:
        values = parameter_values(
            schedule["declared"],
            schedule["parameters"],
            schedule["organization_id"],
            lambda: ZoneInfo(schedule["timezone"]),
            row_policies.member_principal(schedule["organization_id"], schedule["created_by"]),
        )
        sql = snippets.expand_saved(schedule["organization_id"], schedule["sql"], schedule["declared"])
    except InvalidInput as error:
        # The query's parameters (or its snippets) changed under the schedule: it can no longer run as saved.
        _disable(
            schedule["id"],
            schedule["organization_id"],
            f"its parameters no longer fit the query: {error.message}",
        )
        return None
    try:
        policy = row_policies.effective_for_member(
            schedule["organization_id"], schedule["created_by"], schedule["datasource_id"], schedule["kind"]
        )
    except NotPermitted as error:
        _disable(schedule["id"], schedule["organization_id"], f"its creator cannot run it: {error.message}")
        return None
    columns, refusal = run_columns(
        schedule["kind"],
        schedule["datasource_id"],
        sql,
        values,
        query_id=schedule["query_id"],
        created_by=schedule["created_by"],
        allowed_functions=frozenset(schedule["allowed_functions"]),
        declared=schedule["declared"],
        query_revision=schedule["query_revision"],
        origin=RunOrigin.SCHEDULE,
        policy=policy,
    )
    columns["schedule_id"] = schedule["id"]
    if refusal is not None:
        crud.insert(RUNS, schedule["organization_id"], refused_run(columns, refusal))
        record_outcome(schedule["id"], succeeded=False)
        return None
    # enqueued_at stays empty until the message is sent: the outbox.
    return {**columns, "organization_id": schedule["organization_id"]}


def send_outbox(now: datetime) -> int:
    """Send the queued runs whose message is not sent yet, marking each once the queue took it."""
    queue_url = run_settings().scheduled_queue_url
    sent_total = 0
    while True:
        with db.transaction():
            unsent = runs_repository.unsent(OUTBOX_BATCH)
            # Sent while the rows are locked: another tick skips them instead of sending them again.
            sent = queue.send_runs(queue_url, [run.id for run in unsent])
            runs_repository.mark_sent(sent, now)
        sent_total += len(sent)
        if len(unsent) < OUTBOX_BATCH or len(sent) < len(unsent):
            return sent_total


def record_outcome(schedule_id: UUID, *, succeeded: bool) -> None:
    """Count a scheduled run's outcome; past LOUPE_SCHEDULE_MAX_FAILURES failures in a row the schedule
    is disabled. Runs in the caller's transaction."""
    state = schedule_rows.record_outcome(schedule_id, succeeded)
    limit = get_settings().schedule_max_failures
    if state is not None and state["enabled"] and state["consecutive_failures"] >= limit:
        _disable(schedule_id, state["organization_id"], f"its last {limit} runs failed")


def _disable(schedule_id: UUID, organization_id: UUID, reason: str) -> None:
    schedule_rows.disable(schedule_id, reason)
    audit.record(
        "schedule.disabled",
        organization_id,
        ip=None,
        target_type="schedule",
        target_id=schedule_id,
        metadata={"reason": reason},
    )
    logger.warning("schedule disabled", extra={"schedule_id": str(schedule_id), "reason": reason})
