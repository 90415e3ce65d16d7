"""Lambda entry point of the dead-letter consumer: a run (or export) whose message its function failed on
too many times ends `failed` (code `delivery_failed`) instead of staying queued or running for ever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.entry.sqs import sqs_function
from loupe.observability import logger
from loupe.services import dead_letters


def fail_undelivered(message: Mapping[str, Any], record: SQSRecord, context: LambdaContext) -> None:
    if "export_id" in message:
        try:
            export_id = UUID(message["export_id"])
        except (ValueError, TypeError):
            logger.error("dead letter with a malformed export id")
            return
        dead_letters.fail_undelivered_export(export_id, record.attributes.approximate_receive_count)
        return
    try:
        run_id = UUID(message["run_id"])
    except (ValueError, KeyError, TypeError):
        # Nothing names a run: keeping the message would only bring it back.
        logger.error("dead letter without a run id")
        return
    dead_letters.fail_undelivered(run_id, record.attributes.approximate_receive_count)


lambda_handler = sqs_function(fail_undelivered)
