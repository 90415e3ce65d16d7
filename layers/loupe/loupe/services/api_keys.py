"""Organization API keys: created with a role no higher than the creator's, shown once, revoked at once.
Personal keys are their creator's and go when the creator leaves; service keys are the organization's."""

from __future__ import annotations

from uuid import UUID

from loupe import db
from loupe.errors import NotFound, NotPermitted
from loupe.models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyListQuery, ApiKeyOut
from loupe.models.common import Page
from loupe.models.identity import Principal, Role
from loupe.repositories import api_keys, crud
from loupe.repositories.api_keys import API_KEYS
from loupe.security import tokens
from loupe.services import audit
from loupe.services.resources import ResourceReader
from loupe.versions import ExpectedVersions, require_version, version_of

# "lk_" and 7 random characters: enough to tell keys apart in a list, far too little to guess one.
DISPLAYED_PREFIX_LENGTH = 10

_keys = ResourceReader(API_KEYS, ApiKeyOut, "API key")


def create(principal: Principal, request: ApiKeyCreate) -> ApiKeyCreated:
    """A personal key created with a personal key belongs to the same member (it records the key that
    created it); a service key, which belongs to no member, can create service keys only."""
    if Role.parse(request.role) > principal.role:
        raise NotPermitted(f"An API key's role cannot be above your own ({principal.role.label})")
    key = tokens.new_secret_token(tokens.API_KEY_PREFIX)
    with db.transaction():
        if (
            request.kind == "personal"
            and principal.api_key_id is not None
            and api_keys.kind_of(principal.organization_id, principal.api_key_id) == "service"
        ):
            raise NotPermitted("A service key belongs to no member: it can create service keys only")
        row = api_keys.create(
            principal.organization_id,
            request.name,
            request.role,
            request.kind,
            key[:DISPLAYED_PREFIX_LENGTH],
            tokens.digest(key),
            principal.user_id,
            principal.api_key_id,
        )
        metadata = {"name": request.name, "role": request.role}
        audit.record_by(
            principal,
            "api_key.created",
            target_type="api_key",
            target_id=row["id"],
            metadata=metadata if request.kind == "personal" else {**metadata, "kind": request.kind},
        )
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


def list_keys(principal: Principal, query: ApiKeyListQuery) -> Page[ApiKeyOut]:
    """Live and revoked keys (revoked_at says which), of one kind when `kind` is given; never the key
    itself."""
    return _keys.list(principal, query)


def revoke(principal: Principal, key_id: UUID, expected: ExpectedVersions) -> None:
    """Idempotent: revoking a revoked key changes nothing and records nothing."""
    with db.transaction():
        current = crud.get(API_KEYS, principal.organization_id, key_id, for_update=True)
        if current is None:
            raise NotFound("No such API key")
        require_version(expected, version_of(current["id"], current["updated_at"]))
        if current["revoked_at"] is not None:
            return
        api_keys.revoke(principal.organization_id, key_id)
        audit.record_by(
            principal,
            "api_key.revoked",
            target_type="api_key",
            target_id=key_id,
            metadata={"name": current["name"], "role": current["role"]},
        )
