"""Builds a function's Lambda entry point from its router, with logging, tracing and metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe import error_tracking
from loupe.api.resolver import LoupeResolver, LoupeRouter, RequestGate, create_app
from loupe.observability import logger, metrics, tracer

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def http_function(
    *routers: LoupeRouter, with_database: bool = True, request_gate: RequestGate | None = None
) -> tuple[LoupeResolver, Handler]:
    """The resolver serving `routers`, and the decorated `lambda_handler` that feeds it events.

    The function's own resolver carries no OpenAPI metadata: the health function serves the document
    of every route (loupe.api.openapi.whole_api_document)."""
    app = create_app(with_database=with_database, request_gate=request_gate)
    error_tracking.enabled()  # at cold start, so the Lambda integration wraps the first invocation too
    for router in routers:
        app.include_router(router)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return app, lambda_handler
