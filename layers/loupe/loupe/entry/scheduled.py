"""Builds the Lambda entry point of a function an EventBridge schedule fires (scheduler, reaper,
janitor): a deadline inside the invocation, one summary log line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.entry.observed import Handler, observed
from loupe.observability import logger

# A job gets the time of the invocation and the moment it must stop starting new work; it returns
# what it counted, which is logged and returned.
Job = Callable[[datetime, datetime], Mapping[str, int]]


def scheduled_function(job: Job, summary: str, stop_margin: timedelta) -> Handler[dict[str, int]]:
    """The decorated `lambda_handler` running `job` once per event, stopping `stop_margin` before the
    invocation's time is up."""

    @event_source(data_class=EventBridgeEvent)
    def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, int]:
        now = datetime.now(UTC)
        deadline = now + timedelta(milliseconds=context.get_remaining_time_in_millis()) - stop_margin
        counts = dict(job(now, deadline))
        logger.info(summary, extra={"scheduled_at": event.time, **counts})
        return counts

    return observed(lambda_handler)
