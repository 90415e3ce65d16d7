"""The OpenAPI document: shared error responses, security schemes, and the whole-API document."""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Any

from loupe.models.common import ErrorEnvelope

API_TITLE = "Loupe API"
API_VERSION = "1.0.0"

AUTHENTICATED: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}]

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON or unsupported content type",
    401: "Missing, invalid, expired or revoked credentials",
    403: "The caller's role does not allow this",
    404: "No such resource in the caller's organization",
    405: "Method not allowed on this path",
    409: "Uniqueness or state conflict",
    410: "The run's stored result has expired (organization retention)",
    412: "If-Match does not match the current ETag",
    413: "Body over the size limit",
    422: "A field is invalid; details say which",
    429: "Over a limit; Retry-After says when to retry",
    500: "Internal error; the error_id is in the server log",
    503: "A dependency is unavailable",
}


def error_responses(statuses: tuple[int, ...]) -> dict[int, Any]:
    return {
        status: {
            "description": ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {"application/json": {"model": ErrorEnvelope}},
        }
        for status in sorted(set(statuses))
    }


def configure(app: Any) -> None:
    """Title, servers and security schemes for a resolver's document."""
    # Imported here: the OpenAPI models cost cold-start time that serving a request never needs.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer, Server

    app.configure_openapi(
        title=API_TITLE,
        version=API_VERSION,
        servers=[Server(url="/api/v1")],
        security_schemes={
            "bearerAuth": HTTPBearer(bearerFormat="JWT", description="An access token from /auth/login"),
            "apiKey": APIKey(name="X-API-Key", in_=APIKeyIn.header, description="An organization API key"),
        },
        description="Loupe: connect databases, run parameterized SQL, chart it, schedule it.",
    )


@functools.cache
def whole_api_document() -> str:
    """The document for every route of every function, built once per process from their routers."""
    from loupe.api.resolver import LoupeResolver
    from loupe.api.routes import all_routers

    app = LoupeResolver(cors=None, with_database=False)
    for router in all_routers():
        app.include_router(router)
    configure(app)
    return str(app.get_openapi_json_schema())
