"""Builds the Lambda entry point of a function an SQS queue feeds in batches: a partial batch response
(only the messages that failed come again), the message's correlation id and keys in every log line,
and a failed message handed back after a backoff rather than the queue's visibility timeout."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe import error_tracking, queue
from loupe.entry.observed import Handler, observed
from loupe.observability import logger

# A message's handler gets its JSON body (empty when the body is not a JSON object), the record, and
# the invocation's context for the time left.
RecordHandler = Callable[[Mapping[str, Any], SQSRecord, LambdaContext], None]


def message_of(record: SQSRecord) -> Mapping[str, Any]:
    try:
        message = json.loads(record.body)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def queue_url_of(record: SQSRecord, queue_urls: Sequence[str]) -> str:
    """The URL, among `queue_urls`, of the queue the record came from (the first when none matches)."""
    name = record.event_source_arn.rsplit(":", 1)[-1]
    return next((url for url in queue_urls if url.rsplit("/", 1)[-1] == name), queue_urls[0])


def sqs_function(
    record_handler: RecordHandler,
    *,
    log_keys: Sequence[str] = (),
    expected: tuple[type[Exception], ...] = (),
    backoff_queues: Callable[[], Sequence[str]] | None = None,
) -> Handler[PartialItemFailureResponse]:
    """The decorated `lambda_handler` calling `record_handler` once per message.

    The message's `log_keys` join its log lines. A message whose handler raises is reported failed (an
    `expected` error is logged at info, any other with its traceback and to error tracking); with
    `backoff_queues` (the URLs of the queues the function reads) it comes again after the backoff for
    its receive count (loupe.queue), on the queue it came from."""
    # A batch that failed whole is reported like any other (every message listed), not raised: the queue
    # redelivers exactly the listed messages either way, and the invocation is not logged as an error.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
        message = message_of(record)
        logger.set_correlation_id(message.get("correlation_id"))
        keys = {key: message[key] for key in log_keys if key in message}
        logger.append_keys(message_id=record.message_id, **keys)
        try:
            record_handler(message, record, lambda_context)
        except Exception as error:
            handed_back = "; handed back to the queue" if backoff_queues is not None else ""
            if isinstance(error, expected):
                logger.info(f"message not processed{handed_back}", extra={"reason": str(error)})
            else:
                logger.exception(f"message failed unexpectedly{handed_back}")
                error_tracking.report(error, record.message_id, f"{logger.service} {type(error).__name__}")
            if backoff_queues is not None:
                receive_count = int(record.attributes.approximate_receive_count or 1)
                queue_url = queue_url_of(record, backoff_queues())
                queue.delay_redelivery(queue_url, record.receipt_handle, receive_count)
            raise
        finally:
            logger.remove_keys(["message_id", *keys])

    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )

    return observed(lambda_handler)
