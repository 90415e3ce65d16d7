"""The export function's work: claim a queued export, stream the run's stored result into a file in S3
beside it (multipart), and record how it ended, once whatever the number of deliveries."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loupe import db
from loupe.errors import RowsExceedFormat
from loupe.models.exports import ExportStatus
from loupe.observability import logger
from loupe.repositories import run_exports
from loupe.results.exports import ExportFailed, export_to_s3
from loupe.results.store import ResultReader, ResultUnavailable, s3_client
from loupe.services.exports import export_settings

# A running export whose function died is taken over after this long: the function's timeout.
LEASE_SECONDS = 900


class RetryLater(Exception):
    """The export cannot be done by this delivery; its message comes again."""


def execute_export(export_id: UUID) -> None:
    bucket = export_settings().results_bucket
    with db.transaction():
        claimed = run_exports.claim(export_id, LEASE_SECONDS)
        # The request that queues an export sends its message before it commits.
        if claimed is None and not run_exports.exists(export_id):
            raise RetryLater("the export is not visible yet")
    if claimed is None:
        logger.info("export already claimed or finished", extra={"export_id": str(export_id)})
        return
    try:
        outcome = _build(claimed, bucket)
    except Exception:
        # Whatever stopped it (S3, the function's time), the next delivery starts it again.
        with db.transaction():
            run_exports.release(export_id, claimed["attempts"])
        raise
    with db.transaction():
        if not run_exports.finish(export_id, claimed["attempts"], outcome):
            logger.info("export finished by another delivery", extra={"export_id": str(export_id)})


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": ExportStatus.FAILED, "error": {"code": code, "message": message}}


def _build(claimed: dict[str, Any], bucket: str) -> dict[str, Any]:
    if claimed["result_location"] is None:
        return _failed("result_expired", "The run's result has expired")
    reader = ResultReader.for_run(bucket, claimed["organization_id"], claimed["run_id"])
    try:
        key = export_to_s3(reader, claimed["format"])
    except ExportFailed as error:
        return _failed("export_failed", str(error))
    except RowsExceedFormat as error:
        return _failed("xlsx_row_limit", "; ".join([error.message, *(issue.issue for issue in error.issues)]))
    except ResultUnavailable:
        return _failed("result_expired", "The run's result has expired")
    size = s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"]
    return {
        "status": ExportStatus.SUCCEEDED,
        "object_key": key,
        "byte_size": size,
        "row_count": reader.manifest.row_count,
    }
