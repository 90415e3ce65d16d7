"""Routes of the organizations function: settings, members and roles, invitations, usage."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from loupe.api.auth import Admin, Caller
from loupe.api.openapi import conditional_read_responses
from loupe.api.prefix import API_PREFIX
from loupe.api.resolver import LoupeRouter
from loupe.api.responses import created, if_match, no_content, versioned, with_etag
from loupe.models.common import Page
from loupe.models.organizations import (
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    MemberOut,
    OrganizationOut,
    OrganizationUpdate,
    PageQuery,
    RoleChange,
    UsageOut,
)
from loupe.models.row_policies import ClaimsChange
from loupe.services import organizations, row_policies

router = LoupeRouter()
TAGS = ["organizations"]


@router.get(
    "/organizations/current",
    operation_id="getCurrentOrganization",
    tags=TAGS,
    summary="The caller's organization and its settings (any role)",
    responses=conditional_read_responses(OrganizationOut, "organization"),
)
def get_current(caller: Caller) -> Response[Any]:
    found = organizations.current(caller)
    return with_etag(found.resource, found.version)


@router.patch(
    "/organizations/current",
    operation_id="updateCurrentOrganization",
    errors=(412,),
    tags=TAGS,
    summary="Rename the organization or change settings (merged; null restores a default)",
)
def update_current(body: OrganizationUpdate, caller: Admin) -> Response[OrganizationOut]:
    updated = organizations.update_current(caller, body, if_match())
    return versioned(updated.resource, updated.version)


@router.get(
    "/organizations/users",
    operation_id="listMembers",
    tags=TAGS,
    summary="Members of the organization and their roles",
)
def list_members(caller: Admin, query: Annotated[PageQuery, Query()]) -> Page[MemberOut]:
    return organizations.list_members(caller, query)


@router.put(
    "/organizations/users/<user_id>/role",
    operation_id="changeMemberRole",
    errors=(404, 409),
    tags=TAGS,
    summary="Change a member's role (the last admin cannot be demoted)",
)
def change_role(user_id: UUID, body: RoleChange, caller: Admin) -> MemberOut:
    return organizations.change_role(caller, user_id, body.role)


@router.put(
    "/organizations/users/<user_id>/claims",
    operation_id="setMemberClaims",
    errors=(404,),
    tags=TAGS,
    summary="Replace a member's claims: the values row policies naming them bind",
)
def set_member_claims(user_id: UUID, body: ClaimsChange, caller: Admin) -> MemberOut:
    return row_policies.set_member_claims(caller, user_id, body.claims)


@router.delete(
    "/organizations/users/<user_id>",
    operation_id="removeMember",
    errors=(404, 409),
    status_code=204,
    tags=TAGS,
    summary="Remove a member: their sessions here end, their personal API keys and pending invitations are"
    " revoked (the last admin cannot be removed)",
)
def remove_member(user_id: UUID, caller: Admin) -> Response[None]:
    organizations.remove_member(caller, user_id)
    return no_content()


@router.post(
    "/organizations/invitations",
    operation_id="createInvitation",
    errors=(409,),
    status_code=201,
    tags=TAGS,
    summary="Invite someone by email; the token is shown once and expires in 7 days",
)
def invite(body: InvitationCreate, caller: Admin) -> Response[InvitationCreated]:
    # The invitation's URL is where it is revoked: there is no reading it back (the token is shown once).
    made = organizations.invite(caller, body)
    return created(made, f"{API_PREFIX}/organizations/invitations/{made.id}")


@router.get(
    "/organizations/invitations", operation_id="listInvitations", tags=TAGS, summary="Pending invitations"
)
def list_invitations(caller: Admin, query: Annotated[PageQuery, Query()]) -> Page[InvitationOut]:
    return organizations.list_invitations(caller, query)


@router.delete(
    "/organizations/invitations/<invitation_id>",
    operation_id="revokeInvitation",
    errors=(404,),
    status_code=204,
    tags=TAGS,
    summary="Revoke a pending invitation",
)
def revoke_invitation(invitation_id: UUID, caller: Admin) -> Response[None]:
    organizations.revoke_invitation(caller, invitation_id)
    return no_content()


@router.get(
    "/organizations/usage",
    operation_id="getUsage",
    tags=TAGS,
    summary="Saved queries, runs this month and stored result bytes",
)
def usage(caller: Admin) -> UsageOut:
    return organizations.usage(caller)
