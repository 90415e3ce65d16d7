"""The one table that turns domain errors into HTTP answers: every error has a row, and each row says
the status, code, headers and field prefix a client sees."""

from __future__ import annotations

import inspect

import pytest

from loupe import errors
from loupe.api import errors as api_errors
from loupe.api.errors import MethodNotAllowed, RequestInvalid, error_envelope, error_headers, status_of
from loupe.errors import (
    DomainError,
    FieldIssue,
    InvalidInput,
    InvalidListQuery,
    MissingCredentials,
    RateLimited,
    ReferenceNotFound,
    TooManyAttempts,
    Unauthenticated,
)


def domain_error_classes() -> list[type[DomainError]]:
    found = {
        kind
        for module in (errors, api_errors)
        for _, kind in inspect.getmembers(module, inspect.isclass)
        if issubclass(kind, DomainError)
    }
    return sorted(found, key=lambda kind: kind.__name__)


@pytest.mark.parametrize("kind", domain_error_classes(), ids=lambda kind: kind.__name__)
def test_every_domain_error_has_its_own_row(kind: type[DomainError]) -> None:
    assert kind in api_errors.RENDERINGS


@pytest.mark.parametrize(
    ("error", "status", "code", "fields"),
    [
        (
            InvalidInput(issues=[FieldIssue("tiles.2", "overlaps tile 1")]),
            422,
            "validation_error",
            ["body.tiles.2"],
        ),
        (InvalidInput(issues=[FieldIssue("", "violates x_check")]), 422, "validation_error", ["body"]),
        (InvalidListQuery(issues=[FieldIssue("sort", "unknown")]), 422, "validation_error", ["query.sort"]),
        (
            ReferenceNotFound(issues=[FieldIssue("query_id", "not found")]),
            404,
            "not_found",
            ["body.query_id"],
        ),
        (
            RequestInvalid(issues=[FieldIssue("query.limit", "too big")]),
            422,
            "validation_error",
            ["query.limit"],
        ),
        (Unauthenticated(), 401, "unauthorized", None),
        (TooManyAttempts(retry_after_seconds=30), 429, "too_many_attempts", None),
    ],
)
def test_status_code_and_field_paths(
    error: DomainError, status: int, code: str, fields: list[str] | None
) -> None:
    assert status_of(error) == status
    body = error_envelope(error, "abc")["error"]
    assert body["code"] == code
    assert body["error_id"] == "abc"
    assert [detail["field"] for detail in body["details"]] if fields else "details" not in body


def test_headers_come_from_the_table() -> None:
    assert error_headers(RateLimited(retry_after_seconds=0)) == {"Retry-After": "1"}
    assert error_headers(MethodNotAllowed(["GET", "PATCH"])) == {"Allow": "GET, PATCH"}
    assert error_headers(MissingCredentials()) == {"WWW-Authenticate": 'Bearer realm="loupe"'}
    assert error_headers(Unauthenticated("The session has ended")) == {}
    assert error_headers(InvalidInput()) == {}
