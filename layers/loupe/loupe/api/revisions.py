"""The three routes of a resource's history (list, read with an optional diff, restore), declared once for
queries, visualizations, dashboards and canvases."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel

from loupe.api.auth import Caller, Editor
from loupe.api.openapi import conditional_read_responses
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import if_match, versioned, with_etag
from loupe.models.common import Page
from loupe.models.revisions import RevisionListQuery, RevisionOut, RevisionReadQuery, RevisionSummary
from loupe.services import revisions
from loupe.services.resources import ResourceService

RevisionNumber = Annotated[int, Path(ge=1, le=2_147_483_647)]


def revision_routes(
    router: LoupeRouter,
    *,
    collection_path: str,
    service: ResourceService[Any, Any, Any],
    update_model: type[BaseModel],
    tag: str,
    one: str,
) -> None:
    """Declare `GET <collection_path>/<id>/revisions`, `GET .../revisions/<number>` and `POST
    .../revisions/<number>/restore` on `router`; `one` ("Query") makes the operation ids."""
    revisions_path = f"{collection_path}/<resource_id>/revisions"
    out = service.out
    noun = service.noun

    @router.get(
        revisions_path,
        operation_id=f"list{one}Revisions",
        errors=(404,),
        tags=[tag],
        summary=f"The {noun}'s revisions, newest first",
    )
    def list_revisions(
        resource_id: UUID, caller: Caller, query: Annotated[RevisionListQuery, Query()]
    ) -> Page[RevisionSummary]:
        return revisions.history(service, caller, resource_id, query)

    @router.get(
        f"{revisions_path}/<number>",
        operation_id=f"get{one}Revision",
        errors=(404,),
        tags=[tag],
        summary=f"One revision of the {noun}: its full definition, and with ?diff_to= what differs",
        responses=conditional_read_responses(RevisionOut, "revision"),
    )
    def get_revision(
        resource_id: UUID,
        number: RevisionNumber,
        caller: Caller,
        query: Annotated[RevisionReadQuery, Query()],
    ) -> Response[Any]:
        found, version = revisions.revision(service, caller, resource_id, number, query.diff_to)
        return with_etag(found, version)

    @router.post(
        f"{revisions_path}/<number>/restore",
        operation_id=f"restore{one}Revision",
        errors=(404, 409, 412),
        success_headers=("ETag",),
        tags=[tag],
        summary=f"Make the {noun} as it was in a revision, as a new revision",
        description="Checked as an update is (If-Match, references, validation): a revision naming what is"
        " gone since is a 404 or 422. Fields an update cannot change stay as they are.",
    )
    def restore_revision(resource_id: UUID, number: RevisionNumber, caller: Editor) -> Response[out]:  # type: ignore[valid-type]
        restored = revisions.restore(service, update_model, caller, resource_id, number, if_match())
        return versioned(restored.resource, restored.version)
