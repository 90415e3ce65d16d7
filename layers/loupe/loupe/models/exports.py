"""Requests and responses of a run's background exports: a file of its rows, built once per format."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from loupe.models.common import StrictModel
from loupe.models.runs import RunError
from loupe.results.exports import ExportFormat


class ExportStatus(StrEnum):
    """Queued, then running, then succeeded (the file is there) or failed (`error` says why)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ExportCreate(StrictModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"format": "parquet"}]})

    format: ExportFormat = Field(description="The file's format")


class ExportOut(BaseModel):
    """An export of a run's rows (GET /runs/{run_id}/exports/{export_id})."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5b1e2c3d-4f5a-4b6c-9d7e-8f9a0b1c2d3e",
                    "run_id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                    "format": "csv",
                    "status": "succeeded",
                    "error": None,
                    "url": "https://loupe-results.s3.amazonaws.com/org/.../export.csv?X-Amz-Signature=...",
                    "bytes": 48213,
                    "rows": 1200,
                    "created_at": "2026-11-26T06:00:02Z",
                    "finished_at": "2026-11-26T06:00:03.120Z",
                    "expires_at": "2026-12-26T06:00:01.412Z",
                }
            ]
        }
    )

    id: UUID
    run_id: UUID
    format: ExportFormat
    status: ExportStatus
    error: RunError | None = Field(
        description="Why it failed: `xlsx_row_limit` (the rows do not fit a worksheet), `result_expired`,"
        " or `export_failed`"
    )
    url: str | None = Field(
        description="Once succeeded: a signed URL of the file, valid for 5 minutes (read the export again"
        " for a fresh one)"
    )
    bytes: int | None = Field(description="The file's size, once succeeded")
    rows: int | None = Field(description="The rows written, once succeeded")
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="When the organization's result retention removes the run's result, and the file with it"
    )


class ExportList(BaseModel):
    """A run's exports, one per format at most (GET /runs/{run_id}/exports)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "5b1e2c3d-4f5a-4b6c-9d7e-8f9a0b1c2d3e",
                            "run_id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                            "format": "parquet",
                            "status": "running",
                            "error": None,
                            "url": None,
                            "bytes": None,
                            "rows": None,
                            "created_at": "2026-11-26T06:00:02Z",
                            "finished_at": None,
                            "expires_at": "2026-12-26T06:00:01.412Z",
                        }
                    ]
                }
            ]
        }
    )

    items: list[ExportOut]
