"""Executes one queued run: claim it, guard its SQL, bind its values in the connector's style, stream its
rows from the datasource into S3 within the run's limits, record the outcome once.

Permanent failures (the guard, the cost guard, the datasource's own errors, a limit) end the run;
transient ones (the datasource or a dependency unreachable) put it back in the queue by raising
`RetryLater`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from loupe import db, run_claims
from loupe.config import get_settings
from loupe.connectors import (
    DatasourceType,
    Limits,
    QueryCancelled,
    QueryFailed,
    QueryTimedOut,
    RowStream,
    Session,
    engine,
)
from loupe.errors import DependencyUnavailable, NotFound
from loupe.models.organizations import OrganizationSettings
from loupe.models.runs import RunStatus
from loupe.observability import logger, metrics
from loupe.repositories import runs as runs_repository
from loupe.repositories.runs import ClaimedRun
from loupe.results.store import Manifest, ResultTooLarge, ResultWriter, json_row, manifest_key
from loupe.security import sql_guard
from loupe.security.row_policies import Effective, TableName
from loupe.services import alerts, query_parameters, scheduler
from loupe.services.alerts import Observation
from loupe.services.datasources import (
    DatasourceUnconfigured,
    DatasourceUnreachable,
    LoginNotAdmitted,
    admit_run,
    session,
)
from loupe.services.run_watchdog import RunWatchdog
from loupe.services.runs import CANCELLED, compiled, guarded, run_settings

# Seconds kept back from the statement for claiming, storing the rows and recording the outcome.
RESERVED_SECONDS = 20
# The lease outlives the invocation by this much, so a live run is never taken over.
LEASE_MARGIN_SECONDS = 30
# A run whose datasource stays unreachable this many times fails instead of going back to the queue.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 10


class RetryLater(Exception):
    """The run could not execute now; the message is to be delivered again."""


class RunEnded(Exception):
    """The run ends without a result: `status` and the error to record."""

    def __init__(self, status: RunStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"code": code, "message": message}


@dataclass(frozen=True)
class RunBounds:
    """What one run may use: the organization's settings within the service's own ceilings."""

    statement_seconds: int
    max_rows: int
    max_bytes: int
    max_cost: float | None


def execute_run(run_id: UUID, remaining_ms: int) -> None:
    """Execute a run once, whatever the number of deliveries of its message."""
    remaining_seconds = remaining_ms // 1000
    with db.transaction():
        # Looked for before the claim: the request that created the run sends its message before it
        # commits. Seen first, the run is committed, so a claim that then finds nothing means another
        # delivery has it or it is finished. (The other order could miss a run committed between the
        # two statements and drop its message, leaving the run queued for ever.)
        if not runs_repository.exists(run_id):
            raise RetryLater("the run is not visible yet")
        claimed = runs_repository.claim(run_id, remaining_seconds + LEASE_MARGIN_SECONDS)
    if claimed is None:
        logger.info("run already claimed or finished", extra={"run_id": str(run_id)})
        return
    run_claims.claimed(datetime.now(UTC))
    attempt = claimed.attempts
    _log_started(claimed)
    try:
        _run_claimed(claimed, attempt, _bounds(claimed, remaining_seconds - RESERVED_SECONDS))
    except Exception:
        # Whatever stopped it, the run goes back to queued so the next delivery can claim it.
        with db.transaction():
            runs_repository.release(run_id, attempt, CANCELLED)
        raise


def _bounds(claimed: ClaimedRun, seconds_left: int) -> RunBounds:
    organization = OrganizationSettings.model_validate(claimed.organization_settings)
    settings = run_settings()
    return RunBounds(
        statement_seconds=min(organization.query_timeout_seconds, seconds_left),
        max_rows=min(organization.max_rows_per_run, settings.max_rows),
        max_bytes=settings.max_result_bytes,
        max_cost=organization.max_query_cost,
    )


def _run_claimed(claimed: ClaimedRun, attempt: int, bounds: RunBounds) -> None:
    run_id = claimed.id
    if bounds.statement_seconds < 1:
        raise RetryLater("too little time left in this invocation")
    try:
        manifest, observation, notices = _execute(claimed, bounds)
    except RunEnded as ended:
        _finish(claimed, attempt, ended.status, ended.error)
    except sql_guard.SqlNotAllowed as error:
        _finish(
            claimed,
            attempt,
            RunStatus.FAILED,
            {"code": sql_guard.SqlNotAllowed.code, "message": error.reason},
        )
    except QueryTimedOut as error:
        _finish(claimed, attempt, RunStatus.TIMED_OUT, {"code": "statement_timeout", "message": str(error)})
    except QueryCancelled as error:
        _finish(claimed, attempt, RunStatus.CANCELLED, {"code": "cancelled", "message": str(error)})
    except ResultTooLarge as error:
        _finish(claimed, attempt, RunStatus.FAILED, {"code": "result_too_large", "message": str(error)})
    except QueryFailed as error:
        _finish(claimed, attempt, RunStatus.FAILED, {"code": "query_failed", "message": str(error)})
    except NotFound:
        # Deleting a datasource deletes its runs: there is nothing left to record.
        logger.info("the run's datasource is gone", extra={"run_id": str(run_id)})
    except DatasourceUnconfigured as error:
        _finish(
            claimed, attempt, RunStatus.FAILED, {"code": "datasource_unconfigured", "message": str(error)}
        )
    except (DatasourceUnreachable, DependencyUnavailable) as error:
        message = str(error) if isinstance(error, DatasourceUnreachable) else error.message
        if attempt < MAX_ATTEMPTS:
            raise RetryLater(message) from error
        _finish(claimed, attempt, RunStatus.FAILED, {"code": "datasource_unreachable", "message": message})
    else:
        notice = None
        if manifest.truncated:
            kept = bounds.max_rows
            notice = {
                "code": "row_limit",
                "message": f"The result has more than {kept} rows: the first {kept} are kept",
            }
        _finish(
            claimed,
            attempt,
            RunStatus.SUCCEEDED,
            notice,
            observation=observation,
            row_count=manifest.row_count,
            byte_size=manifest.byte_size,
            truncated=manifest.truncated,
            result_location=manifest_key(claimed.organization_id, run_id),
            notices=notices,
            result_columns=[{"name": column.name, "type": column.type} for column in manifest.columns],
        )


def _execute(claimed: ClaimedRun, bounds: RunBounds) -> tuple[Manifest, Observation, list[str]]:
    kind = claimed.datasource_type
    text, flat = compiled(
        claimed.sql, kind, query_parameters.typed_values(claimed.parameters, claimed.parameter_types)
    )
    policy = Effective.from_stored(claimed.row_filters, claimed.claims)
    allowed = frozenset(claimed.allowed_functions)
    # Refused before connecting when the guard or the rewriter would refuse it anyway.
    guarded(text, kind, allowed, policy)
    limits = Limits(
        connect_timeout_seconds=min(CONNECT_TIMEOUT_SECONDS, bounds.statement_seconds),
        statement_timeout_seconds=bounds.statement_seconds,
    )
    deadline = time.monotonic() + bounds.statement_seconds
    with session(claimed.organization_id, claimed.datasource_id, at_most=limits) as opened:
        try:
            admit_run(claimed.organization_id, claimed.datasource_id, opened)
        except LoginNotAdmitted as refused:
            raise RunEnded(RunStatus.FAILED, "login_refused", str(refused)) from None
        statement, names, claims = guarded(
            text, kind, allowed, policy, _unfiltered_readers(opened, kind, policy)
        )
        bound = {**flat, **claims}
        values = {name: bound.get(name) for name in names}
        if bounds.max_cost is not None:
            _check_cost(opened, statement, values, bounds.max_cost)
        poll_seconds = get_settings().run_cancel_poll_seconds
        with (
            RunWatchdog(claimed.id, opened, deadline, poll_seconds) as watchdog,
            opened.stream(statement, values) as rows,
        ):
            try:
                manifest, observation = _store(claimed, rows, bounds, watchdog)
                return manifest, observation, opened.notices()
            except QueryCancelled:
                if watchdog.reason == "timeout":
                    raise _timed_out(bounds) from None
                raise


def _unfiltered_readers(opened: Session, kind: DatasourceType, policy: Effective) -> frozenset[TableName]:
    """The relations that read a policy's table without its policy: views over it and its children, as
    the datasource's catalog says now, less those that carry a policy of this run's own."""
    tables = {row_filter.table for row_filter in policy.filters}
    query = engine(kind).dependents_sql
    found: set[TableName] = set()
    for table in tables if query else ():
        with opened.stream(query, {"schema": table.schema, "name": table.name}) as rows:
            for batch in rows.batches:
                found.update(TableName.from_catalog(str(schema), str(name), kind) for schema, name in batch)
    return frozenset(found - tables)


def _check_cost(opened: Session, sql: str, values: dict[str, Any], max_cost: float) -> None:
    estimate = opened.estimate_cost(sql, values)
    if estimate is not None and estimate > max_cost:
        raise RunEnded(
            RunStatus.FAILED,
            "cost_too_high",
            f"The datasource estimates the query's cost at {estimate:.0f}, above this organization's"
            f" limit of {max_cost:.0f}",
        )


def _timed_out(bounds: RunBounds) -> RunEnded:
    return RunEnded(
        RunStatus.TIMED_OUT,
        "statement_timeout",
        f"The run took longer than {bounds.statement_seconds} seconds",
    )


def _store(
    claimed: ClaimedRun, rows: RowStream, bounds: RunBounds, watchdog: RunWatchdog
) -> tuple[Manifest, Observation]:
    """Write the rows batch by batch as they arrive: memory holds one batch and one chunk, whatever the
    row count. A run that stops half way keeps nothing. The first row is kept for alert rules."""
    writer = ResultWriter(
        run_settings().results_bucket,
        claimed.organization_id,
        claimed.id,
        list(rows.columns),
        max_rows=bounds.max_rows,
        max_bytes=bounds.max_bytes,
    )
    first_row = None
    try:
        for batch in rows.batches:
            # A cancel or the deadline that came between two batches found no statement to stop.
            if watchdog.reason == "cancelled":
                raise QueryCancelled("the statement was cancelled")
            if watchdog.reason == "timeout":
                raise _timed_out(bounds)
            if first_row is None and batch:
                first_row = json_row(batch[0])
            if not writer.add_rows(batch):
                break
        manifest = writer.finish()
        columns = [column.name for column in rows.columns]
        return manifest, Observation(columns, first_row, manifest.row_count)
    except BaseException:
        writer.abort()
        raise


def _log_started(claimed: ClaimedRun) -> None:
    queued_at = claimed.enqueued_at
    wait_ms = (claimed.started_at - queued_at).total_seconds() * 1000 if queued_at else 0.0
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RunQueueWait", unit=MetricUnit.Milliseconds, value=max(wait_ms, 0.0))
    logger.info(
        "run started",
        extra={
            "run_id": str(claimed.id),
            "query_id": str(claimed.query_id) if claimed.query_id else None,
            "attempt": claimed.attempts,
            "queue_wait_ms": round(wait_ms),
        },
    )


def _finish(
    claimed: ClaimedRun,
    attempt: int,
    status: RunStatus,
    error: dict[str, str] | None,
    observation: Observation | None = None,
    **outcome: Any,
) -> None:
    run_id = claimed.id
    firings: list[UUID] = []
    with db.transaction():
        recorded = runs_repository.finish(run_id, attempt, status, error=error, **outcome)
        schedule_id = claimed.schedule_id
        if recorded and schedule_id is not None and status is not RunStatus.CANCELLED:
            # A person's cancel says nothing about the schedule; every other end counts.
            scheduler.record_outcome(schedule_id, succeeded=status is RunStatus.SUCCEEDED)
            if observation is not None:
                firings = alerts.evaluate(schedule_id, run_id, observation)
            elif status is not RunStatus.SUCCEEDED:
                firings = alerts.evaluate_failure(
                    schedule_id, run_id, (error or {}).get("message", str(status))
                )
    if firings:
        # Now, not at the next tick; what fails here the tick sends again.
        alerts.deliver_pending(firings)
    duration_ms = (datetime.now(UTC) - claimed.started_at).total_seconds() * 1000
    code = error["code"] if error and status is not RunStatus.SUCCEEDED else None
    details = {
        "run_id": str(run_id),
        "query_id": str(claimed.query_id) if claimed.query_id else None,
        "status": status,
        "error_code": code,
        "duration_ms": round(duration_ms),
        "row_count": outcome.get("row_count"),
        "byte_size": outcome.get("byte_size"),
        "recorded": recorded,
    }
    logger.info("run finished", extra=details)
    if duration_ms > get_settings().slow_run_seconds * 1000:
        # The query id and the timing only: parameter values can hold personal data.
        logger.warning("slow query", extra=details)
    if not recorded:
        return
    # One metric per outcome, with the outcome as a dimension (Powertools' shared metrics carry only
    # the service dimension).
    with single_metric(
        name="RunsFinished", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
    ) as outcome_metric:
        outcome_metric.add_dimension(name="outcome", value=code or status)
    metrics.add_metric(name="RunDuration", unit=MetricUnit.Milliseconds, value=duration_ms)
    if status is RunStatus.SUCCEEDED:
        metrics.add_metric(name="RunRows", unit=MetricUnit.Count, value=outcome["row_count"])
        metrics.add_metric(name="RunBytes", unit=MetricUnit.Bytes, value=outcome["byte_size"])
