"""Builds the Lambda entry point of a function API Gateway invokes, from its routers."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from loupe.api.resolver import LoupeResolver, LoupeRouter, RequestGate, create_app
from loupe.entry.observed import Handler, observed


def http_function(
    *routers: LoupeRouter, with_database: bool = True, request_gate: RequestGate | None = None
) -> tuple[LoupeResolver, Handler[dict[str, Any]]]:
    """The resolver serving `routers`, and the decorated `lambda_handler` that feeds it events.

    The function's own resolver carries no OpenAPI metadata: the health function serves the document
    of every route (loupe.api.openapi.whole_api_document)."""
    app = create_app(with_database=with_database, request_gate=request_gate)
    for router in routers:
        app.include_router(router)

    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return app, observed(lambda_handler)
