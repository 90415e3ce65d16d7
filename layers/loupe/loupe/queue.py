"""The runs and exports queues: one SQS message per run (or export) to execute, carrying its id and the
request's correlation id so the function's logs join the request's."""

from __future__ import annotations

import functools
import json
from typing import Any
from uuid import UUID

from loupe.errors import DependencyUnavailable
from loupe.observability import logger


@functools.cache
def sqs_client() -> Any:
    """Created on first use (boto3 costs cold-start time); AWS_ENDPOINT_URL points it at moto locally."""
    import boto3

    return boto3.client("sqs")


def _message_body(run_id: UUID) -> str:
    """A run's message: its id, and the request's correlation id so the runner's logs join it."""
    return json.dumps({"run_id": str(run_id), "correlation_id": logger.get_correlation_id()})


def _send(queue_url: str, body: str, what: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs_client().send_message(QueueUrl=queue_url, MessageBody=body)
    except (BotoCoreError, ClientError) as error:
        logger.warning(f"{what}s queue unavailable", extra={"error_type": type(error).__name__})
        raise DependencyUnavailable(f"The {what} cannot be queued right now; try again shortly") from None


def send_run(queue_url: str, run_id: UUID) -> None:
    """Queue a run for the runner; a queue that cannot be reached is a 503 (the caller's transaction,
    and so the run, is rolled back)."""
    _send(queue_url, _message_body(run_id), "run")


def send_export(queue_url: str, export_id: UUID) -> None:
    """Queue an export for the export function, like a run (a 503 rolls the export back)."""
    body = json.dumps({"export_id": str(export_id), "correlation_id": logger.get_correlation_id()})
    _send(queue_url, body, "export")


# Every message a queue holds: waiting, taken by a function and not yet deleted, or delayed.
_HELD = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def messages_held(queue_url: str) -> int:
    """How many messages the queue holds (SQS's approximate counts, a minute behind at most)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = sqs_client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(_HELD))
    except (BotoCoreError, ClientError) as error:
        raise DependencyUnavailable("The queue cannot be read right now") from error
    return sum(int(found["Attributes"].get(name, 0)) for name in _HELD)


# A message handed back to the queue comes again after 2, 4, 8, ... seconds, not after the queue's
# visibility timeout (90 minutes for the runs queue, sized for the runner's longest run).
FIRST_RETRY_SECONDS = 2
MAX_RETRY_SECONDS = 300


def retry_delay_seconds(receive_count: int) -> int:
    delay: int = FIRST_RETRY_SECONDS * 2 ** max(0, receive_count - 1)
    return min(MAX_RETRY_SECONDS, delay)


def delay_redelivery(queue_url: str, receipt_handle: str, receive_count: int) -> None:
    """Make a message the handler is giving back visible again after the backoff for its receive count.
    Best effort: if the queue refuses, the message comes back after the visibility timeout instead."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sqs_client().change_message_visibility(
            QueueUrl=queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=retry_delay_seconds(receive_count),
        )
    except (BotoCoreError, ClientError) as error:
        logger.warning("cannot shorten the message's visibility", extra={"error_type": type(error).__name__})


# SendMessageBatch takes at most ten messages.
SEND_BATCH = 10


def send_runs(queue_url: str, run_ids: list[UUID]) -> list[UUID]:
    """Queue many runs, ten per request; returns the ones the queue accepted (the others stay in the
    outbox for the next try). A queue that cannot be reached accepts none."""
    from botocore.exceptions import BotoCoreError, ClientError

    sent: list[UUID] = []
    for start in range(0, len(run_ids), SEND_BATCH):
        batch = run_ids[start : start + SEND_BATCH]
        entries = [
            {"Id": str(index), "MessageBody": _message_body(run_id)} for index, run_id in enumerate(batch)
        ]
        try:
            answer = sqs_client().send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            logger.warning("runs queue unavailable", extra={"error_type": type(error).__name__})
            break
        sent.extend(batch[int(entry["Id"])] for entry in answer.get("Successful", []))
    return sent
