"""Routes of the runs function: ad-hoc SQL runs (editors), runs and their results (every role)."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller, Editor
from loupe.api.openapi import conditional_read_responses
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import with_etag
from loupe.models.common import Page
from loupe.models.runs import AdhocRunCreate, ExportQuery, ResultsQuery, RunListQuery, RunOut, RunResults
from loupe.services.runs import Started, runs

router = LoupeRouter()
TAGS = ["runs"]


def started(result: Started) -> Response[RunOut]:
    """202 for a queued run, 200 for a cached one; either names the run's address."""
    return Response(
        status_code=202 if result.new else 200,
        content_type="application/json",
        body=result.run,
        headers={"Location": f"{API_PREFIX}/runs/{result.run.id}"},
    )


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


@router.get("/runs", operation_id="listRuns", tags=TAGS, summary="List runs")
def list_runs(caller: Caller, query: Annotated[RunListQuery, Query()]) -> Page[RunOut]:
    return runs.list(caller, query)


@router.get(
    "/runs/<run_id>",
    operation_id="getRun",
    errors=(404,),
    tags=TAGS,
    summary="Get a run",
    responses=conditional_read_responses(RunOut, "run"),
)
def get_run(run_id: UUID, caller: Caller) -> Response[Any]:
    found = runs.get(caller, run_id)
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
    summary="Export a run's rows as CSV, JSON or XLSX",
    responses={302: {"description": "Found: Location is a short-lived signed URL of the file"}},
)
def export_run(run_id: UUID, caller: Caller, query: Annotated[ExportQuery, Query()]) -> Response[None]:
    return Response(status_code=302, headers={"Location": runs.export(caller, run_id, query.format)})
