"""What every entry point does around its handler: Powertools' logging context, tracing and metrics,
error tracking turned on at cold start, and the database connection let go of when configured."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe import db, error_tracking
from loupe.observability import logger, metrics, tracer

ResultT = TypeVar("ResultT")
Handler = Callable[[dict[str, Any], LambdaContext], ResultT]


def observed(handler: Handler[ResultT]) -> Handler[ResultT]:
    """`handler` with the Lambda context in its log lines, traced, and its metrics flushed after each
    invocation. Each kind of entry point sets its own correlation id (a request's, a message's)."""
    error_tracking.enabled()  # at cold start, so the Lambda integration wraps the first invocation too

    def released(event: dict[str, Any], context: LambdaContext) -> ResultT:
        try:
            return handler(event, context)
        finally:
            db.invocation_ended()

    # A response is the client's data (tokens at login, a page of a query's rows): the trace gets its
    # timing, never a copy of it (Powertools would add each response to the segment's metadata).
    traced = tracer.capture_lambda_handler(capture_response=False)
    decorated: Handler[ResultT] = logger.inject_lambda_context(
        traced(metrics.log_metrics(capture_cold_start_metric=True)(released))
    )
    _freeze_the_cold_start()
    return decorated


@functools.cache
def _freeze_the_cold_start() -> None:
    """What the cold start imported lives as long as the process: out of the collector's sight, a full
    collection no longer walks it (a pause in a warm request), nor does the interpreter's exit. Once per
    process: a later freeze would keep whatever garbage was waiting for a collection."""
    gc.freeze()
