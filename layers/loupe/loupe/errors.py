"""Domain errors with their HTTP status and API error code; the resolver renders them as the envelope.

Services raise these; they know the code a client sees but nothing of events or responses.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """An error a client is meant to see, in the documented `{"error": {...}}` shape."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or []
        self.headers = headers or {}
        # Some rejections must still persist what led to them (a failed login attempt, a session
        # revoked for token reuse): the unit of work commits before the error is rendered.
        self.keep_changes = keep_changes
        super().__init__(self.message)


class BadRequest(ApiError):
    status = 400
    code = "bad_request"
    default_message = "Bad request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    default_message = "Authentication required"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    default_message = "Your role does not allow this"


class NotFound(ApiError):
    status = 404
    code = "not_found"
    default_message = "Not found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"
    default_message = "Method not allowed"


class Conflict(ApiError):
    status = 409
    code = "conflict"
    default_message = "Conflict"


class ResultExpired(ApiError):
    status = 410
    code = "result_expired"
    default_message = "The result has expired"


class PreconditionFailed(ApiError):
    status = 412
    code = "precondition_failed"
    default_message = "The resource has changed since it was read"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    default_message = "Request body too large"


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"
    default_message = "Request validation failed"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    default_message = "Too many requests"

    def __init__(
        self, message: str | None = None, *, retry_after_seconds: int, keep_changes: bool = False
    ) -> None:
        self.retry_after_seconds = max(1, retry_after_seconds)
        super().__init__(
            message, headers={"Retry-After": str(self.retry_after_seconds)}, keep_changes=keep_changes
        )


class TooManyAttempts(RateLimited):
    code = "too_many_attempts"
    default_message = "Too many failed attempts; try again later"


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    default_message = "A dependency is unavailable; try again shortly"
