"""Responses with the headers API.md asks for: Location on create, ETag / 304 on single reads."""

from __future__ import annotations

from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from loupe import etags
from loupe.api.context import current_request

ModelT = TypeVar("ModelT", bound=BaseModel)


def created(resource: ModelT, location: str) -> Response[ModelT]:
    return Response(
        status_code=201, content_type="application/json", body=resource, headers={"Location": location}
    )


def no_content() -> Response[None]:
    return Response(status_code=204)


def with_etag(resource: ModelT, etag: str) -> Response[Any]:
    """200 with the ETag, or an empty 304 when If-None-Match already names it."""
    if etags.not_modified(current_request().headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(status_code=200, content_type="application/json", body=resource, headers={"ETag": etag})


def versioned(resource: ModelT, etag: str) -> Response[ModelT]:
    """200 with the new ETag, after a write."""
    return Response(status_code=200, content_type="application/json", body=resource, headers={"ETag": etag})


def if_match() -> str | None:
    """The request's If-Match, for services to check against the row they are about to change."""
    return current_request().headers.get("if-match")
