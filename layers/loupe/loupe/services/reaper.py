"""The lease reaper: runs left `running` by a runner that stopped (its lease lapsed) go back to the queue,
or fail once they have used up their attempts. With no run message in either queue and no recent claim
no run is in flight, and the database is left alone (an idle one can pause)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from loupe import db, queue, run_claims
from loupe.models.runs import RunStatus
from loupe.observability import metrics
from loupe.repositories import runs as runs_repository
from loupe.services import alerts, scheduler
from loupe.services.runs import CANCELLED, run_settings

# A run whose runner stopped this many times is likely what stops it (memory, a crash): give it up.
MAX_ATTEMPTS = 3
# One pass stays short; the next pass takes the rest.
BATCH_SIZE = 100


@dataclass(frozen=True)
class ReapCounts:
    requeued: int = 0
    failed: int = 0
    cancelled: int = 0


def runs_in_flight(now: datetime) -> bool:
    """Whether a run may be in flight: its message is in a queue (taken, or back after its runner
    stopped), or a runner claimed one recently (a duplicate delivery can delete the message of a run
    still going)."""
    settings = run_settings()
    queued = any(queue.messages_held(url) for url in {settings.queue_url, settings.scheduled_queue_url})
    return queued or run_claims.recent(now)


def reap(now: datetime) -> ReapCounts:
    """Re-queue or fail up to BATCH_SIZE runs whose lease lapsed before `now`; rows another transaction
    holds (a runner taking one over) are skipped, not waited for."""
    if not runs_in_flight(now):
        return ReapCounts()
    with db.transaction():
        expired = runs_repository.lapsed(now, BATCH_SIZE)
        # A run someone asked to cancel is not started again, whatever its attempts.
        cancelled = [run.id for run in expired if run.cancel_requested_at is not None]
        live = [run for run in expired if run.cancel_requested_at is None]
        retried = [run for run in live if run.attempts < MAX_ATTEMPTS]
        given_up_runs = [run for run in live if run.attempts >= MAX_ATTEMPTS]
        given_up = [run.id for run in given_up_runs]
        runs_repository.expire(cancelled, RunStatus.CANCELLED, CANCELLED, now)
        runs_repository.expire(
            given_up,
            RunStatus.FAILED,
            {
                "code": "lease_expired",
                "message": f"The runner stopped before finishing the run {MAX_ATTEMPTS} times",
            },
            now,
        )
        for run in given_up_runs:
            if run.schedule_id is not None:
                scheduler.record_outcome(run.schedule_id, succeeded=False)
                # Notified by the scheduler's next tick, which delivers what is pending.
                alerts.evaluate_failure(
                    run.schedule_id, run.id, "The runner stopped before finishing the run"
                )
        runs_repository.requeue([run.id for run in retried], now)
        if retried:
            # Sent inside the transaction: a queue that refuses leaves the runs expired for the next pass.
            # Each goes back to the queue it came from.
            settings = run_settings()
            for run in retried:
                queue.send_run(settings.queue_for(run.origin), run.id)
    metrics.add_metric(name="RunsRequeued", unit=MetricUnit.Count, value=len(retried))
    metrics.add_metric(name="RunsExpired", unit=MetricUnit.Count, value=len(given_up) + len(cancelled))
    return ReapCounts(requeued=len(retried), failed=len(given_up), cancelled=len(cancelled))
