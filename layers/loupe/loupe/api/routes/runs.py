"""Routes of the runs function: ad-hoc SQL runs (editors), runs and their results (every role)."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller, Editor
from loupe.api.context import current_request
from loupe.api.etags import named_versions
from loupe.api.openapi import conditional_read_responses
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import accepted, with_etag
from loupe.models.exports import ExportCreate, ExportList, ExportOut
from loupe.models.runs import (
    AdhocRunCreate,
    ExportQuery,
    ResultsQuery,
    RunOut,
    RunPage,
    RunResults,
    RunsQuery,
    RunWaitQuery,
)
from loupe.services import exports
from loupe.services.runs import INSTANT_EXPORT_MAX_BYTES, INSTANT_EXPORT_MAX_ROWS, Started, runs

router = LoupeRouter()
TAGS = ["runs"]
# A long poll answers this long before the function's own timeout, leaving time to read and send the runs.
WAIT_MARGIN_SECONDS = 3.0


def wait_budget(requested: int) -> float:
    """The seconds a long poll may wait: those asked for, within the invocation's remaining time."""
    if requested <= 0:
        return 0.0
    remaining = router.lambda_context.get_remaining_time_in_millis() / 1000 - WAIT_MARGIN_SECONDS
    return max(0.0, min(float(requested), remaining))


def known_versions() -> frozenset[str]:
    return named_versions(current_request().headers.get("if-none-match"))


def started(result: Started) -> Response[RunOut]:
    """202 for a queued run, 200 for a cached one."""
    return accepted(result.new, result.run, f"{API_PREFIX}/runs/{result.run.id}")


@router.post(
    "/runs",
    operation_id="createRun",
    success_headers=("Location",),
    status_code=202,
    errors=(404, 429, 503),
    tags=TAGS,
    summary="Run SQL on a datasource",
)
def create_run(body: AdhocRunCreate, caller: Editor) -> Response[RunOut]:
    return started(runs.run_sql(caller, body))


@router.get(
    "/runs",
    operation_id="listRuns",
    tags=TAGS,
    summary="List runs, or get many by id (a long poll with `wait`)",
    description="By filter: a page of the organization's runs. By `ids`: those runs in that order, with an"
    " ETag of them all; with `wait`, the answer comes once any of them changes from the version"
    " If-None-Match names (or the one when asked), within `wait` seconds, and is a 304 when nothing did.",
    responses=conditional_read_responses(RunPage, "page of runs"),
)
def list_runs(caller: Caller, query: Annotated[RunsQuery, Query()]) -> Response[Any]:
    if query.ids is None:
        return Response(status_code=200, content_type="application/json", body=runs.list(caller, query))
    found = runs.of_ids(caller, query, wait_seconds=wait_budget(query.wait), known_versions=known_versions())
    return with_etag(found.resource, found.version)


@router.get(
    "/runs/<run_id>",
    operation_id="getRun",
    errors=(404,),
    tags=TAGS,
    summary="Get a run, at once or once it changes (`wait`)",
    description="With `wait`, the answer comes once the run's status changes from the version If-None-Match"
    " names (or the one it had when asked), within `wait` seconds: 200 with the run, or 304 if it has not"
    " changed. A finished run answers at once.",
    responses=conditional_read_responses(RunOut, "run"),
)
def get_run(run_id: UUID, caller: Caller, query: Annotated[RunWaitQuery, Query()]) -> Response[Any]:
    found = runs.get(caller, run_id, wait_seconds=wait_budget(query.wait), known_versions=known_versions())
    return with_etag(found.resource, found.version)


@router.get(
    "/runs/<run_id>/results",
    operation_id="getRunResults",
    errors=(404, 409, 410),
    tags=TAGS,
    summary="Read a page of a run's rows",
    description="At most `limit` rows, and no more than 4 MiB of them once serialized (Lambda answers at"
    " most 6 MB): a page ended by bytes says `truncated_by: bytes`, and `next_offset` is where the next"
    " page starts. A single row over 4 MiB is a 422 `row_too_large` naming its offset; export the run"
    " to read it.",
)
def get_run_results(run_id: UUID, caller: Caller, query: Annotated[ResultsQuery, Query()]) -> RunResults:
    return runs.results(caller, run_id, query)


@router.post(
    "/runs/<run_id>/cancel",
    operation_id="cancelRun",
    status_code=202,
    errors=(404, 409),
    tags=TAGS,
    summary="Cancel a queued or running run",
    description="A queued run ends `cancelled` at once. A running run's statement is stopped inside the"
    " datasource (PostgreSQL's cancel request, MySQL's KILL QUERY) within a second or so; poll the run to"
    " see it end `cancelled`. A finished run answers 409.",
)
def cancel_run(run_id: UUID, caller: Editor) -> Response[RunOut]:
    return Response(status_code=202, content_type="application/json", body=runs.cancel(caller, run_id))


@router.get(
    "/runs/<run_id>/export",
    operation_id="exportRun",
    status_code=302,
    errors=(404, 409, 410, 503),
    tags=TAGS,
    summary="Export a small run's rows as CSV, JSON or XLSX at once",
    description=f"For results of at most {INSTANT_EXPORT_MAX_ROWS:,} rows and"
    f" {INSTANT_EXPORT_MAX_BYTES // 1024**2} MiB of stored JSON text; a larger one answers 409"
    " `export_too_large`: ask for a background export (`POST /runs/{run_id}/exports`) instead.",
    responses={302: {"description": "Found: Location is a short-lived signed URL of the file"}},
)
def export_run(run_id: UUID, caller: Caller, query: Annotated[ExportQuery, Query()]) -> Response[None]:
    return Response(status_code=302, headers={"Location": runs.export(caller, run_id, query.format)})


@router.post(
    "/runs/<run_id>/exports",
    operation_id="createRunExport",
    success_headers=("Location",),
    status_code=202,
    errors=(404, 409, 410, 422, 503),
    tags=TAGS,
    summary="Export a run's rows in the background",
    description="202 with a queued export; asked again for the same format, 200 with the existing export"
    " (a failed one is queued again, 202). Poll `GET /runs/{run_id}/exports/{export_id}` until it is"
    " `succeeded` (its `url` is the file) or `failed`. XLSX refuses results of more than 1,048,575 rows"
    " (422).",
)
def create_run_export(run_id: UUID, body: ExportCreate, caller: Caller) -> Response[ExportOut]:
    requested = exports.request(caller, run_id, body.format)
    location = f"{API_PREFIX}/runs/{run_id}/exports/{requested.export.id}"
    return accepted(requested.new, requested.export, location)


@router.get(
    "/runs/<run_id>/exports",
    operation_id="listRunExports",
    errors=(404,),
    tags=TAGS,
    summary="List a run's exports",
)
def list_run_exports(run_id: UUID, caller: Caller) -> ExportList:
    return exports.of_run(caller, run_id)


@router.get(
    "/runs/<run_id>/exports/<export_id>",
    operation_id="getRunExport",
    errors=(404,),
    tags=TAGS,
    summary="Get an export: its status, and once succeeded a short-lived signed URL of the file",
    responses=conditional_read_responses(ExportOut, "export"),
)
def get_run_export(run_id: UUID, export_id: UUID, caller: Caller) -> Response[Any]:
    found = exports.get(caller, run_id, export_id)
    return with_etag(found.resource, found.version)
