"""How a client sees each domain error: status, error code, headers and where its fields are, in one table.

Also the two refusals only HTTP knows of (an unknown method on a route, an oversized body).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loupe.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    ExportTooLarge,
    InUse,
    InvalidInput,
    InvalidListQuery,
    InvalidRequest,
    LoginRefused,
    MissingCredentials,
    NotFound,
    NotPermitted,
    OptionsUnavailable,
    RateLimited,
    ReferenceNotFound,
    ResultExpired,
    RowsExceedFormat,
    RowTooLarge,
    TooManyAttempts,
    Unauthenticated,
    VersionMismatch,
)

# An error lists this many of what uses a resource; its message counts them all.
MAX_LISTED_DEPENDENTS = 100


class MethodNotAllowed(DomainError):
    """The path exists, but not with this method."""

    default_message = "Method not allowed"

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed
        super().__init__()


class NotAcceptable(DomainError):
    """The client's Accept header does not ask for the type the route would answer with."""

    default_message = "Not acceptable"


class PayloadTooLarge(DomainError):
    """The request body is over the function's limit."""

    default_message = "Request body too large"


def _retry_after(error: DomainError) -> dict[str, str]:
    assert isinstance(error, RateLimited | DependencyUnavailable)
    return {"Retry-After": str(error.retry_after_seconds)}


def _allow(error: DomainError) -> dict[str, str]:
    assert isinstance(error, MethodNotAllowed)
    return {"Allow": ", ".join(error.allowed)}


def _challenge(_: DomainError) -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="loupe"'}


@dataclass(frozen=True)
class Rendering:
    """How one kind of error is answered. `fields_in` is the part of the request its field issues
    refer to (`body`, `query`), prefixed to each field; None when its issues are not about fields."""

    status: int
    code: str
    fields_in: str | None = None
    headers: Callable[[DomainError], dict[str, str]] | None = None


# The most specific class an error is an instance of decides (see rendering_of).
RENDERINGS: dict[type[DomainError], Rendering] = {
    DomainError: Rendering(400, "bad_request"),
    InvalidRequest: Rendering(400, "bad_request"),
    Unauthenticated: Rendering(401, "unauthorized"),
    MissingCredentials: Rendering(401, "unauthorized", headers=_challenge),
    NotPermitted: Rendering(403, "forbidden"),
    NotFound: Rendering(404, "not_found"),
    ReferenceNotFound: Rendering(404, "not_found", fields_in="body"),
    MethodNotAllowed: Rendering(405, "method_not_allowed", headers=_allow),
    NotAcceptable: Rendering(406, "not_acceptable"),
    Conflict: Rendering(409, "conflict"),
    ExportTooLarge: Rendering(409, "export_too_large"),
    InUse: Rendering(409, "in_use"),
    OptionsUnavailable: Rendering(409, "options_unavailable"),
    ResultExpired: Rendering(410, "result_expired"),
    VersionMismatch: Rendering(412, "precondition_failed"),
    PayloadTooLarge: Rendering(413, "payload_too_large"),
    InvalidInput: Rendering(422, "validation_error", fields_in="body"),
    InvalidListQuery: Rendering(422, "validation_error", fields_in="query"),
    RowsExceedFormat: Rendering(422, "validation_error", fields_in="query"),
    LoginRefused: Rendering(422, "login_refused", fields_in="body"),
    RowTooLarge: Rendering(422, "row_too_large", fields_in="query"),
    RateLimited: Rendering(429, "rate_limited", headers=_retry_after),
    TooManyAttempts: Rendering(429, "too_many_attempts", headers=_retry_after),
    DependencyUnavailable: Rendering(503, "service_unavailable", headers=_retry_after),
}


def rendering_of(error: DomainError) -> Rendering:
    for kind in type(error).__mro__:
        rendering = RENDERINGS.get(kind)
        if rendering is not None:
            return rendering
    raise AssertionError("DomainError is in the table")  # pragma: no cover


def status_of(error: DomainError) -> int:
    return rendering_of(error).status


def error_envelope(error: DomainError, error_id: str) -> dict[str, Any]:
    """The documented `{"error": {...}}` body of a domain error."""
    rendering = rendering_of(error)
    payload: dict[str, Any] = {"code": rendering.code, "message": error.message, "error_id": error_id}
    if error.issues:
        payload["details"] = [
            {"field": _field_path(rendering.fields_in, issue.field), "issue": issue.issue}
            for issue in error.issues
        ]
    if isinstance(error, InUse):
        payload["dependents"] = [
            {"kind": dependent.kind, "id": str(dependent.id), "name": dependent.name}
            for dependent in error.dependents[:MAX_LISTED_DEPENDENTS]
        ]
    return {"error": payload}


def error_headers(error: DomainError) -> dict[str, str]:
    rendering = rendering_of(error)
    return rendering.headers(error) if rendering.headers else {}


def _field_path(fields_in: str | None, field: str) -> str:
    if fields_in is None:
        return field
    return f"{fields_in}.{field}" if field else fields_in


class RequestInvalid(DomainError):
    """The request does not match its route's declared shape; its issues name full paths
    (`body.name`, `query.limit`) as the validator reported them."""

    default_message = "Request validation failed"


RENDERINGS[RequestInvalid] = Rendering(422, "validation_error")
