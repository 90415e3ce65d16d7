"""Lambda entry point of the runner: consumes the runs queues in batches and reports the messages to
deliver again (partial batch response), so one transient failure does not repeat the whole batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.entry.sqs import sqs_function
from loupe.services import runner
from loupe.services.runs import run_settings


def execute(message: Mapping[str, Any], record: SQSRecord, context: LambdaContext) -> None:
    runner.execute_run(UUID(message["run_id"]), context.get_remaining_time_in_millis())


def runs_queues() -> list[str]:
    # A run handed back is delayed on the queue it came from: the interactive or the scheduled one.
    settings = run_settings()
    return [settings.queue_url, settings.scheduled_queue_url]


lambda_handler = sqs_function(
    execute, log_keys=["run_id"], expected=(runner.RetryLater,), backoff_queues=runs_queues
)
