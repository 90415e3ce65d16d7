"""Lambda entry point of the export function: consumes the exports queue in batches and reports the
messages to deliver again (partial batch response)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.entry.sqs import sqs_function
from loupe.services import exporter
from loupe.services.exports import export_settings


def execute(message: Mapping[str, Any], record: SQSRecord, context: LambdaContext) -> None:
    exporter.execute_export(UUID(message["export_id"]))


def exports_queues() -> list[str]:
    return [export_settings().queue_url]


lambda_handler = sqs_function(
    execute, log_keys=["export_id"], expected=(exporter.RetryLater,), backoff_queues=exports_queues
)
