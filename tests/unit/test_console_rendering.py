"""The local stack's console rendering: what of a function's output a person reads, and when a background
event prints at all."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest

from infra.local.console import END_OF_EVENT, JSON, TEXT, Console, WorkerOutput, capturing, log_format
from infra.local.invokers import FunctionError
from infra.local.ticker import Ticker

ERROR_RECORD = {
    "level": "ERROR",
    "message": "unhandled error",
    "error_id": "abc123",
    "fingerprint": "GET /x KeyError",
    "exception": 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: boom',
}
OUTPUT = [
    '{"level":"INFO","message":"request","correlation_id":"c1"}',
    '{"_aws":{"CloudWatchMetrics":[]},"Requests":[1.0]}',
    "/venv/metrics/base.py:213: UserWarning: No application metrics to publish.",
    "  self.flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)",
    json.dumps(ERROR_RECORD),
    "debug print",
]


def feed(output: WorkerOutput, lines: list[str]) -> None:
    """Lines as a worker writes them, then its end-of-event mark and its exit."""
    reader, writer = os.pipe()
    output.start(os.fdopen(reader, "rb"))
    with os.fdopen(writer, "wb") as pipe:
        pipe.write(b"".join(line.encode() + b"\n" for line in lines) + END_OF_EVENT)


def test_an_events_line_carries_its_error_id_traceback_and_prints_but_no_info_metrics_or_warnings() -> None:
    stream = io.StringIO()
    console = Console(TEXT, stream)
    output = WorkerOutput("QueriesFunction", console)
    with capturing() as capture:
        mark = output.begin()
        feed(output, OUTPUT)
        output.end(mark, timeout=10)
    console.request("QueriesFunction", "GET", "/api/v1/x", 500, 12.3, "c1", capture)
    head, *details = stream.getvalue().splitlines()
    assert head.endswith(" QueriesFunction GET /api/v1/x 500 12ms c1 error_id=abc123")
    assert details == [
        "    ERROR unhandled error fingerprint=GET /x KeyError",
        "    Traceback (most recent call last):",
        '      File "x.py", line 1',
        "    KeyError: boom",
        "    debug print",
    ]


def test_json_passes_every_line_through_as_it_comes() -> None:
    stream = io.StringIO()
    output = WorkerOutput("QueriesFunction", Console(JSON, stream))
    with capturing():
        mark = output.begin()
        feed(output, OUTPUT)
        output.end(mark, timeout=10)
    assert stream.getvalue().splitlines() == OUTPUT


def test_a_line_written_between_events_shows_only_what_reports_an_error() -> None:
    stream = io.StringIO()
    output = WorkerOutput("RunnerFunction", Console(TEXT, stream))
    feed(output, OUTPUT[:5])
    output.join(timeout=10)
    head, *details = stream.getvalue().splitlines()
    assert head.endswith(" RunnerFunction")
    assert details[0] == "    ERROR unhandled error fingerprint=GET /x KeyError"
    assert details[-1] == "    KeyError: boom"


def ticker(result: Any, stream: io.StringIO) -> Ticker:
    def invoke(function: str, event: dict[str, Any]) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    return Ticker("SchedulerFunction", invoke, 60, Console(TEXT, stream))


def test_a_tick_that_did_nothing_prints_nothing_and_one_that_did_prints_its_counts() -> None:
    stream = io.StringIO()
    ticker({"fired": 0, "sent": 0}, stream).tick_once()
    assert stream.getvalue() == ""
    ticker({"fired": 2, "sent": 0}, stream).tick_once()
    (line,) = stream.getvalue().splitlines()
    assert " SchedulerFunction schedule tick ok " in line
    assert line.endswith(" fired=2")


def test_a_failed_tick_prints_error_with_the_failure() -> None:
    stream = io.StringIO()
    with pytest.raises(FunctionError):
        ticker(FunctionError("SchedulerFunction: Task timed out after 60.00 seconds"), stream).tick_once()
    head, detail = stream.getvalue().splitlines()
    assert " SchedulerFunction schedule tick error " in head
    assert detail == "    SchedulerFunction: Task timed out after 60.00 seconds"


def test_the_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOUPE_LOG_FORMAT", raising=False)
    assert log_format() == TEXT
    monkeypatch.setenv("LOUPE_LOG_FORMAT", "JSON")
    assert log_format() == JSON
    monkeypatch.setenv("LOUPE_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match="LOUPE_LOG_FORMAT"):
        log_format()
