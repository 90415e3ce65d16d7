"""Calls that must answer in time, whatever the code they call does (a webhook that trickles, a
migration stuck on a lock): the call runs on a worker thread, and its caller stops waiting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

ResultT = TypeVar("ResultT")


class Overran(Exception):
    """The call did not finish in time; it goes on in its thread, whose result nobody will read."""


def call_within(seconds: float, function: Callable[[], ResultT], name: str) -> ResultT:
    """`function()`'s result, or the exception it raised, in the caller's thread; Overran after
    `seconds`."""
    outcome: list[tuple[ResultT | None, BaseException | None]] = []

    def work() -> None:
        try:
            outcome.append((function(), None))
        except BaseException as error:  # raised again below, in the caller's thread
            outcome.append((None, error))

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise Overran(f"{name} did not finish within {seconds:g} s")
    result, error = outcome[0]
    if error is not None:
        raise error
    return result  # type: ignore[return-value]  # None only when `function` returned None
