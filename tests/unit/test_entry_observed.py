"""What every entry point does: once per process, freeze the cold start's objects; on each invocation,
trace without the response."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from infra.local.events import LocalLambdaContext
from loupe.entry.observed import observed
from loupe.observability import tracer


def handler(event: dict[str, Any], context: Any) -> None:
    return None


def test_the_first_entry_point_freezes_the_cold_start_and_no_later_one_does() -> None:
    observed(handler)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    waiting = [[number] for number in range(1_000)]  # tracked objects a second freeze would take
    observed(handler)
    assert gc.get_freeze_count() == frozen
    assert waiting


def test_a_response_is_never_copied_into_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def add_response(*, method_name: str, data: Any, subsegment: Any, capture_response: bool) -> None:
        asked.append(capture_response)

    monkeypatch.setattr(tracer, "_add_response_as_metadata", add_response)
    token_pair = {"access_token": "eyJ.secret", "refresh_token": "lrt_secret"}
    assert observed(lambda event, context: token_pair)({}, LocalLambdaContext("observed")) == token_pair
    assert asked == [False]
