"""The three routes of a resource's public share links (create, list, revoke), declared once for
dashboards, visualizations and queries."""

from uuid import UUID

from aws_lambda_powertools.event_handler import Response

from loupe.api.auth import Editor
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, no_content
from loupe.models.embed import EmbeddedResource, GuestResourceType, ShareCreate, ShareCreated, ShareList
from loupe.services import embed

TAGS = ["embedding"]


def share_routes(
    router: LoupeRouter, *, collection_path: str, resource_type: GuestResourceType, one: str
) -> None:
    """Declare `POST|GET <collection_path>/<id>/shares` and `DELETE .../shares/<share_id>` on `router`;
    `one` ("Dashboard") makes the operation ids: createDashboardShareLink..."""
    shares_path = f"{collection_path}/<resource_id>/shares"
    shown = "a query's result" if resource_type == "query" else f"the {resource_type}"

    @router.post(
        shares_path,
        operation_id=f"create{one}ShareLink",
        status_code=201,
        errors=(404, 409),
        tags=TAGS,
        summary=f"Create a public share link of {shown} (where the organization enables them)",
    )
    def create_share_link(resource_id: UUID, body: ShareCreate, caller: Editor) -> Response[ShareCreated]:
        made = embed.share(caller, EmbeddedResource(type=resource_type, id=resource_id), body)
        return created(made, f"{API_PREFIX}{collection_path}/{resource_id}/shares/{made.id}")

    @router.get(
        shares_path,
        operation_id=f"list{one}ShareLinks",
        errors=(404,),
        tags=TAGS,
        summary=f"The share links of {shown}, with how often each was used (never their secrets)",
    )
    def list_share_links(resource_id: UUID, caller: Editor) -> ShareList:
        return embed.shares(caller, EmbeddedResource(type=resource_type, id=resource_id))

    @router.delete(
        f"{shares_path}/<share_id>",
        operation_id=f"revoke{one}ShareLink",
        status_code=204,
        errors=(404,),
        tags=TAGS,
        summary="Revoke a share link; it stops working at once",
    )
    def revoke_share_link(resource_id: UUID, share_id: UUID, caller: Editor) -> Response[None]:
        embed.revoke_share(caller, EmbeddedResource(type=resource_type, id=resource_id), share_id)
        return no_content()
