"""The caller's organization: its settings, members and roles, invitations and usage.

Role changes and removals keep at least one admin in every organization.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from loupe import db
from loupe.config import get_settings
from loupe.errors import Conflict, NotFound, NotPermitted
from loupe.models.common import Page
from loupe.models.identity import Principal, Role, RoleName
from loupe.models.organizations import (
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    MemberOut,
    OrganizationOut,
    OrganizationSettings,
    OrganizationUpdate,
    PageQuery,
    UsageOut,
)
from loupe.notify import Mail, send
from loupe.repositories import api_keys, invitations, organizations
from loupe.repositories.invitations import InvitationRecord
from loupe.repositories.organizations import OrganizationRecord
from loupe.security import tokens
from loupe.services import audit
from loupe.services.resources import Versioned
from loupe.versions import ExpectedVersions, require_version, version_of

INVITATION_TOKEN_PREFIX = "linv_"  # noqa: S105  # a label, not a secret
INVITATION_TTL = timedelta(days=7)
LAST_ADMIN = "An organization needs at least one admin: promote another member first"


def _versioned(record: OrganizationRecord) -> Versioned[OrganizationOut]:
    out = OrganizationOut(
        id=record.id,
        name=record.name,
        settings=OrganizationSettings.model_validate(record.settings),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )
    return Versioned(out, version_of(record.id, record.updated_at))


def _organization(principal: Principal, *, for_update: bool = False) -> OrganizationRecord:
    record = organizations.get(principal.organization_id, for_update=for_update)
    if record is None:  # deleted while the caller's credentials were still live
        raise NotFound("No such organization")
    return record


def current(principal: Principal) -> Versioned[OrganizationOut]:
    with db.transaction():
        return _versioned(_organization(principal))


def update_current(
    principal: Principal, request: OrganizationUpdate, expected: ExpectedVersions
) -> Versioned[OrganizationOut]:
    """`settings` merges into the stored ones; a setting sent as null returns to its default."""
    with db.transaction():
        record = _organization(principal, for_update=True)
        require_version(expected, version_of(record.id, record.updated_at))
        settings: dict[str, Any] = dict(record.settings)
        if request.settings is not None:
            for name, value in request.settings.model_dump(exclude_unset=True).items():
                if value is None:
                    settings.pop(name, None)
                else:
                    settings[name] = value
        updated = organizations.update(principal.organization_id, request.name or record.name, settings)
        changed = sorted(request.model_dump(exclude_unset=True))
        audit.record_by(
            principal,
            "organization.updated",
            target_type="organization",
            target_id=principal.organization_id,
            metadata={"changed": changed},
        )
        return _versioned(updated)


def list_members(principal: Principal, query: PageQuery) -> Page[MemberOut]:
    with db.transaction():
        members, total = organizations.list_members(principal.organization_id, query.limit, query.offset)
    return Page[MemberOut](items=members, total=total, limit=query.limit, offset=query.offset)


def _member(principal: Principal, user_id: UUID) -> MemberOut:
    member = organizations.get_member(principal.organization_id, user_id)
    if member is None:
        raise NotFound("No such member of this organization")
    return member


def change_role(principal: Principal, user_id: UUID, role: RoleName) -> MemberOut:
    with db.transaction():
        admins = organizations.lock_admins(principal.organization_id)
        member = _member(principal, user_id)
        if member.role == "admin" and role != "admin" and admins == [user_id]:
            raise Conflict(LAST_ADMIN)
        if member.role != role:
            organizations.set_role(principal.organization_id, user_id, role)
            audit.record_by(
                principal,
                "member.role_changed",
                target_type="user",
                target_id=user_id,
                metadata={"from": member.role, "to": role},
            )
        return member.model_copy(update={"role": role})


def remove_member(principal: Principal, user_id: UUID) -> None:
    """The member's sessions in this organization end with the membership, their personal API keys
    (and the personal keys those created) are revoked, and the invitations they sent, themselves or
    with those keys, are withdrawn; service keys stay. The account stays."""
    with db.transaction():
        admins = organizations.lock_admins(principal.organization_id)
        member = _member(principal, user_id)
        if admins == [user_id]:
            raise Conflict(LAST_ADMIN)
        organizations.remove_member(principal.organization_id, user_id)
        owned_keys = api_keys.personal_keys_of(principal.organization_id, user_id)
        revoked_keys = api_keys.revoke_many(principal.organization_id, owned_keys)
        withdrawn = invitations.delete_pending_of(principal.organization_id, user_id, owned_keys)
        for key in revoked_keys:
            audit.record_by(
                principal,
                "api_key.revoked",
                target_type="api_key",
                target_id=key["id"],
                metadata={"name": key["name"], "role": key["role"], "reason": "member_removed"},
            )
        for invitation in withdrawn:
            audit.record_by(
                principal,
                "invitation.revoked",
                target_type="invitation",
                target_id=invitation.id,
                metadata={"email": invitation.email, "role": invitation.role, "reason": "member_removed"},
            )
        audit.record_by(
            principal,
            "member.removed",
            target_type="user",
            target_id=user_id,
            metadata={
                "email": member.email,
                "role": member.role,
                "revoked_api_keys": [str(key["id"]) for key in revoked_keys],
                "revoked_invitations": [str(invitation.id) for invitation in withdrawn],
            },
        )


def _invitation_out(record: InvitationRecord) -> InvitationOut:
    return InvitationOut.model_validate(record.model_dump())


def invite(principal: Principal, request: InvitationCreate) -> InvitationCreated:
    """A single-use token, shown once here, that lets its holder join with `role` for a week."""
    if Role.parse(request.role) > principal.role:
        raise NotPermitted(f"You cannot invite with a role above your own ({principal.role.label})")
    token = tokens.new_secret_token(INVITATION_TOKEN_PREFIX)
    with db.transaction():
        invitations.lock_email(principal.organization_id, request.email)
        if organizations.is_member_by_email(principal.organization_id, request.email):
            raise Conflict("This email already belongs to a member of the organization")
        if invitations.pending_for_email(principal.organization_id, request.email) is not None:
            raise Conflict("A pending invitation for this email exists; revoke it to send a new one")
        record = invitations.create(
            principal.organization_id,
            request.email,
            request.role,
            tokens.digest(token),
            principal.user_id,
            principal.api_key_id,
            datetime.now(UTC) + INVITATION_TTL,
        )
        audit.record_by(
            principal,
            "invitation.created",
            target_type="invitation",
            target_id=record.id,
            metadata={"email": record.email, "role": record.role},
        )
        organization = organizations.get(principal.organization_id)
        send(
            _invitation_mail(record.email, token, organization.name if organization else "Loupe", record.role)
        )
    return InvitationCreated(**_invitation_out(record).model_dump(), token=token)


def _invitation_mail(email: str, token: str, organization_name: str, role: str) -> Mail:
    template = get_settings().invitation_url
    where = (
        f"Open this link within 7 days to join:\n\n{template.format(token=token)}"
        if template
        else f"Use this invitation token within 7 days to join (POST /auth/accept-invitation):\n\n{token}"
    )
    return Mail(
        to=email,
        subject=f"You are invited to {organization_name} on Loupe",
        text=f"You are invited to join {organization_name} on Loupe as {role}.\n\n{where}\n\n"
        "With a Loupe account already, sign in with its password to accept; otherwise choose a name and a"
        " password.\n",
    )


def list_invitations(principal: Principal, query: PageQuery) -> Page[InvitationOut]:
    """Pending invitations only: accepted and expired ones are in the audit trail."""
    with db.transaction():
        records, total = invitations.list_pending(principal.organization_id, query.limit, query.offset)
    return Page[InvitationOut](
        items=[_invitation_out(record) for record in records],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


def revoke_invitation(principal: Principal, invitation_id: UUID) -> None:
    with db.transaction():
        record = invitations.delete_pending(principal.organization_id, invitation_id)
        if record is None:
            raise NotFound("No such pending invitation")
        audit.record_by(
            principal,
            "invitation.revoked",
            target_type="invitation",
            target_id=invitation_id,
            metadata={"email": record.email, "role": record.role},
        )


def usage(principal: Principal) -> UsageOut:
    with db.transaction():
        return organizations.usage(principal.organization_id)
