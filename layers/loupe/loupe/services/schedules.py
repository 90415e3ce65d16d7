"""Schedules: a saved query of the caller's organization on a five-field cron read as wall time in an
IANA zone, no more often than the configured minimum interval, with values for its declared parameters."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from loupe import db, next_tick
from loupe.config import get_settings
from loupe.errors import FieldIssue, InvalidInput, ReferenceNotFound
from loupe.models.alerts import AlertFiringListQuery, AlertFiringOut
from loupe.models.common import Page
from loupe.models.identity import Principal
from loupe.models.runs import ScheduleRunListQuery, ScheduleRunOut
from loupe.models.schedules import ScheduleCreate, ScheduleOut, ScheduleUpdate
from loupe.repositories import crud, listing
from loupe.repositories.alerts import ALERT_FIRINGS
from loupe.repositories.queries import QUERIES
from loupe.repositories.runs import RUNS, RunRecord
from loupe.repositories.schedules import SCHEDULES
from loupe.services import alerts
from loupe.services.query_parameters import checked_parameters
from loupe.services.resources import ResourceService

# Gaps between this many consecutive firings are compared with the minimum interval.
FIRINGS_CHECKED = 24
# Longer than any clock change a time zone has made.
CLOCK_CHANGE_MARGIN = timedelta(hours=3)
CRON_FIELDS = "minute hour day-of-month month day-of-week"


def minimum_interval() -> timedelta:
    """The shortest gap allowed between two firings (LOUPE_SCHEDULE_MIN_INTERVAL_SECONDS)."""
    return timedelta(seconds=get_settings().schedule_min_interval_seconds)


def _cron_invalid(issue: str) -> InvalidInput:
    return InvalidInput("The cron expression is not valid", issues=[FieldIssue("cron", issue)])


def checked_cron(expression: str, now: datetime) -> str:
    """The expression with its fields single-spaced, once it has five valid fields, fires at all, and
    never fires twice within the minimum interval."""
    fields = expression.split()
    if len(fields) != 5:
        raise _cron_invalid(f"needs exactly five fields ({CRON_FIELDS}), not {len(fields)}")
    cron = " ".join(fields)
    if not croniter.is_valid(cron):
        raise _cron_invalid(f"not a valid cron expression ({CRON_FIELDS})")
    # Gaps are measured on plain wall times: they are the expression's own, whatever a zone's DST does.
    try:
        firings = list(
            itertools.islice(croniter(cron, now.replace(tzinfo=None)).all_next(datetime), FIRINGS_CHECKED)
        )
    except CroniterBadDateError:
        raise _cron_invalid("names no date that exists, so it never fires") from None
    shortest = min(later - earlier for earlier, later in itertools.pairwise(firings))
    minimum = minimum_interval()
    if shortest < minimum:
        raise _cron_invalid(
            f"fires {int(shortest.total_seconds())} s apart; the minimum is {int(minimum.total_seconds())} s"
        )
    return cron


def next_run_at(cron: str, timezone: str, after: datetime) -> datetime:
    """The first firing after `after` (an aware datetime), in UTC.

    The cron names wall times in `timezone`, and each fires once: a time that occurs twice when clocks
    go back fires at its first occurrence; a time skipped when they go forward fires where PEP 495
    places it, shifted by the jump (02:30 on a night that jumps from 02:00 to 03:00 fires at 03:30)."""
    zone = ZoneInfo(timezone)
    # Wall time and instants are out of step around a clock change: start the walk a clock change
    # earlier, so a skipped time that lands after `after` is seen, and pass over what is not after it.
    wall_times = croniter(cron, (after - CLOCK_CHANGE_MARGIN).astimezone(zone).replace(tzinfo=None))
    while True:
        instant: datetime = wall_times.get_next(datetime).replace(tzinfo=zone).astimezone(UTC)
        if instant > after:
            return instant


# What a bundle keeps of a schedule's alert rule: never its webhook (a secret), its destinations (the
# organization's own) or its muting, nor its id and state.
RULE_DEFINITION = ("name", "source", "column", "operator", "threshold")


class ScheduleService(ResourceService[ScheduleCreate, ScheduleUpdate, ScheduleOut]):
    def definition(self, principal: Principal, row: dict[str, Any]) -> dict[str, Any]:
        """What the schedule is set to do, less what running it changes (next and last run, failures)."""
        kept = ("name", "query_id", "cron", "timezone", "parameters", "enabled", "tags")
        return {
            **{name: row[name] for name in kept},
            "query_id": str(row["query_id"]),
            "alert_rules": [
                {name: rule.get(name) for name in RULE_DEFINITION} for rule in row["alert_rules"]
            ],
        }

    def to_out(self, row: dict[str, Any]) -> ScheduleOut:
        return ScheduleOut.model_validate(
            {**row, "alert_rules": alerts.rules_out(row["alert_rules"], row["alert_state"])}
        )

    def values_for_create(self, principal: Principal, body: ScheduleCreate) -> dict[str, Any]:
        now = datetime.now(UTC)
        cron = checked_cron(body.cron, now)
        declared = self._declared_parameters(principal, body.query_id)
        db.after_commit(next_tick.poke)
        return {
            **body.model_dump(),
            "alert_rules": alerts.checked_rules(principal.organization_id, body.alert_rules),
            "cron": cron,
            "parameters": checked_parameters(declared, body.parameters),
            "next_run_at": next_run_at(cron, body.timezone, now) if body.enabled else None,
        }

    def values_for_update(
        self, principal: Principal, body: ScheduleUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        values = body.model_dump(exclude_unset=True)
        if body.cron is not None:
            values["cron"] = checked_cron(body.cron, now)
        if body.alert_rules is not None:
            values["alert_rules"] = alerts.checked_rules(principal.organization_id, body.alert_rules)
            values["alert_state"] = alerts.kept_state(
                current["alert_rules"], values["alert_rules"], current["alert_state"]
            )
        after = {**current, **values}
        if body.query_id is not None or body.parameters is not None:
            # Kept values must fit a new query, and new values the kept one.
            declared = self._declared_parameters(principal, after["query_id"])
            values["parameters"] = checked_parameters(declared, after["parameters"])
        if any(after[name] != current[name] for name in ("cron", "timezone", "enabled")):
            values["next_run_at"] = (
                next_run_at(after["cron"], after["timezone"], now) if after["enabled"] else None
            )
            db.after_commit(next_tick.poke)
        if after["enabled"] and not current["enabled"]:
            # Enabled again by a person: the scheduler's record of why it gave up no longer applies.
            values.update(consecutive_failures=0, disabled_reason=None)
        return values

    def runs(
        self, principal: Principal, schedule_id: UUID, query: ScheduleRunListQuery
    ) -> Page[ScheduleRunOut]:
        """The runs the schedule started, newest first unless `sort` says otherwise."""
        with db.transaction():
            self._existing(principal, schedule_id)
            rows, total = listing.list_page(
                RUNS, principal.organization_id, query, schedule_id=schedule_id, status=query.status
            )
        return Page[ScheduleRunOut](
            items=[
                ScheduleRunOut.model_validate(RunRecord.from_row(row), from_attributes=True) for row in rows
            ],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )

    def alert_firings(
        self, principal: Principal, schedule_id: UUID, query: AlertFiringListQuery
    ) -> Page[AlertFiringOut]:
        """The schedule's alert firings, newest first unless `sort` says otherwise."""
        with db.transaction():
            self._existing(principal, schedule_id)
            rows, total = listing.list_page(
                ALERT_FIRINGS,
                principal.organization_id,
                query,
                schedule_id=schedule_id,
                rule_id=query.rule_id,
                kind=query.kind,
            )
        return Page[AlertFiringOut](
            items=[alerts.firing_out(row) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )

    @staticmethod
    def _declared_parameters(principal: Principal, query_id: UUID) -> list[dict[str, Any]]:
        query = crud.get(QUERIES, principal.organization_id, query_id)
        if query is None:
            raise ReferenceNotFound("No such query: query_id", issues=[FieldIssue("query_id", "not found")])
        declared: list[dict[str, Any]] = query["parameters"]
        return declared


schedules = ScheduleService(SCHEDULES, ScheduleOut, "schedule")
