"""Lambda entry point of the lease reaper, fired by an EventBridge schedule: runs whose runner stopped
mid-run (their lease lapsed) go back to the queue, or fail once they have used up their attempts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.observability import logger, metrics, tracer
from loupe.services.reaper import reap


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    counts = reap(datetime.now(UTC))
    metrics.add_metric(name="RunsRequeued", unit=MetricUnit.Count, value=counts.requeued)
    metrics.add_metric(name="RunsExpired", unit=MetricUnit.Count, value=counts.failed + counts.cancelled)
    logger.info("reaped lapsed runs", extra={"scheduled_at": event.time, **counts.__dict__})
    return {"requeued": counts.requeued, "failed": counts.failed, "cancelled": counts.cancelled}
