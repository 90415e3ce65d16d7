"""Cron schedules: next_run_at against an oracle that lists the named wall times itself, across the DST
changes of two zones; cron validation and the minimum interval."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loupe.config import ConfigurationError, get_settings
from loupe.errors import InvalidInput
from loupe.services.schedules import checked_cron, next_run_at

ZONES = ("Europe/Berlin", "America/New_York")
# The instants of 2026's DST changes in those zones (spring forward, fall back).
TRANSITIONS = (
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
)


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    """A wall time a clock in `zone` shows at some instant (not skipped by a spring-forward)."""
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def expected_next(minutes: set[int], hours: set[int], zone: ZoneInfo, after: datetime) -> datetime:
    """The earliest instant after `after` of a wall time the daily cron names, each mapped as PEP 495's
    fold=0 does: the first of a repeated time, and a skipped time shifted by the jump."""
    today = after.astimezone(zone).date()
    instants = [
        datetime.combine(today + timedelta(days=offset), time(hour, minute))
        .replace(tzinfo=zone)
        .astimezone(UTC)
        for offset in range(-1, 3)
        for hour in hours
        for minute in minutes
    ]
    return min(instant for instant in instants if instant > after)


near_transitions = st.builds(
    lambda transition, minutes: transition + timedelta(minutes=minutes),
    st.sampled_from(TRANSITIONS),
    st.integers(-26 * 60, 26 * 60),
)
# Hypothesis takes naive bounds and attaches the zone itself.
any_time = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001
    max_value=datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
# Hours 0-4 hold every DST change of both zones; the rest keep the rule honest elsewhere.
hour_sets = st.sets(st.one_of(st.integers(0, 4), st.integers(0, 23)), min_size=1, max_size=3)


@given(
    minutes=st.sets(st.integers(0, 59), min_size=1, max_size=3),
    hours=hour_sets,
    zone_name=st.sampled_from(ZONES),
    after=st.one_of(near_transitions, any_time),
)
def test_next_run_is_the_next_named_wall_time_in_utc(
    minutes: set[int], hours: set[int], zone_name: str, after: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    cron = f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * *"
    found = next_run_at(cron, zone_name, after)
    assert found.tzinfo is UTC
    assert found > after
    assert found == expected_next(minutes, hours, zone, after)
    local = found.astimezone(zone).replace(tzinfo=None)
    named = local if (local.hour in hours and local.minute in minutes) else local - timedelta(hours=1)
    assert (named.hour, named.minute) in {(hour, minute) for hour in hours for minute in minutes}
    # Off the named time only where that time did not exist that day.
    assert named == local or not exists(named, zone)


@given(zone_name=st.sampled_from(ZONES), after=near_transitions)
def test_each_named_time_fires_once_a_day(zone_name: str, after: datetime) -> None:
    first = next_run_at("30 1,2 * * *", zone_name, after)
    second = next_run_at("30 1,2 * * *", zone_name, first)
    third = next_run_at("30 1,2 * * *", zone_name, second)
    assert first < second < third
    assert third - first >= timedelta(hours=22)


def test_a_daily_time_keeps_its_wall_time_across_dst() -> None:
    new_york = "America/New_York"
    winter = next_run_at("0 9 * * *", new_york, datetime(2026, 3, 6, 15, 0, tzinfo=UTC))
    summer = next_run_at("0 9 * * *", new_york, winter)
    assert (winter, summer) == (
        datetime(2026, 3, 7, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 13, 0, tzinfo=UTC),
    )


def test_berlin_skipped_and_repeated_half_hours() -> None:
    berlin = "Europe/Berlin"
    # 02:30 does not exist on 29 March: it fires at 03:30 CEST.
    assert next_run_at("30 2 * * *", berlin, datetime(2026, 3, 28, 12, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October: it fires at the first, then the next day.
    first = next_run_at("30 2 * * *", berlin, datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_run_at("30 2 * * *", berlin, first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_next_run_is_in_the_future() -> None:
    now = datetime.now(UTC)
    assert now < next_run_at("*/5 * * * *", "Asia/Kolkata", now) <= now + timedelta(minutes=5)


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "cron", ["*/5 * * * *", "0 7 * * mon-fri", "0 0 29 2 *", "15 10 L * *", "0 9 * * 1#2"]
)
def test_valid_crons(cron: str) -> None:
    assert checked_cron(f" {cron} ", NOW) == cron


@pytest.mark.parametrize(
    "cron",
    [
        "*/4 * * * *",  # every 4 minutes
        "0,59 0,23 * * *",  # 23:59 then 00:00: one minute apart, only across midnight
        "0 7 * * * 2026",
        "0 7 * *",
        "0 25 * * *",
        "0 0 31 4 *",
        "hello world how are you",
    ],
)
def test_invalid_crons(cron: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        checked_cron(cron, NOW)
    assert raised.value.issues[0].field == "cron"


def test_minimum_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_SCHEDULE_MIN_INTERVAL_SECONDS", "3600")
    get_settings.cache_clear()
    assert checked_cron("0 * * * *", NOW) == "0 * * * *"
    with pytest.raises(InvalidInput):
        checked_cron("*/30 * * * *", NOW)
    for bad in ("59", "ten", ""):
        monkeypatch.setenv("LOUPE_SCHEDULE_MIN_INTERVAL_SECONDS", bad)
        get_settings.cache_clear()
        with pytest.raises(ConfigurationError):
            checked_cron("0 * * * *", NOW)
