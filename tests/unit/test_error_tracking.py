"""Optional Sentry reporting: off without a DSN (sentry-sdk not even imported for it); with one, an
unhandled API error is reported once with its error_id and fingerprint, its secrets masked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from infra.local.events import LocalLambdaContext, rest_api_event
from loupe import error_tracking
from loupe.api.resolver import LoupeRouter, create_app
from loupe.config import get_settings


class Recording(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
def sentry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    monkeypatch.setenv("LOUPE_SENTRY_DSN", "https://public@o0.ingest.example.invalid/1")
    get_settings.cache_clear()
    error_tracking.enabled.cache_clear()
    assert error_tracking.enabled()
    recording = Recording()
    sentry_sdk.get_client().transport = recording
    yield recording
    sentry_sdk.get_client().close()
    sentry_sdk.init()
    error_tracking.enabled.cache_clear()


def test_off_without_a_dsn() -> None:
    error_tracking.enabled.cache_clear()
    assert get_settings().sentry_dsn is None
    assert error_tracking.enabled() is False
    error_tracking.enabled.cache_clear()


def test_an_unhandled_error_is_reported_with_its_id_and_fingerprint_masked(sentry: Recording) -> None:
    router = LoupeRouter()

    @router.get("/explode", authenticated=False)
    def explode() -> dict[str, str]:
        raise RuntimeError("could not reach postgresql://app:hunter2@db/x")

    app = create_app(with_database=False)
    app.include_router(router)
    result = app.resolve(rest_api_event("GET", "/api/v1/explode"), LocalLambdaContext("test"))
    sentry_sdk.flush()

    assert result["statusCode"] == 500
    error_id = json.loads(result["body"])["error"]["error_id"]
    events: list[dict[str, Any]] = [
        item.payload.json for envelope in sentry.envelopes for item in envelope.items if item.type == "event"
    ]
    [event] = events
    assert event["tags"]["error_id"] == error_id
    assert event["tags"]["fingerprint"] == "GET /explode RuntimeError"
    assert event["fingerprint"] == ["GET /explode RuntimeError"]
    text = json.dumps(event)
    assert "hunter2" not in text
    assert "postgresql://app:****@db/x" in text
