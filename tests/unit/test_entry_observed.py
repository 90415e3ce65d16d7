"""What every entry point does once per process: the cold start's objects are frozen out of the collector."""

from __future__ import annotations

import gc
from typing import Any

from loupe.entry.observed import observed


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
