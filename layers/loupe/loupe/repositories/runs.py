"""Runs in the metadata database: listing, the count of active runs per user and per API key, the cache
lookup, and the runner's state transitions (claim with a lease, release for a retry, finish once)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, Self
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from loupe.connectors import DatasourceType
from loupe.db import execute, execute_many, fetch_all, fetch_one
from loupe.models.common import ListQuery
from loupe.models.runs import ACTIVE_STATUSES, PrincipalKind, RunOrigin, RunPrincipal, RunStatus
from loupe.repositories import crud
from loupe.repositories.listing import Collection, list_page

RUNS = Collection(
    table="runs",
    columns=(
        "id",
        "query_id",
        "datasource_id",
        "status",
        "error",
        "row_count",
        "byte_size",
        "truncated",
        "created_at",
        "started_at",
        "finished_at",
        "created_by",
        "result_location",
        "schedule_id",
        "parameters",
        "query_revision",
        "origin",
        "api_key_id",
        "sql",
        "notices",
        "policy_key",
    ),
    sortable=frozenset({"status", "created_at", "started_at", "finished_at"}),
    writable=frozenset(
        {
            "query_id",
            "schedule_id",
            "datasource_id",
            "sql",
            "parameters",
            "cache_key",
            "status",
            "error",
            "enqueued_at",
            "finished_at",
            "created_by",
            "api_key_id",
            "parameter_types",
            "query_revision",
            "origin",
            "row_filters",
            "claims",
            "policy_key",
            "embed_token_id",
        }
    ),
    json_columns=frozenset({"parameters", "parameter_types", "error", "row_filters", "claims"}),
    default_sort="-created_at",
    searchable=("sql",),
    tagged=False,
    filters=frozenset({"schedule_id", "query_id", "status"}),
)


@dataclass(frozen=True)
class RunRecord:
    """A run as the API shows it: the columns of RUNS."""

    id: UUID
    query_id: UUID | None
    datasource_id: UUID
    status: RunStatus
    error: dict[str, str] | None
    row_count: int | None
    byte_size: int | None
    truncated: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_by: UUID | None
    result_location: str | None
    schedule_id: UUID | None
    parameters: dict[str, Any]
    query_revision: int | None
    origin: RunOrigin
    api_key_id: UUID | None
    sql: str
    notices: list[str]
    # The row policies and claims it ran under, digested (None: none applied): who may read its rows.
    policy_key: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        values = {field.name: row[field.name] for field in fields(cls)}
        return cls(**{**values, "status": RunStatus(row["status"]), "origin": RunOrigin(row["origin"])})

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)

    @property
    def principal(self) -> RunPrincipal | None:
        """Who started it: the API key when one did, else the user; None once that user is deleted."""
        if self.api_key_id is not None:
            return RunPrincipal(kind=PrincipalKind.API_KEY, id=self.api_key_id)
        if self.created_by is not None:
            return RunPrincipal(kind=PrincipalKind.USER, id=self.created_by)
        return None

    @property
    def results_expired(self) -> bool:
        """It succeeded, but its stored result is gone (organization retention)."""
        return self.status is RunStatus.SUCCEEDED and self.result_location is None


@dataclass(frozen=True)
class ClaimedRun:
    """A run a runner has claimed: what it needs to execute it, and its organization's settings."""

    id: UUID
    organization_id: UUID
    datasource_id: UUID
    query_id: UUID | None
    schedule_id: UUID | None
    sql: str
    parameters: dict[str, Any]
    # Each saved-query parameter's declared type, by name (empty for an editor's SQL).
    parameter_types: dict[str, str]
    # The claim's number, which fences `finish` and `release`.
    attempts: int
    enqueued_at: datetime | None
    started_at: datetime
    datasource_type: DatasourceType
    # The functions the datasource's admin allows beyond the SQL guard's own.
    allowed_functions: list[str]
    organization_settings: dict[str, Any]
    # The row policies ({schema, table, predicate}) its SQL is rewritten with, and the claims they bind.
    row_filters: list[dict[str, str]]
    claims: dict[str, Any]


@dataclass(frozen=True)
class ScheduledRunRef:
    """A run, and the schedule that started it (None for a person's run)."""

    id: UUID
    schedule_id: UUID | None


@dataclass(frozen=True)
class LapsedRun:
    """A run left `running` past its lease."""

    id: UUID
    schedule_id: UUID | None
    origin: RunOrigin
    attempts: int
    cancel_requested_at: datetime | None


@dataclass(frozen=True)
class RunMoment:
    """What a waiting request watches of a run: its status, and when it last changed."""

    id: UUID
    status: RunStatus
    changed_at: datetime


def moments(organization_id: UUID, run_ids: list[UUID]) -> list[RunMoment]:
    """The organization's runs among the ids, by primary key and without their SQL or parameters: a long
    poll asks for them every half second."""
    rows = fetch_all(
        "SELECT id, status, COALESCE(finished_at, started_at, created_at) AS changed_at FROM runs"
        " WHERE organization_id = %s AND id = ANY(%s)",
        (organization_id, run_ids),
    )
    return [RunMoment(row["id"], RunStatus(row["status"]), row["changed_at"]) for row in rows]


# Whom a run counts against in the active-run limit: the user who started it, or the API key.
RunStarter = Literal["created_by", "api_key_id", "embed_token_id"]


def lock_runs_of(starter: RunStarter, starter_id: UUID) -> None:
    """Serialize run creation per user or per API key until the transaction ends, so two requests
    cannot both pass the active-run limit."""
    execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"runs:{starter}:{starter_id}",))


def active_count(organization_id: UUID, starter: RunStarter, starter_id: UUID) -> int:
    row = fetch_one(
        sql.SQL(
            "SELECT count(*) AS active FROM runs WHERE organization_id = %s AND {} = %s AND status = ANY(%s)"
        ).format(sql.Identifier(starter)),
        (organization_id, starter_id, list(ACTIVE_STATUSES)),
    )
    assert row is not None
    return int(row["active"])


def get(organization_id: UUID, run_id: UUID) -> RunRecord | None:
    row = crud.get(RUNS, organization_id, run_id)
    return RunRecord.from_row(row) if row is not None else None


def newest_succeeded(organization_id: UUID, cache_key: str, finished_after: datetime) -> UUID | None:
    """The id of the newest succeeded run with this cache key finished after the given time."""
    row = fetch_one(
        "SELECT id FROM runs WHERE organization_id = %s AND cache_key = %s AND status = 'succeeded'"
        " AND finished_at > %s AND result_location IS NOT NULL ORDER BY finished_at DESC LIMIT 1",
        (organization_id, cache_key, finished_after),
    )
    return row["id"] if row is not None else None


def list_runs(
    organization_id: UUID, query: ListQuery, *, search_adhoc: bool, **equals: Any
) -> tuple[list[dict[str, Any]], int]:
    """A page of runs; without `search_adhoc`, a text search matches saved queries' runs only (the
    reader may not see an editor's ad-hoc SQL, so may not search it either)."""
    narrowed = None if search_adhoc else sql.SQL("query_id IS NOT NULL")
    return list_page(RUNS, organization_id, query, search_only_where=narrowed, **equals)


def latest_columns(query_ids: list[UUID]) -> dict[UUID, list[str]]:
    """The column names of each query's newest succeeded run that recorded them (queries never run, or
    only before columns were recorded, are absent); the queries' own tenancy has been checked."""
    rows = fetch_all(
        "SELECT DISTINCT ON (query_id) query_id, result_columns FROM runs"
        " WHERE query_id = ANY(%s) AND status = 'succeeded' AND result_columns IS NOT NULL"
        " ORDER BY query_id, finished_at DESC",
        (query_ids,),
    )
    return {row["query_id"]: [column["name"] for column in row["result_columns"]] for row in rows}


def latest_stored(
    query_id: UUID, parameters: Mapping[str, Any], policy_key: str | None
) -> dict[str, Any] | None:
    """The id and finish time of the query's newest succeeded run whose result is still stored, that ran
    with exactly these values for these parameters (others may have had any value) under the row
    policies `policy_key` digests (None: none)."""
    # Each value compared whole: containment (`@>`) would take a run for ['US', 'FR'] as one for ['US'].
    same_values = sql.SQL("").join(
        sql.SQL(" AND parameters -> {} = {}").format(sql.Literal(name), sql.Placeholder())
        for name in parameters
    )
    return fetch_one(
        sql.SQL(
            "SELECT id, finished_at FROM runs WHERE query_id = %s AND status = 'succeeded'"
            " AND result_location IS NOT NULL AND policy_key IS NOT DISTINCT FROM %s{same_values}"
            " ORDER BY finished_at DESC, id LIMIT 1"
        ).format(same_values=same_values),
        (query_id, policy_key, *(Jsonb(value) for value in parameters.values())),
    )


def latest_succeeded(query_id: UUID) -> dict[str, Any] | None:
    """The id, finish time and row count of the query's newest succeeded run, if any (the query's
    own tenancy has been checked: ids are unique across organizations)."""
    return fetch_one(
        "SELECT id, finished_at, row_count FROM runs WHERE query_id = %s AND status = 'succeeded'"
        " ORDER BY finished_at DESC, id LIMIT 1",
        (query_id,),
    )


def claim(run_id: UUID, lease_seconds: int) -> ClaimedRun | None:
    """queued → running, or take over a running run whose lease lapsed (unless its cancel was asked
    for); None when neither applies (another delivery has it or it is finished). The row's `attempts`
    afterwards fences `finish` and `release`. The organization's settings come along: they bound the
    run's time, rows and cost."""
    row = fetch_one(
        "UPDATE runs SET status = 'running', attempts = runs.attempts + 1, started_at = now(),"
        " lease_expires_at = now() + make_interval(secs => %s)"
        " FROM datasources, organizations"
        " WHERE runs.id = %s AND datasources.id = runs.datasource_id"
        " AND organizations.id = runs.organization_id"
        " AND (runs.status = 'queued' OR (runs.status = 'running'"
        " AND runs.lease_expires_at < now() AND runs.cancel_requested_at IS NULL))"
        " RETURNING runs.id, runs.organization_id, runs.datasource_id, runs.query_id, runs.schedule_id,"
        " runs.sql, runs.parameters, runs.parameter_types, runs.attempts, runs.enqueued_at, runs.started_at,"
        " datasources.type AS datasource_type, datasources.allowed_functions,"
        " organizations.settings AS organization_settings, runs.row_filters, runs.claims",
        (lease_seconds, run_id),
    )
    return ClaimedRun(**row) if row is not None else None


def cancel_requested(run_id: UUID) -> bool:
    row = fetch_one("SELECT cancel_requested_at FROM runs WHERE id = %s", (run_id,))
    return row is not None and row["cancel_requested_at"] is not None


def request_cancel(run_id: UUID, error: dict[str, str]) -> bool:
    """A queued run ends cancelled at once; a running one is marked for its runner's watchdog. One
    statement, so a runner claiming the run at the same moment either sees the mark or never starts
    it. False when the run has already finished."""
    found = fetch_one(
        "UPDATE runs SET"
        " error = CASE WHEN status = 'queued' THEN %s ELSE error END,"
        " finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,"
        " status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,"
        " cancel_requested_at = coalesce(cancel_requested_at, now())"
        " WHERE id = %s AND status = ANY(%s) RETURNING id",
        (Jsonb(error), run_id, list(ACTIVE_STATUSES)),
    )
    return found is not None


def fail_active(run_id: UUID, error: dict[str, str]) -> ScheduledRunRef | None:
    """A queued or running run ends `failed` with `error`; None when it had already finished."""
    row = fetch_one(
        "UPDATE runs SET status = 'failed', error = %s, finished_at = greatest(now(), started_at),"
        " lease_expires_at = NULL WHERE id = %s AND status = ANY(%s) RETURNING id, schedule_id",
        (Jsonb(error), run_id, list(ACTIVE_STATUSES)),
    )
    return ScheduledRunRef(**row) if row is not None else None


def insert_queued(runs: list[dict[str, Any]]) -> None:
    """Queued runs with no message sent yet (the scheduler's outbox), in one pipelined statement."""
    execute_many(
        "INSERT INTO runs (organization_id, query_id, schedule_id, datasource_id, sql, parameters,"
        " parameter_types, query_revision, origin, cache_key, created_by, row_filters, claims, policy_key,"
        " status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'queued')",
        [
            (
                run["organization_id"],
                run["query_id"],
                run["schedule_id"],
                run["datasource_id"],
                run["sql"],
                Jsonb(run["parameters"]),
                Jsonb(run["parameter_types"]),
                run["query_revision"],
                run["origin"],
                run["cache_key"],
                run["created_by"],
                Jsonb(run["row_filters"]),
                Jsonb(run["claims"]),
                run["policy_key"],
            )
            for run in runs
        ],
    )


def unsent(limit: int) -> list[ScheduledRunRef]:
    """Queued runs whose message is not sent yet (the scheduler's outbox), oldest first, locked; rows
    another tick holds are skipped."""
    rows = fetch_all(
        "SELECT id, schedule_id FROM runs WHERE enqueued_at IS NULL AND status = 'queued'"
        " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [ScheduledRunRef(**row) for row in rows]


def any_unsent() -> bool:
    row = fetch_one(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE enqueued_at IS NULL AND status = 'queued') AS found"
    )
    return bool(row and row["found"])


def mark_sent(run_ids: list[UUID], now: datetime) -> None:
    if run_ids:
        execute("UPDATE runs SET enqueued_at = %s WHERE id = ANY(%s)", (now, run_ids))


def exists(run_id: UUID) -> bool:
    return fetch_one("SELECT 1 AS found FROM runs WHERE id = %s", (run_id,)) is not None


def release(run_id: UUID, attempt: int, cancelled: dict[str, str]) -> None:
    """Back to queued, so the queue's next delivery of the message can claim it again; a run whose
    cancel was asked for ends `cancelled` (with the error `cancelled`) instead."""
    execute(
        "UPDATE runs SET"
        " status = CASE WHEN cancel_requested_at IS NULL THEN 'queued' ELSE 'cancelled' END,"
        " error = CASE WHEN cancel_requested_at IS NULL THEN error ELSE %s END,"
        " finished_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE now() END,"
        " started_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE started_at END,"
        " lease_expires_at = NULL"
        " WHERE id = %s AND status = 'running' AND attempts = %s",
        (Jsonb(cancelled), run_id, attempt),
    )


def finish(
    run_id: UUID,
    attempt: int,
    status: RunStatus,
    *,
    error: dict[str, str] | None = None,
    row_count: int | None = None,
    byte_size: int | None = None,
    truncated: bool = False,
    result_location: str | None = None,
    notices: list[str] | None = None,
    result_columns: list[dict[str, str]] | None = None,
) -> bool:
    """Record the outcome of the claim `attempt`; False when that claim was lost (nothing is changed)."""
    return (
        execute(
            "UPDATE runs SET status = %s, error = %s, row_count = %s, byte_size = %s, truncated = %s,"
            " result_location = %s, notices = %s, result_columns = %s, finished_at = now(),"
            " lease_expires_at = NULL WHERE id = %s AND status = 'running' AND attempts = %s",
            (
                status,
                Jsonb(error) if error is not None else None,
                row_count,
                byte_size,
                truncated,
                result_location,
                Jsonb(notices or []),
                Jsonb(result_columns) if result_columns is not None else None,
                run_id,
                attempt,
            ),
        )
        > 0
    )


def lapsed(now: datetime, limit: int) -> list[LapsedRun]:
    """Runs left `running` past their lease, oldest first, locked; rows another transaction holds are
    skipped, not waited for."""
    rows = fetch_all(
        "SELECT id, schedule_id, origin, attempts, cancel_requested_at FROM runs"
        " WHERE status = 'running' AND lease_expires_at < %s"
        " ORDER BY lease_expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    )
    return [LapsedRun(**{**row, "origin": RunOrigin(row["origin"])}) for row in rows]


def requeue(run_ids: list[UUID], now: datetime) -> None:
    if run_ids:
        execute(
            "UPDATE runs SET status = 'queued', enqueued_at = %s, started_at = NULL, lease_expires_at = NULL"
            " WHERE id = ANY(%s)",
            (now, run_ids),
        )


def expire(run_ids: list[UUID], status: RunStatus, error: dict[str, str], now: datetime) -> None:
    if run_ids:
        execute(
            "UPDATE runs SET status = %s, error = %s, finished_at = %s, lease_expires_at = NULL"
            " WHERE id = ANY(%s)",
            (status, Jsonb(error), now, run_ids),
        )
