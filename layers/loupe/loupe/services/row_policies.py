"""Row policies of a datasource (admins write and read them), the claims of members and API keys, and the
policies in effect for a principal: what a run on the datasource is rewritten with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from uuid import UUID

from loupe import db
from loupe.connectors import DatasourceType
from loupe.errors import Conflict, FieldIssue, InvalidInput, NotFound, NotPermitted, ReferenceNotFound
from loupe.models.api_keys import ApiKeyOut
from loupe.models.identity import Principal, Role
from loupe.models.organizations import MemberOut
from loupe.models.row_policies import AppliesTo, RowPolicyCreate, RowPolicyList, RowPolicyOut
from loupe.repositories import crud, embed_tokens
from loupe.repositories import organizations as organizations_repository
from loupe.repositories import row_policies as repository
from loupe.repositories.api_keys import API_KEYS
from loupe.repositories.datasources import DATASOURCES
from loupe.repositories.row_policies import MAX_PER_DATASOURCE, ROW_POLICIES
from loupe.security import row_policies, sql_guard
from loupe.security.row_policies import ClaimValue, Effective, RowFilter
from loupe.services import audit
from loupe.services.resources import Versioned, require_references
from loupe.versions import version_of


def _out(row: Mapping[str, Any], dialect: DatasourceType) -> RowPolicyOut:
    _, claims = row_policies.checked_predicate(row["predicate"], dialect)
    return RowPolicyOut.model_validate({**row, "table": row["table_name"], "claims": list(claims)})


def _datasource(principal: Principal, datasource_id: UUID) -> dict[str, Any]:
    datasource = crud.get(DATASOURCES, principal.organization_id, datasource_id)
    if datasource is None:
        raise NotFound("No such datasource")
    return datasource


def _require_valid(body: RowPolicyCreate, datasource: Mapping[str, Any]) -> None:
    """The table and predicate must read as a policy needs them, and the guard must accept the filtered
    table as a query (the predicate may call what the datasource's queries may call)."""
    dialect: DatasourceType = datasource["type"]
    try:
        table = row_policies.parse_table(body.table, dialect)
    except ValueError as error:
        raise InvalidInput(
            "The table is not a schema-qualified table", issues=[FieldIssue("table", str(error))]
        ) from None
    try:
        _, claims = row_policies.checked_predicate(body.predicate, dialect)
    except ValueError as error:
        raise InvalidInput(
            "The predicate is not a condition on the table", issues=[FieldIssue("predicate", str(error))]
        ) from None
    try:
        text, _ = row_policies.apply(
            f"SELECT 1 FROM {body.table}",  # noqa: S608  # the table as parsed above, checked by the guard
            dialect,
            [RowFilter(table, body.predicate)],
            dict.fromkeys(claims, 0),
        )
        sql_guard.check(text, dialect, frozenset(datasource["allowed_functions"]))
    except sql_guard.SqlNotAllowed as error:
        raise InvalidInput(
            "The SQL guard refuses the predicate", issues=[FieldIssue("predicate", error.reason)]
        ) from None


class RowPolicyService:
    """A datasource's row policies: created and deleted (a policy is replaced, never edited in place, so a
    run's recorded policy is one that existed), listed and read by admins."""

    def create(self, principal: Principal, datasource_id: UUID, body: RowPolicyCreate) -> RowPolicyOut:
        with db.transaction():
            datasource = _datasource(principal, datasource_id)
            _require_valid(body, datasource)
            require_references(
                API_KEYS,
                principal.organization_id,
                [(f"applies_to.api_keys.{index}", key) for index, key in enumerate(body.applies_to.api_keys)],
            )
            _require_members(principal, body.applies_to)
            if len(repository.of_datasource(principal.organization_id, datasource_id)) >= MAX_PER_DATASOURCE:
                raise Conflict(f"A datasource has at most {MAX_PER_DATASOURCE} row policies")
            row = crud.insert(
                ROW_POLICIES,
                principal.organization_id,
                {
                    "datasource_id": datasource_id,
                    "table_name": body.table,
                    "predicate": body.predicate,
                    "applies_to": body.applies_to.model_dump(mode="json"),
                    "description": body.description,
                    "created_by": principal.user_id,
                },
            )
            audit.record_by(
                principal,
                "row_policy.created",
                target_type="row_policy",
                target_id=row["id"],
                metadata={"datasource_id": str(datasource_id), "table": body.table},
            )
            return _out(row, datasource["type"])

    def list(self, principal: Principal, datasource_id: UUID) -> RowPolicyList:
        with db.transaction():
            datasource = _datasource(principal, datasource_id)
            rows = repository.of_datasource(principal.organization_id, datasource_id)
            return RowPolicyList(items=[_out(row, datasource["type"]) for row in rows])

    def get(self, principal: Principal, datasource_id: UUID, policy_id: UUID) -> Versioned[RowPolicyOut]:
        with db.transaction():
            datasource = _datasource(principal, datasource_id)
            row = self._existing(principal, datasource_id, policy_id)
            return Versioned(_out(row, datasource["type"]), version_of(row["id"], row["updated_at"]))

    def delete(self, principal: Principal, datasource_id: UUID, policy_id: UUID) -> None:
        with db.transaction():
            _datasource(principal, datasource_id)
            row = self._existing(principal, datasource_id, policy_id)
            crud.delete(ROW_POLICIES, principal.organization_id, policy_id)
            audit.record_by(
                principal,
                "row_policy.deleted",
                target_type="row_policy",
                target_id=policy_id,
                metadata={"datasource_id": str(datasource_id), "table": row["table_name"]},
            )

    @staticmethod
    def _existing(principal: Principal, datasource_id: UUID, policy_id: UUID) -> dict[str, Any]:
        row = crud.get(ROW_POLICIES, principal.organization_id, policy_id)
        if row is None or row["datasource_id"] != datasource_id:
            raise NotFound("No such row policy")
        return row


def _require_members(principal: Principal, applies_to: AppliesTo) -> None:
    members = set(applies_to.members)
    if not members:
        return
    found = repository.members_among(principal.organization_id, list(members))
    missing = [index for index, user_id in enumerate(applies_to.members) if user_id not in found]
    if missing:
        raise ReferenceNotFound(
            "applies_to.members names someone who is not a member",
            issues=[FieldIssue(f"applies_to.members.{index}", "not a member") for index in missing],
        )


def _applies(applies_to: Mapping[str, Any], principal: Principal) -> bool:
    # A guest is no member: only the embed-token flag names it, whatever role it is served with.
    if principal.guest_token_id is not None:
        return bool(applies_to.get("share_links" if principal.guest_kind == "share" else "embed_tokens"))
    if principal.role.label in applies_to.get("roles", []):
        return True
    if principal.api_key_id is not None:
        return str(principal.api_key_id) in applies_to.get("api_keys", [])
    return principal.user_id is not None and str(principal.user_id) in applies_to.get("members", [])


def _claims_of(principal: Principal) -> dict[str, ClaimValue]:
    if principal.guest_token_id is not None:
        return embed_tokens.claims_of(principal.organization_id, principal.guest_token_id)
    if principal.api_key_id is not None:
        return repository.api_key_claims(principal.organization_id, principal.api_key_id)
    if principal.user_id is not None:
        return repository.member_claims(principal.organization_id, principal.user_id)
    return {}


def effective(principal: Principal, datasource_id: UUID, dialect: DatasourceType) -> Effective:
    """The policies of the datasource that bind `principal`, and the claims of theirs it carries (a 403
    naming a claim a policy needs and it lacks: a policy never runs half-bound)."""
    applying = [
        row
        for row in repository.of_datasource(principal.organization_id, datasource_id)
        if _applies(row["applies_to"], principal)
    ]
    if not applying:
        return Effective()
    needed: dict[str, None] = {}
    filters = []
    for row in applying:
        _, claims = row_policies.checked_predicate(row["predicate"], dialect)
        needed.update(dict.fromkeys(claims))
        filters.append(RowFilter(row_policies.parse_table(row["table_name"], dialect), row["predicate"]))
    carried = _claims_of(principal)
    missing = [name for name in needed if name not in carried]
    if missing:
        raise NotPermitted(
            f"A row policy on this datasource binds the claim {missing[0]!r}, which you do not carry;"
            " an admin sets members' and API keys' claims"
        )
    return Effective(tuple(filters), {name: carried[name] for name in needed})


row_policy_service = RowPolicyService()


def policy_key(principal: Principal, datasource_id: UUID) -> str | None:
    """The digest of the policies and claims binding `principal` on the datasource (None: none bind)."""
    datasource = crud.get(DATASOURCES, principal.organization_id, datasource_id)
    if datasource is None:
        return None
    return effective(principal, datasource_id, datasource["type"]).key


def require_same_policy(principal: Principal, datasource_id: UUID, run_policy_key: str | None) -> None:
    """A run's rows are readable only under the row policies and claims it ran under: to anyone else it
    does not exist (404), so a run never shows rows another principal's policy would have filtered."""
    if policy_key(principal, datasource_id) != run_policy_key:
        raise NotFound("No such run")


def member_principal(organization_id: UUID, user_id: UUID | None) -> Principal | None:
    """A member acting without a request (a schedule's creator), with their role; None once gone."""
    member = organizations_repository.get_member(organization_id, user_id) if user_id is not None else None
    return Principal(organization_id, Role.parse(member.role), user_id=user_id) if member else None


def effective_for_member(
    organization_id: UUID, user_id: UUID | None, datasource_id: UUID, dialect: DatasourceType
) -> Effective:
    """The policies binding a member acting without a request (a schedule's creator): as for a request
    of theirs; when they are no longer a member, a datasource with any policy refuses (403)."""
    member = member_principal(organization_id, user_id)
    if member is None:
        if repository.of_datasource(organization_id, datasource_id):
            raise NotPermitted(
                "The datasource has row policies and the schedule's creator is no longer a member"
            )
        return Effective()
    return effective(member, datasource_id, dialect)


def _set_claims(
    principal: Principal,
    target: Literal["user", "api_key"],
    target_id: UUID,
    claims: Mapping[str, ClaimValue],
) -> None:
    """Replace a member's or a live API key's claims, audited with the claims' names (not their values)."""
    if target == "user":
        changed = repository.set_member_claims(principal.organization_id, target_id, claims)
    else:
        changed = repository.set_api_key_claims(principal.organization_id, target_id, claims)
    if not changed:
        raise NotFound("No such member" if target == "user" else "No such live API key")
    prefix = "member" if target == "user" else "api_key"
    audit.record_by(
        principal,
        f"{prefix}.claims_changed",
        target_type=target,
        target_id=target_id,
        metadata={"claims": sorted(claims)},
    )


def set_member_claims(principal: Principal, user_id: UUID, claims: Mapping[str, ClaimValue]) -> MemberOut:
    with db.transaction():
        _set_claims(principal, "user", user_id, claims)
        member = organizations_repository.get_member(principal.organization_id, user_id)
        assert member is not None
        return member


def set_api_key_claims(principal: Principal, key_id: UUID, claims: Mapping[str, ClaimValue]) -> ApiKeyOut:
    with db.transaction():
        _set_claims(principal, "api_key", key_id, claims)
        return ApiKeyOut.model_validate(crud.get(API_KEYS, principal.organization_id, key_id))
