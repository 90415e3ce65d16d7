"""Routes of the queries function: saved parameterized SQL queries and the snippets they include (editors
write, every role reads and runs)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Caller
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.api.revisions import revision_routes
from loupe.api.routes.runs import started
from loupe.api.shares import share_routes
from loupe.models.common import Page
from loupe.models.queries import (
    ParameterOptionsPage,
    ParameterOptionsQuery,
    QueryCreate,
    QueryListQuery,
    QueryUpdate,
)
from loupe.models.runs import QueryRunCreate, RunListQuery, RunOut
from loupe.models.snippets import SnippetCreate, SnippetUpdate
from loupe.services import parameter_options
from loupe.services.queries import queries
from loupe.services.runs import runs
from loupe.services.snippets import snippets

router = LoupeRouter()
TAGS = ["queries"]

crud_routes(
    router,
    collection_path="/queries",
    service=queries,
    create_model=QueryCreate,
    update_model=QueryUpdate,
    list_query=QueryListQuery,
    tag="queries",
    names=("Query", "Queries"),
    cascades=True,
)
revision_routes(
    router, collection_path="/queries", service=queries, update_model=QueryUpdate, tag="queries", one="Query"
)
share_routes(router, collection_path="/queries", resource_type="query", one="Query")


@router.get(
    "/queries/<query_id>/parameters/<name>/options",
    operation_id="listParameterOptions",
    errors=(404, 409, 503),
    tags=TAGS,
    summary="List a dropdown parameter's options",
    description="The values (and labels) of the parameter's options query's latest succeeded run, its"
    " first 10,000 rows, those whose label or value holds `q`. 409 `options_unavailable` while the options"
    " query has no stored result (never run, or expired) or lacks a column named; run it to refresh them.",
)
def list_parameter_options(
    query_id: UUID, name: str, caller: Caller, query: Annotated[ParameterOptionsQuery, Query()]
) -> ParameterOptionsPage:
    return parameter_options.page(caller, query_id, name, query)


crud_routes(
    router,
    collection_path="/snippets",
    service=snippets,
    create_model=SnippetCreate,
    update_model=SnippetUpdate,
    tag="snippets",
    names=("Snippet", "Snippets"),
)


@router.post(
    "/queries/<query_id>/runs",
    operation_id="runQuery",
    success_headers=("Location",),
    status_code=202,
    errors=(404, 429, 503),
    tags=TAGS,
    summary="Run a saved query",
    responses={
        200: {
            "description": "A succeeded run young enough for max_age_seconds",
            "content": {"application/json": {"model": RunOut}},
        }
    },
)
def run_query(query_id: UUID, body: QueryRunCreate, caller: Caller) -> Response[RunOut]:
    return started(runs.run_query(caller, query_id, body))


@router.get(
    "/queries/<query_id>/runs",
    operation_id="listQueryRuns",
    errors=(404,),
    tags=TAGS,
    summary="List a query's runs",
)
def list_query_runs(query_id: UUID, caller: Caller, query: Annotated[RunListQuery, Query()]) -> Page[RunOut]:
    return runs.query_runs(caller, query_id, query)
