"""Routes of the api-keys function: create (the key is shown once), list, revoke (admins)."""

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Admin
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, if_match, no_content
from loupe.models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyListQuery, ApiKeyOut
from loupe.models.common import Page
from loupe.models.row_policies import ClaimsChange
from loupe.services import api_keys, row_policies

router = LoupeRouter()
TAGS = ["api-keys"]


@router.post(
    "/api-keys",
    operation_id="createApiKey",
    status_code=201,
    tags=TAGS,
    summary="Create a personal or service API key with a role up to yours; the key is shown only here",
)
def create_key(body: ApiKeyCreate, caller: Admin) -> Response[ApiKeyCreated]:
    # The key's URL is where it is revoked: there is no reading it back (the key is shown once).
    made = api_keys.create(caller, body)
    return created(made, f"{API_PREFIX}/api-keys/{made.id}")


@router.get(
    "/api-keys",
    operation_id="listApiKeys",
    tags=TAGS,
    summary="The organization's API keys, live and revoked; `kind` lists personal or service keys apart",
)
def list_keys(caller: Admin, query: Annotated[ApiKeyListQuery, Query()]) -> Page[ApiKeyOut]:
    return api_keys.list_keys(caller, query)


@router.put(
    "/api-keys/<key_id>/claims",
    operation_id="setApiKeyClaims",
    errors=(404,),
    tags=TAGS,
    summary="Replace a live API key's claims: the values row policies naming it bind",
)
def set_key_claims(key_id: UUID, body: ClaimsChange, caller: Admin) -> ApiKeyOut:
    return row_policies.set_api_key_claims(caller, key_id, body.claims)


@router.delete(
    "/api-keys/<key_id>",
    operation_id="revokeApiKey",
    errors=(404, 412),
    status_code=204,
    tags=TAGS,
    summary="Revoke an API key; it stops working at once",
)
def revoke_key(key_id: UUID, caller: Admin) -> Response[None]:
    api_keys.revoke(caller, key_id, if_match())
    return no_content()
