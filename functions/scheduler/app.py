"""Lambda entry point of the scheduler, fired every minute by an EventBridge schedule: due schedules
become runs, and runs not yet queued are sent to the scheduled-runs queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.observability import logger, metrics, tracer
from loupe.services.scheduler import tick

# Kept back from the invocation's time for the outbox pass that follows the last batch.
OUTBOX_MARGIN = timedelta(seconds=15)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    deadline = now + timedelta(milliseconds=context.get_remaining_time_in_millis()) - OUTBOX_MARGIN
    counts = tick(now, deadline)
    totals = {"fired": counts.fired, "sent": counts.sent, "alerts_delivered": counts.alerts_delivered}
    logger.info("scheduler tick", extra={"scheduled_at": event.time, **totals})
    return totals
