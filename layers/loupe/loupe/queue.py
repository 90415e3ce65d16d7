"""The runs queue: one SQS message per run to execute, carrying the run id and the request's
correlation id so the runner's logs join the request's."""

from __future__ import annotations

import functools
import json
from typing import Any
from uuid import UUID

from loupe.errors import ServiceUnavailable
from loupe.observability import logger


@functools.cache
def sqs_client() -> Any:
    """Created on first use (boto3 costs cold-start time); AWS_ENDPOINT_URL points it at moto locally."""
    import boto3

    return boto3.client("sqs")


def send_run(queue_url: str, run_id: UUID) -> None:
    """Queue a run for the runner; a queue that cannot be reached is a 503 (the caller's transaction,
    and so the run, is rolled back)."""
    from botocore.exceptions import BotoCoreError, ClientError

    body = {"run_id": str(run_id), "correlation_id": logger.get_correlation_id()}
    try:
        sqs_client().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    except (BotoCoreError, ClientError) as error:
        logger.warning("runs queue unavailable", extra={"error_type": type(error).__name__})
        raise ServiceUnavailable("The run cannot be queued right now; try again shortly") from None
