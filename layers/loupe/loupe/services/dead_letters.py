"""Runs and exports whose messages reached a dead-letter queue: their function failed on them every
time it was given them, so they end `failed` rather than waiting for a delivery that will not come."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit

from loupe import db
from loupe.observability import logger, metrics
from loupe.repositories import run_exports
from loupe.repositories import runs as runs_repository
from loupe.services import alerts, scheduler

UNDELIVERED_EXPORT = {
    "code": "delivery_failed",
    "message": "The export function failed on this export every time it was delivered; ask again later",
}
UNDELIVERED = {
    "code": "delivery_failed",
    "message": "The runner failed on this run every time it was delivered; run it again later",
}


def fail_undelivered(run_id: UUID, receive_count: str | None) -> None:
    """End the run `failed` if it is still queued or running; a finished (or deleted) run is left as is."""
    with db.transaction():
        ended = runs_repository.fail_active(run_id, UNDELIVERED)
        if ended is not None and ended.schedule_id is not None:
            scheduler.record_outcome(ended.schedule_id, succeeded=False)
            # Notified by the scheduler's next tick, which delivers what is pending.
            alerts.evaluate_failure(ended.schedule_id, run_id, UNDELIVERED["message"])
    logger.warning(
        "run message dead-lettered",
        extra={"run_id": str(run_id), "receive_count": receive_count, "ended": ended is not None},
    )
    if ended:
        metrics.add_metric(name="RunsDeadLettered", unit=MetricUnit.Count, value=1)


def fail_undelivered_export(export_id: UUID, receive_count: str | None) -> None:
    """End the export `failed` if it is still queued or running; asking again queues it anew."""
    with db.transaction():
        ended = run_exports.fail_active(export_id, UNDELIVERED_EXPORT)
    logger.warning(
        "export message dead-lettered",
        extra={"export_id": str(export_id), "receive_count": receive_count, "ended": ended},
    )
