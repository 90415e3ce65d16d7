"""Relative time ranges, one vocabulary for canvases and date-range parameters: each preset resolves to a
half-open range [from, to) in a time zone, at the moment it is used."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

TimePreset = Literal[
    "last_1h",
    "last_24h",
    "last_7d",
    "last_30d",
    "last_90d",
    "today",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "custom",
]
TIME_PRESETS: tuple[str, ...] = get_args(TimePreset)
# The rolling presets: this long back from the start of the current minute (so that two requests in one
# minute name one range: a run's values, and so its cache key, are the same).
ROLLING: dict[str, timedelta] = {
    "last_1h": timedelta(hours=1),
    "last_24h": timedelta(hours=24),
    "last_7d": timedelta(days=7),
    "last_30d": timedelta(days=30),
    "last_90d": timedelta(days=90),
}
PRESETS_DESCRIPTION = (
    "`last_1h`, `last_24h`, `last_7d`, `last_30d`, `last_90d` (up to the current minute), `today`,"
    " `this_month`,"
    " `last_month`, `this_quarter`, `last_quarter`, `this_year` (calendar periods in the organization's"
    " time zone), or `custom` with `from` and `to`"
)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _calendar(preset: str, today: date) -> tuple[date, date]:
    """The calendar period a preset names, as [first day, first day after)."""
    if preset == "today":
        return today, today + timedelta(days=1)
    if preset in ("this_month", "last_month"):
        start = _month_start(today, 1 if preset == "last_month" else 0)
        return start, _month_start(start, -1)
    if preset in ("this_quarter", "last_quarter"):
        quarter_start = _month_start(today, (today.month - 1) % 3)
        start = _month_start(quarter_start, 3) if preset == "last_quarter" else quarter_start
        return start, _month_start(start, -3)
    if preset == "this_year":
        return date(today.year, 1, 1), date(today.year + 1, 1, 1)
    raise ValueError(f"{preset} is not a calendar preset")


def resolve(preset: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range a (non-custom) preset names at `now`, as aware datetimes in `zone`: [from, to)."""
    local_now = now.astimezone(zone)
    if preset in ROLLING:
        minute = local_now.replace(second=0, microsecond=0)
        return minute - ROLLING[preset], minute
    first, after = _calendar(preset, local_now.date())
    return datetime.combine(first, time(), zone), datetime.combine(after, time(), zone)


def resolve_dates(preset: str, now: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The days a (non-custom) preset covers at `now` in `zone`, as [first day, first day after): a
    rolling range takes in the days it touches, today included."""
    start, end = resolve(preset, now, zone)
    if preset in ROLLING:
        return start.date(), end.date() + timedelta(days=1)
    return start.date(), end.date()
