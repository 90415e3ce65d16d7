"""Routes of the destinations resource, served by the schedules function: where reports and alerts go
(admins write, every role reads)."""

from uuid import UUID

from loupe.api.auth import Admin
from loupe.api.crud import crud_routes
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import if_match
from loupe.models.destinations import (
    DestinationCreate,
    DestinationListQuery,
    DestinationTestOut,
    DestinationUpdate,
    SecretRotated,
)
from loupe.services.destinations import destinations

router = LoupeRouter()
TAGS = ["destinations"]

crud_routes(
    router,
    collection_path="/destinations",
    service=destinations,
    create_model=DestinationCreate,
    update_model=DestinationUpdate,
    list_query=DestinationListQuery,
    writer=Admin,
    tag="destinations",
    names=("Destination", "Destinations"),
)


@router.post(
    "/destinations/<destination_id>/rotate-secret",
    operation_id="rotateDestinationSecret",
    errors=(404, 409, 412),
    tags=TAGS,
    summary="Give a webhook destination a new signing secret",
    description="The previous secret signs beside the new one for 24 hours (two `v1` values in"
    " `Loupe-Signature`), while receivers switch. The new secret is shown in this answer only.",
)
def rotate_destination_secret(destination_id: UUID, caller: Admin) -> SecretRotated:
    return destinations.rotate_secret(caller, destination_id, if_match())


@router.post(
    "/destinations/<destination_id>/test",
    operation_id="testDestination",
    errors=(404,),
    tags=TAGS,
    summary="Send a test message to a destination now",
    description="200 whether or not it was delivered: `delivered` and `error` say which.",
)
def test_destination(destination_id: UUID, caller: Admin) -> DestinationTestOut:
    return destinations.test(caller, destination_id)
