"""Relative time presets resolve to half-open ranges in a time zone: calendar periods across month,
quarter and year ends, rolling ranges up to now, and the days a rolling range touches."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from loupe.models.time_ranges import TIME_PRESETS, resolve, resolve_dates

BERLIN = ZoneInfo("Europe/Berlin")
# 23:30 UTC on the last day of a quarter is already the next quarter's first day in Berlin.
QUARTER_END = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("preset", "first", "after"),
    [
        ("today", date(2026, 4, 1), date(2026, 4, 2)),
        ("this_month", date(2026, 4, 1), date(2026, 5, 1)),
        ("last_month", date(2026, 3, 1), date(2026, 4, 1)),
        ("this_quarter", date(2026, 4, 1), date(2026, 7, 1)),
        ("last_quarter", date(2026, 1, 1), date(2026, 4, 1)),
        ("this_year", date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_calendar_presets_follow_the_time_zones_calendar(preset: str, first: date, after: date) -> None:
    assert resolve_dates(preset, QUARTER_END, BERLIN) == (first, after)
    start, end = resolve(preset, QUARTER_END, BERLIN)
    assert (start.date(), end.date(), start.hour, end.hour) == (first, after, 0, 0)
    assert start.tzinfo == end.tzinfo == BERLIN


def test_last_month_and_quarter_cross_the_year_end() -> None:
    january = datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert resolve_dates("last_month", january, ZoneInfo("UTC")) == (date(2025, 12, 1), date(2026, 1, 1))
    assert resolve_dates("last_quarter", january, ZoneInfo("UTC")) == (date(2025, 10, 1), date(2026, 1, 1))
    assert resolve_dates("this_quarter", datetime(2026, 12, 31, tzinfo=UTC), ZoneInfo("UTC")) == (
        date(2026, 10, 1),
        date(2027, 1, 1),
    )


def test_rolling_presets_end_now_and_their_days_include_today() -> None:
    now = datetime(2026, 12, 3, 8, 15, tzinfo=UTC)
    start, end = resolve("last_7d", now, BERLIN)
    assert end == now
    assert (end - start).days == 7
    assert resolve_dates("last_7d", now, BERLIN) == (date(2026, 11, 26), date(2026, 12, 4))
    start, end = resolve("last_1h", now, ZoneInfo("UTC"))
    assert (end - start).total_seconds() == 3600


def test_every_preset_but_custom_resolves_to_an_ordered_range() -> None:
    now = datetime(2026, 2, 28, 23, 59, tzinfo=UTC)
    for preset in TIME_PRESETS:
        if preset == "custom":
            continue
        start, end = resolve(preset, now, BERLIN)
        assert start < end, preset
        first, after = resolve_dates(preset, now, BERLIN)
        assert first < after, preset
