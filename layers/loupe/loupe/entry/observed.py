"""What every entry point does around its handler: Powertools' logging context, tracing and metrics,
error tracking turned on at cold start, and the database connection let go of when configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe import db, error_tracking
from loupe.observability import logger, metrics, tracer

ResultT = TypeVar("ResultT")
Handler = Callable[[dict[str, Any], LambdaContext], ResultT]


def observed(handler: Handler[ResultT], correlation_id_path: str | None = None) -> Handler[ResultT]:
    """`handler` with the Lambda context in its log lines (and the correlation id found at
    `correlation_id_path` of the event), traced, and its metrics flushed after each invocation."""
    error_tracking.enabled()  # at cold start, so the Lambda integration wraps the first invocation too

    def released(event: dict[str, Any], context: LambdaContext) -> ResultT:
        try:
            return handler(event, context)
        finally:
            db.invocation_ended()

    decorated: Handler[ResultT] = logger.inject_lambda_context(correlation_id_path=correlation_id_path)(
        tracer.capture_lambda_handler(metrics.log_metrics(capture_cold_start_metric=True)(released))
    )
    return decorated
