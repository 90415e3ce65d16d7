"""Responses with the headers API.md asks for: Location on create, ETag / 304 on single reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from loupe.api.context import current_request
from loupe.api.etags import etag_of, expected_versions, not_modified
from loupe.versions import ExpectedVersions, version_of_content

ModelT = TypeVar("ModelT", bound=BaseModel)


def created(resource: ModelT, location: str) -> Response[ModelT]:
    return Response(
        status_code=201, content_type="application/json", body=resource, headers={"Location": location}
    )


def accepted(new: bool, resource: ModelT, location: str) -> Response[ModelT]:
    """202 for work queued, 200 for a resource found instead (a cached run, an existing export)."""
    return Response(
        status_code=202 if new else 200,
        content_type="application/json",
        body=resource,
        headers={"Location": location},
    )


def no_content() -> Response[None]:
    return Response(status_code=204)


def with_etag(resource: BaseModel, version: str) -> Response[Any]:
    """200 with the version's ETag, or an empty 304 when If-None-Match already names it."""
    return _conditional(lambda: resource.model_dump_json(by_alias=True), version)


def with_content_etag(resource: BaseModel) -> Response[Any]:
    """`with_etag` for what has no change time of its own: its version hashes its JSON."""
    body = resource.model_dump_json(by_alias=True)
    return _conditional(lambda: body, version_of_content(body))


def _conditional(body: Callable[[], str], version: str) -> Response[Any]:
    # The body is the resource's JSON, written once by pydantic: a route answering Response[Any] would
    # have Powertools turn the model into a dict, then the dict into JSON.
    etag = etag_of(version)
    if not_modified(current_request().headers.get("if-none-match"), version):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(status_code=200, content_type="application/json", body=body(), headers={"ETag": etag})


def versioned(resource: ModelT, version: str) -> Response[ModelT]:
    """200 with the new version's ETag, after a write."""
    return Response(
        status_code=200, content_type="application/json", body=resource, headers={"ETag": etag_of(version)}
    )


def if_match() -> ExpectedVersions:
    """The versions the request's If-Match accepts, for services to check against the row they are about
    to change."""
    return expected_versions(current_request().headers.get("if-match"))
