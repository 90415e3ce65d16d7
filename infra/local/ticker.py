"""Invokes a scheduled function every few seconds with the event an EventBridge schedule sends, as the
schedules in template.yaml do in AWS (the local stack's reaper, scheduler and janitor)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from infra.local.console import Console, Outcome
from infra.local.events import scheduled_event
from infra.local.invokers import FunctionError, Invoke


class Ticker:
    def __init__(
        self, function: str, invoke: Invoke, interval_seconds: float, console: Console | None = None
    ) -> None:
        self._function = function
        self._invoke = invoke  # the stack's: the function's own workers, as Lambda would run it
        self._interval = interval_seconds
        self._console = console
        self._rule_arn = f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{function}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._tick, name=f"ticker-{function}", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def tick_once(self) -> Any:
        event = scheduled_event(self._rule_arn)
        with (
            self._console.background(self._function, "schedule tick", event["id"])
            if self._console is not None
            else contextlib.nullcontext(Outcome())
        ) as outcome:
            counts = self._invoke(self._function, event)
            outcome.status = "ok"
            if isinstance(counts, Mapping):
                # A tick that found nothing to do is the idle stack's heartbeat: it prints nothing.
                outcome.details = " ".join(f"{name}={value}" for name, value in counts.items() if value)
                outcome.quiet = not outcome.details
        return counts

    def _tick(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.tick_once()
            except Exception as error:  # the schedule fires again next time, as EventBridge would
                # A failed invocation is on the console's line of its event already.
                if self._console is None or not isinstance(error, FunctionError):
                    print(f"{self._function} schedule: {type(error).__name__}: {error}", flush=True)
