"""Background exports of a run's rows: asked for once per run and format (asking again answers the same
export), built by the export function, handed out as a short-lived signed URL once succeeded."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from loupe import db, queue
from loupe.config import get_settings
from loupe.errors import Conflict, DependencyUnavailable, FieldIssue, InvalidInput, NotFound, ResultExpired
from loupe.models.exports import ExportList, ExportOut, ExportStatus
from loupe.models.identity import Principal
from loupe.models.organizations import OrganizationSettings
from loupe.models.runs import RunStatus
from loupe.repositories import run_exports
from loupe.repositories import runs as runs_repository
from loupe.results import exports as files
from loupe.results.exports import ExportFormat, signed_url
from loupe.services import row_policies
from loupe.services.resources import Versioned
from loupe.versions import version_of_content


@dataclass(frozen=True)
class ExportSettings:
    queue_url: str
    results_bucket: str


def export_settings() -> ExportSettings:
    """Without the exports queue or the results bucket, background exports are unavailable (503)."""
    settings = get_settings()
    if settings.exports_queue_url is None or settings.results_bucket is None:
        raise DependencyUnavailable(
            "Exports are not configured: LOUPE_EXPORTS_QUEUE_URL and LOUPE_RESULTS_BUCKET"
        )
    return ExportSettings(queue_url=settings.exports_queue_url, results_bucket=settings.results_bucket)


@dataclass(frozen=True)
class Requested:
    """An export to answer a request with: `new` is False when an existing one was found."""

    export: ExportOut
    new: bool


def export_out(row: dict[str, Any], bucket: str | None) -> ExportOut:
    succeeded = row["status"] == ExportStatus.SUCCEEDED
    return ExportOut(
        id=row["id"],
        run_id=row["run_id"],
        format=row["format"],
        status=row["status"],
        error=row["error"],
        url=signed_url(bucket, row["object_key"]) if succeeded and bucket is not None else None,
        bytes=row["byte_size"],
        rows=row["row_count"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
    )


def request(principal: Principal, run_id: UUID, fmt: ExportFormat) -> Requested:
    """The run's export in `fmt`: the existing one unless it failed, else a new one queued. Only a
    succeeded run whose result is still stored exports; XLSX only when its rows fit a worksheet.
    The run is looked up first: another organization's run is 404 whatever the configuration."""
    with db.transaction():
        run = runs_repository.get(principal.organization_id, run_id)
        if run is None:
            raise NotFound("No such run")
        row_policies.require_same_policy(principal, run.datasource_id, run.policy_key)
        if run.status is not RunStatus.SUCCEEDED:
            raise Conflict(f"The run has no results: it is {run.status}")
        if run.result_location is None:
            raise ResultExpired(
                "The run's result has expired under this organization's retention; run the query again"
            )
        if fmt == "xlsx" and not files.fits_xlsx(run.row_count or 0):
            limit = files.XLSX_MAX_ROWS - 1
            raise InvalidInput(
                "The result has too many rows for XLSX",
                issues=[FieldIssue("format", f"XLSX holds at most {limit} rows; use csv or parquet")],
            )
        settings = export_settings()
        found = run_exports.find(principal.organization_id, run_id, fmt)
        if found is not None and found["status"] != ExportStatus.FAILED:
            return Requested(export_out(found, settings.results_bucket), new=False)
        queued = run_exports.queue(
            principal.organization_id,
            run_id,
            fmt,
            principal.user_id,
            OrganizationSettings().result_retention_days,
        )
        if queued is None:
            # Another request queued it between the lookup and the insert.
            found = run_exports.find(principal.organization_id, run_id, fmt)
            assert found is not None
            return Requested(export_out(found, settings.results_bucket), new=False)
        # Sent inside the transaction: a queue that refuses rolls the export back. The export function
        # retries a message whose export it cannot see yet.
        queue.send_export(settings.queue_url, queued["id"])
        return Requested(export_out(queued, None), new=True)


def get(principal: Principal, run_id: UUID, export_id: UUID) -> Versioned[ExportOut]:
    """The export and its version. The version also changes with each window of the signed URL's
    lifetime: a copy a client keeps through a 304 always holds a URL that still works."""
    with db.transaction():
        run = runs_repository.get(principal.organization_id, run_id)
        if run is not None:
            row_policies.require_same_policy(principal, run.datasource_id, run.policy_key)
        found = run_exports.get(principal.organization_id, run_id, export_id)
    if found is None:
        raise NotFound("No such export")
    window = int(time.time()) // files.SIGNED_URL_SECONDS
    version = version_of_content(f"{found['id']}:{found['status']}:{found['finished_at']}:{window}")
    return Versioned(export_out(found, get_settings().results_bucket), version)


def of_run(principal: Principal, run_id: UUID) -> ExportList:
    with db.transaction():
        run = runs_repository.get(principal.organization_id, run_id)
        if run is None:
            raise NotFound("No such run")
        row_policies.require_same_policy(principal, run.datasource_id, run.policy_key)
        found = run_exports.of_run(principal.organization_id, run_id)
    bucket = get_settings().results_bucket
    return ExportList(items=[export_out(row, bucket) for row in found])
