"""What every entry point does: once per process, freeze the cold start's objects; on each invocation,
trace without the response."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from infra.local.events import LocalLambdaContext
from loupe.entry.observed import observed
from loupe.observability import tracer


def test_the_first_entry_point_freezes_the_cold_start_and_no_later_one_does() -> None:
    # In a fresh interpreter: this one's first entry point was built by whichever test came first.
    script = (
        "import gc\n"
        "from loupe.entry.observed import observed\n"
        "before = gc.get_freeze_count()\n"
        "observed(lambda event, context: None)\n"
        "first = gc.get_freeze_count()\n"
        "waiting = [[number] for number in range(1000)]\n"
        "observed(lambda event, context: None)\n"
        "print(before, first, gc.get_freeze_count())\n"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    )
    before, first, second = map(int, finished.stdout.split()[-3:])
    assert first > before + 10_000  # the imports' objects
    assert second == first


def test_a_response_is_never_copied_into_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def add_response(*, method_name: str, data: Any, subsegment: Any, capture_response: bool) -> None:
        asked.append(capture_response)

    monkeypatch.setattr(tracer, "_add_response_as_metadata", add_response)
    token_pair = {"access_token": "eyJ.secret", "refresh_token": "lrt_secret"}
    assert observed(lambda event, context: token_pair)({}, LocalLambdaContext("observed")) == token_pair
    assert asked == [False]
