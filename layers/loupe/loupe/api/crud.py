"""The five routes of a standard resource (create, list, get, update, delete), declared once.

Each resource passes its models and service; the routes it gets are thin, typed, documented, and
carry API.md's conventions: 201 + Location, ETag / 304, If-Match / 412, 204 on delete.
"""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from loupe.api.auth import Caller, Editor
from loupe.api.openapi import conditional_read_responses
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, if_match, no_content, versioned, with_etag
from loupe.models.common import DeleteQuery, Page, ResourceListQuery
from loupe.services.resources import ResourceService


def crud_routes(
    router: LoupeRouter,
    *,
    collection_path: str,
    service: ResourceService[Any, Any, Any],
    create_model: type[BaseModel],
    update_model: type[BaseModel],
    list_query: type[ResourceListQuery] = ResourceListQuery,
    reader: Any = Caller,
    writer: Any = Editor,
    tag: str,
    names: tuple[str, str],
    cascades: bool = False,
) -> None:
    """Declare `POST|GET <collection_path>` and `GET|PATCH|DELETE <collection_path>/<id>` on `router`.

    `names` (singular, plural: "Query", "Queries") make the operation ids: createQuery, listQueries...
    With `cascades`, the delete takes `?cascade=true` (the resource is one others use).
    """
    one, many = names
    out = service.out
    noun = service.noun
    item_path = f"{collection_path}/<resource_id>"

    # The annotations below are the models passed in: Powertools reads them to validate and document.
    @router.post(
        collection_path,
        operation_id=f"create{one}",
        status_code=201,
        errors=(404, 409),
        tags=[tag],
        summary=f"Create a {noun}",
    )
    def create_resource(body: create_model, caller: writer) -> Response[out]:  # type: ignore[valid-type]
        made = service.create(caller, body)
        return created(made.resource, f"{API_PREFIX}{collection_path}/{made.resource.id}")

    @router.get(collection_path, operation_id=f"list{many}", tags=[tag], summary=f"List {noun} resources")
    def list_resources(
        caller: reader,
        query: Annotated[list_query, Query()],  # type: ignore[valid-type]
    ) -> Page[out]:  # type: ignore[valid-type]
        return service.list(caller, query)

    # The return type is open because a 304 has no body; the document still names the 200 model.
    @router.get(
        item_path,
        operation_id=f"get{one}",
        errors=(404,),
        tags=[tag],
        summary=f"Get a {noun}",
        responses=conditional_read_responses(out, noun),
    )
    def get_resource(resource_id: UUID, caller: reader) -> Response[Any]:
        found = service.get(caller, resource_id)
        return with_etag(found.resource, found.version)

    @router.patch(
        item_path, operation_id=f"update{one}", errors=(404, 409, 412), tags=[tag], summary=f"Update a {noun}"
    )
    def update_resource(
        resource_id: UUID,
        body: update_model,  # type: ignore[valid-type]
        caller: writer,
    ) -> Response[out]:  # type: ignore[valid-type]
        updated = service.update(caller, resource_id, body, if_match())
        return versioned(updated.resource, updated.version)

    delete_route = router.delete(
        item_path,
        operation_id=f"delete{one}",
        status_code=204,
        errors=(404, 409, 412),
        tags=[tag],
        summary=f"Delete a {noun}",
    )
    if cascades:

        @delete_route
        def delete_used_resource(
            resource_id: UUID, caller: writer, query: Annotated[DeleteQuery, Query()]
        ) -> Response[None]:
            service.delete(caller, resource_id, if_match(), cascade=query.cascade)
            return no_content()

    else:

        @delete_route
        def delete_resource(resource_id: UUID, caller: writer) -> Response[None]:
            service.delete(caller, resource_id, if_match())
            return no_content()
