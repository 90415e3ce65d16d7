"""Lambda entry point of the runner: consumes the runs queue in batches and reports the messages to
deliver again (partial batch response), so one transient failure does not repeat the whole batch."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe import error_tracking, queue
from loupe.observability import logger, metrics, tracer
from loupe.services import runner
from loupe.services.runs import run_settings

# A batch that failed whole is reported like any other (every message listed), not raised: the queue
# redelivers exactly the listed messages either way, and the invocation is not logged as an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _queue_url(queue_arn: str) -> str:
    """The URL of the queue the record came from (the interactive or the scheduled runs' queue)."""
    settings = run_settings()
    if queue_arn.rsplit(":", 1)[-1] == settings.scheduled_queue_url.rsplit("/", 1)[-1]:
        return settings.scheduled_queue_url
    return settings.queue_url


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    message = json.loads(record.body)
    logger.set_correlation_id(message.get("correlation_id"))
    logger.append_keys(run_id=message["run_id"], message_id=record.message_id)
    try:
        runner.execute_run(UUID(message["run_id"]), lambda_context.get_remaining_time_in_millis())
    except Exception as error:
        # Handed back, expected (RetryLater) or not: either way it comes again after a backoff, not after
        # the queue's visibility timeout.
        if isinstance(error, runner.RetryLater):
            logger.info("run handed back to the queue", extra={"reason": str(error)})
        else:
            logger.exception("run failed unexpectedly; handed back to the queue")
            error_tracking.report(error, record.message_id, f"runner {type(error).__name__}")
        receive_count = int(record.attributes.approximate_receive_count or 1)
        queue_url = _queue_url(record.event_source_arn)
        queue.delay_redelivery(queue_url, record.receipt_handle, receive_count)
        raise
    finally:
        logger.remove_keys(["run_id", "message_id"])


error_tracking.enabled()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
