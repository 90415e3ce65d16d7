"""Invokes a scheduled function every few seconds with the event an EventBridge schedule sends, as the
schedules in template.yaml do in AWS (the local stack's reaper, scheduler and janitor)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from infra.local.events import LocalLambdaContext, scheduled_event
from infra.local.gateway import function_limits

Handler = Callable[[dict[str, Any], LocalLambdaContext], Any]


class Ticker:
    def __init__(
        self,
        function: str,
        handler: Handler,
        serving: Callable[[str], AbstractContextManager[None]],
        interval_seconds: float,
    ) -> None:
        self._function = function
        self._handler = handler
        self._serving = serving  # the gateway's: one event at a time per function, as in Lambda
        self._interval = interval_seconds
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
        timeout, memory = function_limits(self._function)
        with self._serving(self._function):
            return self._handler(
                scheduled_event(self._rule_arn), LocalLambdaContext(self._function, timeout, memory)
            )

    def _tick(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.tick_once()
            except Exception as error:  # the schedule fires again next time, as EventBridge would
                print(f"{self._function} schedule: {type(error).__name__}: {error}", flush=True)
