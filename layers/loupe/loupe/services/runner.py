"""Executes one queued run: claim it, guard its SQL, bind its values in the connector's style, run it
within the time the function has left, store the rows in S3, record the outcome once.

Permanent failures (the guard, the datasource's own errors) end the run; transient ones (the datasource
or a dependency unreachable) put it back in the queue by raising `RetryLater`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe import db
from loupe.connectors import Limits, QueryCancelled, QueryFailed, QueryTimedOut, ResultSet
from loupe.errors import NotFound, ServiceUnavailable
from loupe.observability import logger
from loupe.repositories import runs as runs_repository
from loupe.results.store import Column, ResultTooLarge, ResultWriter, manifest_key
from loupe.security import sql_guard
from loupe.services.datasources import DatasourceUnreachable, session
from loupe.services.runs import compiled, run_settings

# Seconds kept back from the statement for claiming, storing the rows and recording the outcome.
RESERVED_SECONDS = 20
# The lease outlives the invocation by this much, so a live run is never taken over.
LEASE_MARGIN_SECONDS = 30
# A run whose datasource stays unreachable this many times fails instead of going back to the queue.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 10


class RetryLater(Exception):
    """The run could not execute now; the message is to be delivered again."""


def execute_run(run_id: UUID, remaining_ms: int) -> None:
    """Execute a run once, whatever the number of deliveries of its message."""
    remaining_seconds = remaining_ms // 1000
    with db.transaction():
        claimed = runs_repository.claim(run_id, remaining_seconds + LEASE_MARGIN_SECONDS)
        if claimed is None and not runs_repository.exists(run_id):
            # The request that created it may not have committed yet.
            raise RetryLater("the run is not visible yet")
    if claimed is None:
        logger.info("run already claimed or finished", extra={"run_id": str(run_id)})
        return
    attempt: int = claimed["attempts"]
    try:
        _run_claimed(claimed, attempt, remaining_seconds - RESERVED_SECONDS)
    except Exception:
        # Whatever stopped it, the run goes back to queued so the next delivery can claim it.
        with db.transaction():
            runs_repository.release(run_id, attempt)
        raise


def _run_claimed(claimed: dict[str, Any], attempt: int, statement_seconds: int) -> None:
    run_id = claimed["id"]
    if statement_seconds < 1:
        raise RetryLater("too little time left in this invocation")
    try:
        result = _execute(claimed, statement_seconds)
    except sql_guard.SqlNotAllowed as error:
        _finish(run_id, attempt, "failed", {"code": sql_guard.SqlNotAllowed.code, "message": error.reason})
    except QueryTimedOut as error:
        _finish(run_id, attempt, "timed_out", {"code": "statement_timeout", "message": str(error)})
    except QueryCancelled as error:
        _finish(run_id, attempt, "cancelled", {"code": "cancelled", "message": str(error)})
    except QueryFailed as error:
        _finish(run_id, attempt, "failed", {"code": "query_failed", "message": str(error)})
    except NotFound:
        logger.info("the run's datasource is gone", extra={"run_id": str(run_id)})
    except (DatasourceUnreachable, ServiceUnavailable) as error:
        message = str(error) if isinstance(error, DatasourceUnreachable) else error.message
        if attempt < MAX_ATTEMPTS:
            raise RetryLater(message) from error
        _finish(run_id, attempt, "failed", {"code": "datasource_unreachable", "message": message})
    else:
        _store(claimed, attempt, result)


def _execute(claimed: dict[str, Any], statement_seconds: int) -> ResultSet:
    kind = claimed["datasource_type"]
    statement = sql_guard.check(compiled(claimed["sql"], kind), kind)
    values = {name: claimed["parameters"].get(name) for name in statement.parameters}
    limits = Limits(
        connect_timeout_seconds=min(CONNECT_TIMEOUT_SECONDS, statement_seconds),
        statement_timeout_seconds=statement_seconds,
    )
    with session(claimed["organization_id"], claimed["datasource_id"], at_most=limits) as opened:
        return opened.execute(statement.sql, values, max_rows=run_settings().max_rows)


def _store(claimed: dict[str, Any], attempt: int, result: ResultSet) -> None:
    settings = run_settings()
    run_id, organization_id = claimed["id"], claimed["organization_id"]
    writer = ResultWriter(
        settings.results_bucket,
        organization_id,
        run_id,
        [Column(column.name, column.type) for column in result.columns],
        max_rows=settings.max_rows,
        max_bytes=settings.max_result_bytes,
    )
    try:
        writer.add_rows(result.rows)
    except ResultTooLarge as error:
        _finish(run_id, attempt, "failed", {"code": "result_too_large", "message": str(error)})
        return
    manifest = writer.finish()
    _finish(
        run_id,
        attempt,
        "succeeded",
        None,
        row_count=manifest.row_count,
        byte_size=manifest.byte_size,
        truncated=result.truncated or manifest.truncated,
        result_location=manifest_key(organization_id, run_id),
    )


def _finish(run_id: UUID, attempt: int, status: str, error: dict[str, str] | None, **outcome: Any) -> None:
    with db.transaction():
        recorded = runs_repository.finish(run_id, attempt, status, error=error, **outcome)
    logger.info("run finished", extra={"run_id": str(run_id), "status": status, "recorded": recorded})
