"""Lambda entry point of the runs dead-letter consumer: a run whose message the runner failed on too
many times ends `failed` (code `delivery_failed`) instead of staying queued or running for ever."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe import error_tracking
from loupe.observability import logger, metrics, tracer
from loupe.services import dead_letters

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    try:
        message = json.loads(record.body)
        run_id = UUID(message["run_id"])
    except (ValueError, KeyError, TypeError):
        # Nothing names a run: keeping the message would only bring it back.
        logger.error("dead letter without a run id", extra={"message_id": record.message_id})
        return
    logger.set_correlation_id(message.get("correlation_id"))
    dead_letters.fail_undelivered(run_id, record.attributes.approximate_receive_count)


error_tracking.enabled()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
