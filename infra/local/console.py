"""The local stack's console: one readable line per request and background event, errors with their
error_id and traceback (LOUPE_LOG_FORMAT=text, the default), or the functions' raw lines (json)."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, TextIO

FORMAT_VARIABLE = "LOUPE_LOG_FORMAT"
TEXT = "text"
JSON = "json"
# A worker writes this after each event's output, before its answer (stdout and stderr share one pipe):
# every line before it belongs to that event. The record separators keep it apart from any real output.
END_OF_EVENT = b"\x1eloupe-local-end-of-event\x1e\n"
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
# What Python's warnings module prints (`file:line: Category: message`, then the source line indented).
WARNING_LINE = re.compile(r"^\S.*:\d+: \w*Warning: ")
# The fields of an error record worth reading beside its message.
ERROR_FIELDS = ("error_type", "code", "fingerprint", "run_id", "export_id", "message_id", "reason")
INDENT = "    "


def log_format() -> str:
    """LOUPE_LOG_FORMAT: `text` (readable lines) or `json` (the functions' lines as CloudWatch has them)."""
    value = (os.environ.get(FORMAT_VARIABLE) or TEXT).strip().lower()
    if value not in (TEXT, JSON):
        raise ValueError(f"{FORMAT_VARIABLE} must be {TEXT} or {JSON}")
    return value


class Capture:
    """What a worker wrote while it served one invocation's event, and what the stack noted of its failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._lines: list[str] = []
        self._failures: list[str] = []

    def add(self, line: str) -> bool:
        """Keep a line of the function's output; False once the event's line is out (the function outlived
        its request: a 504), so that the caller shows it apart."""
        with self._lock:
            if not self._closed:
                self._lines.append(line)
            return not self._closed

    def fail(self, message: str) -> bool:
        with self._lock:
            if not self._closed:
                self._failures.append(message)
            return not self._closed

    def close(self) -> tuple[list[str], list[str]]:
        """The lines and failures so far; what comes later is shown on its own."""
        with self._lock:
            self._closed = True
            return list(self._lines), list(self._failures)


_capture: ContextVar[Capture | None] = ContextVar("loupe_local_capture", default=None)


def current_capture() -> Capture | None:
    return _capture.get()


@contextmanager
def capturing() -> Iterator[Capture]:
    """Attribute what the functions invoked in the block (and the threads it starts with its context) write
    to one Capture."""
    capture = Capture()
    token = _capture.set(capture)
    try:
        yield capture
    finally:
        _capture.reset(token)


def note_failure(message: str) -> None:
    """What the stack knows of a failed invocation (a crash, a timeout): on the event's line, else stderr."""
    capture = _capture.get()
    if capture is None or not capture.fail(message):
        print(message, file=sys.stderr, flush=True)


def record_of(line: str) -> dict[str, Any] | None:
    """The JSON object a line holds (a Powertools log record, an EMF metrics blob), or None for plain text."""
    if not line.startswith("{"):
        return None
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def is_error(record: Mapping[str, Any]) -> bool:
    return str(record.get("level", "")).upper() in ERROR_LEVELS


@dataclass
class Outcome:
    """How a background event went, set by whoever invoked it: `status` for its line, `details` at its end
    (`fired=1`), and `quiet` for an event that did nothing (an idle schedule tick) and prints nothing."""

    status: str = "error"
    details: str = ""
    quiet: bool = False


class Console:
    """Where the local stack's events are written: `text` renders one line per event; `json` writes each
    line the functions wrote as it comes, and the stack's own notes of failures as JSON."""

    def __init__(self, log_format: str = TEXT, stream: TextIO | None = None) -> None:
        if log_format not in (TEXT, JSON):
            raise ValueError(f"unknown log format {log_format!r}")
        self.structured = log_format == JSON
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Console:
        return cls(log_format())

    def write(self, text: str) -> None:
        with self._lock:
            stream = self._stream or sys.stdout  # looked up now: tests and pytest swap sys.stdout
            stream.write(text + "\n")
            stream.flush()

    def function_line(self, function: str, line: str, capture: Capture | None) -> None:
        """A line a function's worker wrote: kept for the event it serves, or shown now."""
        if self.structured:
            self.write(line)
        elif capture is None or not capture.add(line):
            self._stray(function, line)

    def worker_started(self, function: str, pid: int, elapsed_ms: float) -> None:
        """A cold start (the function's init, as Lambda's INIT phase)."""
        if self.structured:
            note = {"message": "worker initialized", "function_name": function, "pid": pid}
            self.write(json.dumps(note | {"init_duration_ms": round(elapsed_ms, 2)}))
        else:
            self.write(f"{function}: worker {pid} initialized in {elapsed_ms:.0f}ms")

    def request(
        self,
        function: str,
        method: str,
        path: str,
        status: int,
        elapsed_ms: float,
        correlation_id: str,
        capture: Capture,
    ) -> None:
        """One HTTP request through the gateway: its line, and the errors the function logged for it."""
        what = f"{function} {method} {path}"
        self._event(what, str(status), status >= 500, elapsed_ms, correlation_id, capture)

    @contextmanager
    def background(self, function: str, kind: str, correlation_id: str) -> Iterator[Outcome]:
        """The block invokes `function` for one background event (`sqs 1 record`, `schedule tick`) and sets
        the Outcome it yields; the event's line is written when the block ends, an exception counting as
        a failed invocation."""
        outcome = Outcome()
        started = time.perf_counter()
        with capturing() as capture:
            try:
                yield outcome
            except Exception as error:
                outcome.status, outcome.quiet = "error", False
                capture.fail(str(error))
                raise
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                failed = outcome.status == "error"
                self._event(
                    f"{function} {kind}", outcome.status, failed, elapsed, correlation_id, capture, outcome
                )

    def _event(
        self,
        what: str,
        status: str,
        failed: bool,
        elapsed_ms: float,
        correlation_id: str,
        capture: Capture,
        outcome: Outcome | None = None,
    ) -> None:
        lines, failures = capture.close()
        if self.structured:
            for failure in failures:
                self.write(json.dumps({"level": "ERROR", "message": failure, "source": "local-stack"}))
            return
        details, error_ids = _details(lines)
        if outcome is not None and outcome.quiet and not (details or failures or failed):
            return
        head = f"{time.strftime('%H:%M:%S')} {what} {status} {elapsed_ms:.0f}ms {correlation_id}"
        head += f" {outcome.details}" if outcome is not None and outcome.details else ""
        head += "".join(f" error_id={error_id}" for error_id in error_ids)
        self.write("\n".join([head, *(INDENT + line for line in [*details, *failures])]))

    def _stray(self, function: str, line: str) -> None:
        """A line written outside any event's line (at the stack's start, or by a worker between events)."""
        details, _ = _details([line])
        if details:
            self.write("\n".join([f"{time.strftime('%H:%M:%S')} {function}", *(INDENT + d for d in details)]))


def _details(lines: list[str]) -> tuple[list[str], list[str]]:
    """What a person should read of a function's output: its error records (message, fields, traceback)
    and its plain lines (prints, tracebacks); info records and metrics are left out. And the error ids."""
    details: list[str] = []
    error_ids: list[str] = []
    for line in lines:
        record = record_of(line)
        if record is None:
            details.append(line)
            continue
        if not is_error(record):
            continue
        error_id = record.get("error_id")
        if error_id and str(error_id) not in error_ids:
            error_ids.append(str(error_id))
        fields = " ".join(f"{name}={record[name]}" for name in ERROR_FIELDS if record.get(name))
        details.append(f"{record.get('level')} {record.get('message')}" + (f" {fields}" if fields else ""))
        exception = record.get("exception")
        if exception:
            details.extend(str(exception).splitlines())
    return details, error_ids


class WorkerOutput:
    """A worker's stdout and stderr (one pipe), read on a thread of its own: the lines it writes while it
    serves an event go to the Capture of the invocation that sent it, others to the console as they come."""

    def __init__(self, function: str, console: Console) -> None:
        self._function = function
        self._console = console
        self._changed = threading.Condition()
        self._capture: Capture | None = None
        self._ends = 0
        self._closed = False
        self._in_warning = False
        self._thread: threading.Thread | None = None

    def begin(self) -> int:
        """Attribute what follows to the calling invocation; returns the end-of-event mark that ends it."""
        with self._changed:
            self._capture = current_capture()
            return self._ends + 1

    def end(self, mark: int, timeout: float) -> None:
        """Wait for the worker's `mark` (or its exit), then attribute no more lines to the event."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._ends >= mark, timeout)
            self._capture = None

    def start(self, pipe: IO[bytes]) -> None:
        self._thread = threading.Thread(
            target=self._read, args=(pipe,), name=f"{self._function}-output", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _read(self, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in pipe:
                ended = raw.endswith(END_OF_EVENT)
                text = raw[: -len(END_OF_EVENT)] if ended else raw
                if text:
                    self._line(text.decode("utf-8", "replace").rstrip("\r\n"))
                if ended:
                    with self._changed:
                        self._ends += 1
                        self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _line(self, line: str) -> None:
        if not self._console.structured:
            # Python's warnings (Powertools' "No application metrics to publish" on every event of a
            # function without metrics) are noise on a readable console; json keeps them.
            if WARNING_LINE.match(line):
                self._in_warning = True
                return
            if self._in_warning and line.startswith("  "):
                return
            self._in_warning = False
        with self._changed:
            capture = self._capture
        self._console.function_line(self._function, line, capture)
