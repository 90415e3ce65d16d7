"""The log masking: what it hides, in text and in structured fields, and what it leaves readable."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from loupe.observability import MaskingFormatter
from loupe.security.redaction import MASK, MaskingFilter, mask, mask_text

MASKED_TEXTS = [
    ("postgresql://app:s3cret@db:5432/x", "postgresql://app:****@db:5432/x"),
    ("mysql://root:pa@ss@h/db", "mysql://root:****@h/db"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ****"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x here", "token **** here"),
    ("refresh lrt_Vq7nR2xK9mB4tW8cJ1y and key lk_abcdef123", "refresh lrt_**** and key lk_****"),
    ("reset lpr_3kT9wQ2mZ7xV1cB8nR4yH6", "reset lpr_****"),
    ("host=db password=hunter2 dbname=x", "host=db password=**** dbname=x"),
    ('{"api_key": "lk_zzzzzzzz", "secret": "x1"}', '{"api_key": "****", "secret": "****"}'),
]


@pytest.mark.parametrize(("text", "expected"), MASKED_TEXTS)
def test_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "run finished in 412 ms",
        "postgresql://reader@db:5432/sample",
        "https://hooks.example.com/path?x=1",
        "schedule 6e8a0c2e-4f6b-4d8f-a0c2-e4f6a8b0c2d4 disabled",
        "token_type Bearer",
    ],
)
def test_harmless_text_is_kept(text: str) -> None:
    assert mask_text(text) == text


def test_fields() -> None:
    record: dict[str, Any] = {
        "password": "p",
        "refresh_token": "lrt_x",
        "connection_string": "postgresql://u:p@h/d",
        "headers": {"Authorization": "Bearer x", "X-Api-Key": "lk_123"},
        "token_type": "Bearer",
        "api_key_id": "5f1c2e8a",
        "status": 401,
        "error": ValueError("password=hunter2"),
        "none": None,
    }
    assert mask(record) == {
        "password": MASK,
        "refresh_token": MASK,
        "connection_string": MASK,
        "headers": {"Authorization": MASK, "X-Api-Key": MASK},
        "token_type": "Bearer",
        "api_key_id": "5f1c2e8a",
        "status": 401,
        "error": "password=****",
        "none": None,
    }


def test_the_filter_masks_message_arguments_and_traceback() -> None:
    try:
        raise RuntimeError("dsn postgresql://u:hunter2@h/d")
    except RuntimeError:
        record = logging.LogRecord("lib", logging.ERROR, __file__, 1, "using %s", ("password=hunter2",), None)
        import sys

        record.exc_info = sys.exc_info()
    assert MaskingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "hunter2" not in formatted
    assert "using password=****" in formatted
    assert "postgresql://u:****@h/d" in formatted


HARMLESS_RECORDS: list[dict[str, Any]] = [
    {"message": "request", "route": "GET /auth/me", "status": 200, "duration_ms": 1.5, "user_id": "5f1c2e8a"},
    {"message": "run finished", "rows": 10, "url": "https://hooks.example.com/path?x=1", "none": None},
    {"message": "caf\u00e9 \u2603", "nested": {"list": [1, 2.5, True, "x"]}, "tuple": ("a", "b")},
    # Keys that only look sensitive: searched, walked, and kept.
    {"message": "x", "token_type": "Bearer", "api_key_id": "5f1c2e8a"},
]
SECRET_RECORDS: list[dict[str, Any]] = [
    *({"message": "failed", "detail": text} for text, _ in MASKED_TEXTS),
    *({"message": "failed", "detail": ["first", {"deep": text}]} for text, _ in MASKED_TEXTS),
    {"message": "x", "credential": "abc"},
    {"message": "x", "headers": {"Cookie": "session=1", "authorization": "Basic Zm9v"}},
    {"message": "x", "sentry_dsn": "https://key@o1.ingest.sentry.io/1"},
    {"message": "caf\u00e9\tBearer abc.def", "error": ValueError("password=hunter2")},
    {"message": "x", "detail": "TO\u212aEN=abc"},  # a Kelvin sign: "token" to a case-blind search
]


@pytest.mark.parametrize("record", HARMLESS_RECORDS + SECRET_RECORDS)
def test_a_log_line_is_the_masked_record_serialized(record: dict[str, Any]) -> None:
    # The formatter skips the walk for a line with nothing to mask: its output must not change for that.
    formatter = MaskingFormatter()
    written = formatter.serialize(record)  # type: ignore[arg-type]
    assert written == LambdaPowertoolsFormatter.serialize(formatter, mask(record))
    assert "hunter2" not in written
    assert "s3cret" not in written


@pytest.mark.parametrize("record", SECRET_RECORDS)
def test_a_line_with_something_to_mask_is_masked(record: dict[str, Any]) -> None:
    formatter = MaskingFormatter()
    assert formatter.serialize(record) != LambdaPowertoolsFormatter.serialize(formatter, record)  # type: ignore[arg-type]
