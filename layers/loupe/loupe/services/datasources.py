"""Datasources: connection strings validated by the policy and encrypted per organization, shown
masked, decrypted only here to connect (test, schema, and sessions for runs); their logins inspected
and refused when they may reach beyond the data, unless the admin accepts the risk."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import SecretStr

from loupe import db
from loupe.connectors import (
    REFUSED_FINDINGS,
    ConnectionSpec,
    ConnectorError,
    DatasourceType,
    Limits,
    LoginFinding,
    LoginFindingCode,
    Session,
)
from loupe.errors import DependencyUnavailable, FieldIssue, InvalidInput, LoginRefused, NotFound
from loupe.models.datasources import (
    ConnectionTestOut,
    DatasourceCreate,
    DatasourceOptions,
    DatasourceOut,
    DatasourceSchema,
    DatasourceUpdate,
    LoginAudit,
    LoginAuditStatus,
    LoginFindingOut,
    SchemaColumn,
    SchemaTable,
)
from loupe.models.identity import Principal
from loupe.repositories import crud
from loupe.repositories.datasources import CREDENTIALS, DATASOURCES
from loupe.security import crypto
from loupe.security.connection_policy import ConnectionPolicyError, check_host, connect, parse
from loupe.services import audit as audit_service
from loupe.services import dependents
from loupe.services.resources import ResourceService, Versioned
from loupe.versions import ExpectedVersions

# Test and schema answer within API Gateway's 29 seconds, whatever the datasource's own timeouts.
INTERACTIVE = Limits(connect_timeout_seconds=10, statement_timeout_seconds=15)
# What each finding means, in plain words; the objects concerned follow.
FINDING_DETAILS: dict[LoginFindingCode, str] = {
    "superuser": "The login is a superuser (or holds every privilege): it can read and change anything,"
    " including the server's files and programs",
    "server_file_read": "The login may read any file the database server can",
    "server_file_write": "The login may write files on the database server",
    "server_program_execution": "The login may run programs on the database server",
    "executables_outside_catalog": "The login can execute functions, operators or casts that are not the"
    " engine's own; a query can run them without naming them, as overload resolution may prefer one to"
    " a built-in",
    "create_role": "The login may create roles or users",
    "create_database": "The login may create databases",
    "replication": "The login may stream replication, which reads every change on the server",
    "bypass_row_security": "The login bypasses row-level security",
    "grant_option": "The login may grant its privileges to others",
    "server_administration": "The login may reload or shut down the server",
    "process_list": "The login may see every session's statements",
    "write_privileges": "The login may change data or schema",
    "object_ownership": "The login owns objects, so it may change them, drop them and grant on them",
}
InspectionTrigger = Literal["create", "update", "test", "run"]


class LoginNotAdmitted(Exception):
    """A run's datasource login is refused; the message names the findings and is safe to show."""


def _finding_out(stored: Mapping[str, Any], accepted_risks: Collection[str]) -> LoginFindingOut:
    code: LoginFindingCode = stored["code"]
    objects = list(stored.get("objects") or [])
    more = int(stored.get("more") or 0)
    named = ", ".join(objects) + (f" and {more} more" if more else "")
    return LoginFindingOut(
        code=code,
        severity="refused" if code in REFUSED_FINDINGS else "warning",
        accepted=code in accepted_risks,
        detail=FINDING_DETAILS[code] + (f": {named}" if named else ""),
        objects=objects,
        more_objects=more,
    )


def _stored(findings: Sequence[LoginFinding]) -> list[dict[str, Any]]:
    return [{"code": item.code, "objects": list(item.objects), "more": item.more} for item in findings]


def _status(findings: Sequence[LoginFinding], accepted_risks: Collection[str]) -> LoginAuditStatus:
    refused = {item.code for item in findings if item.code in REFUSED_FINDINGS}
    if refused - set(accepted_risks):
        return "refused"
    return "accepted" if refused else "passed"


def _audit_columns(
    findings: Sequence[LoginFinding] | None, accepted_risks: Collection[str]
) -> dict[str, Any]:
    """The stored inspection: `not_inspected` when the datasource could not be reached."""
    if findings is None:
        return {"login_audit_status": "not_inspected", "login_findings": [], "login_inspected_at": None}
    return {
        "login_audit_status": _status(findings, accepted_risks),
        "login_findings": _stored(findings),
        "login_inspected_at": datetime.now(UTC),
    }


def login_audit(row: Mapping[str, Any]) -> LoginAudit:
    """A datasource row's stored inspection, its findings weighed against its accepted risks."""
    return LoginAudit(
        status=row["login_audit_status"],
        findings=[_finding_out(item, row["accepted_risks"]) for item in row["login_findings"]],
        inspected_at=row["login_inspected_at"],
    )


def _unaccepted(audit: LoginAudit) -> list[LoginFindingOut]:
    return [item for item in audit.findings if item.severity == "refused" and not item.accepted]


def refusal_message(audit: LoginAudit) -> str:
    codes = ", ".join(item.code for item in _unaccepted(audit))
    return (
        f"The datasource's login may do more than read ({codes}): use a read-only login, or have an"
        " admin accept each finding by listing its code in accepted_risks"
    )


def _login_refused(audit: LoginAudit) -> LoginRefused:
    return LoginRefused(
        refusal_message(audit),
        issues=[
            FieldIssue("accepted_risks", f"{item.code}: {item.detail}. Not in accepted_risks")
            for item in _unaccepted(audit)
        ],
        keep_changes=True,
    )


def _record_outcome(
    audit: LoginAudit,
    organization_id: UUID,
    datasource_id: UUID | None,
    trigger: InspectionTrigger,
    principal: Principal | None,
    name: str | None = None,
) -> None:
    """Audit an inspection that refuses the login or admits it on accepted risks; a pass is not news."""
    if audit.status not in ("refused", "accepted"):
        return
    action = "datasource.login_refused" if audit.status == "refused" else "datasource.login_accepted"
    codes = [item.code for item in audit.findings if item.severity == "refused"]
    metadata: dict[str, Any] = {"trigger": trigger, "findings": codes}
    if name is not None:
        metadata["name"] = name
    if principal is None:
        audit_service.record(
            action,
            organization_id,
            ip=None,
            target_type="datasource",
            target_id=datasource_id,
            metadata=metadata,
        )
    else:
        audit_service.record_by(
            principal, action, target_type="datasource", target_id=datasource_id, metadata=metadata
        )


def _capped(options: DatasourceOptions, at_most: Limits | None) -> Limits:
    connect_seconds, statement_seconds = options.connect_timeout_seconds, options.statement_timeout_seconds
    if at_most is not None:
        connect_seconds = min(connect_seconds, at_most.connect_timeout_seconds)
        statement_seconds = min(statement_seconds, at_most.statement_timeout_seconds)
    return Limits(connect_timeout_seconds=connect_seconds, statement_timeout_seconds=statement_seconds)


def _inspected(spec: ConnectionSpec, options: DatasourceOptions) -> list[LoginFinding] | None:
    """The login's findings, or None when the datasource cannot be reached or read now."""
    try:
        opened = connect(spec, _capped(options, INTERACTIVE))
    except (ConnectionPolicyError, ConnectorError):
        return None
    try:
        return opened.inspect_login()
    except ConnectorError:
        return None
    finally:
        opened.close()


def _validated_spec(
    kind: DatasourceType, connection_string: SecretStr, organization_id: UUID
) -> ConnectionSpec:
    """Parse against the type's allowlist and check where the host resolves, as a 422 on refusal."""
    try:
        spec = parse(kind, connection_string.get_secret_value(), organization_id=organization_id)
        if spec.host:
            check_host(spec.host)
    except ConnectionPolicyError as error:
        raise InvalidInput(issues=[FieldIssue("connection_string", str(error))]) from None
    return spec


def _encrypted(connection_string: SecretStr, organization_id: UUID) -> bytes:
    try:
        return crypto.encrypt(connection_string.get_secret_value().strip().encode(), organization_id)
    except crypto.CryptoUnavailable:
        raise DependencyUnavailable("Credentials cannot be encrypted right now; try again shortly") from None


class DatasourceService(
    dependents.UsedByOthers, ResourceService[DatasourceCreate, DatasourceUpdate, DatasourceOut]
):
    find_dependents = staticmethod(dependents.of_datasource)

    def to_out(self, row: dict[str, Any]) -> DatasourceOut:
        return DatasourceOut(
            id=row["id"],
            name=row["name"],
            type=row["type"],
            connection_string=row["connection_display"],
            options=DatasourceOptions.model_validate(row["options"]),
            allowed_functions=row["allowed_functions"],
            accepted_risks=row["accepted_risks"],
            login_audit=login_audit(row),
            configured=row["configured"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def values_for_create(self, principal: Principal, body: DatasourceCreate) -> dict[str, Any]:
        spec = _validated_spec(body.type, body.connection_string, principal.organization_id)
        inspection = _audit_columns(_inspected(spec, body.options), body.accepted_risks)
        audit = login_audit({**inspection, "accepted_risks": body.accepted_risks})
        if audit.status == "refused":
            _record_outcome(audit, principal.organization_id, None, "create", principal, name=body.name)
            raise _login_refused(audit)
        return {
            "name": body.name,
            "type": body.type,
            "connection_ciphertext": _encrypted(body.connection_string, principal.organization_id),
            "connection_display": spec.display(),
            "options": body.options.model_dump(),
            "allowed_functions": body.allowed_functions,
            "accepted_risks": body.accepted_risks,
            **inspection,
        }

    def values_for_update(
        self, principal: Principal, body: DatasourceUpdate, current: dict[str, Any]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in body.model_fields_set:
            if getattr(body, name) is None:
                raise InvalidInput(issues=[FieldIssue(f"{name}", "may not be null")])
        if body.name is not None:
            values["name"] = body.name
        if body.options is not None:
            values["options"] = body.options.model_dump()
        spec = None
        if body.connection_string is not None:
            spec = _validated_spec(current["type"], body.connection_string, principal.organization_id)
            values["connection_ciphertext"] = _encrypted(body.connection_string, principal.organization_id)
            values["connection_display"] = spec.display()
        # The settings' changes are audited once the update is known to go through.
        changes: list[tuple[str, dict[str, Any]]] = []
        if body.allowed_functions is not None:
            values["allowed_functions"] = body.allowed_functions
            added = [name for name in body.allowed_functions if name not in current["allowed_functions"]]
            removed = [name for name in current["allowed_functions"] if name not in body.allowed_functions]
            if added or removed:
                changes.append(("datasource.allowed_functions_changed", {"added": added, "removed": removed}))
        accepted_risks: list[str] = current["accepted_risks"]
        if body.accepted_risks is not None and set(body.accepted_risks) != set(accepted_risks):
            accepted = [code for code in body.accepted_risks if code not in accepted_risks]
            withdrawn = [code for code in accepted_risks if code not in body.accepted_risks]
            changes += [
                (action, {"findings": codes})
                for action, codes in (
                    ("datasource.risk_accepted", accepted),
                    ("datasource.risk_withdrawn", withdrawn),
                )
                if codes
            ]
            accepted_risks = list(body.accepted_risks)
            values["accepted_risks"] = accepted_risks
            spec = spec or _stored_spec(principal.organization_id, current["id"])
        if spec is not None or "accepted_risks" in values:
            options = body.options or DatasourceOptions.model_validate(current["options"])
            inspection = _audit_columns(_inspected(spec, options) if spec else None, accepted_risks)
            audit = login_audit({**inspection, "accepted_risks": accepted_risks})
            _record_outcome(audit, principal.organization_id, current["id"], "update", principal)
            if audit.status == "refused":
                raise _login_refused(audit)
            values.update(inspection)
        for action, metadata in changes:
            audit_service.record_by(
                principal, action, target_type="datasource", target_id=current["id"], metadata=metadata
            )
        return values

    def create(self, principal: Principal, body: DatasourceCreate) -> Versioned[DatasourceOut]:
        with db.transaction():
            made = super().create(principal, body)
            audit_service.record_by(
                principal,
                "datasource.created",
                target_type="datasource",
                target_id=made.resource.id,
                metadata={"name": made.resource.name, "type": made.resource.type},
            )
            target: dict[str, Any] = {"target_type": "datasource", "target_id": made.resource.id}
            if body.allowed_functions:
                audit_service.record_by(
                    principal,
                    "datasource.allowed_functions_changed",
                    metadata={"added": body.allowed_functions, "removed": []},
                    **target,
                )
            if body.accepted_risks:
                audit_service.record_by(
                    principal,
                    "datasource.risk_accepted",
                    metadata={"findings": body.accepted_risks},
                    **target,
                )
            _record_outcome(
                made.resource.login_audit, principal.organization_id, made.resource.id, "create", principal
            )
        return made

    def update(
        self, principal: Principal, resource_id: UUID, body: DatasourceUpdate, expected: ExpectedVersions
    ) -> Versioned[DatasourceOut]:
        with db.transaction():
            updated = super().update(principal, resource_id, body, expected)
            audit_service.record_by(
                principal,
                "datasource.updated",
                target_type="datasource",
                target_id=resource_id,
                metadata={"fields": sorted(body.model_fields_set)},
            )
        return updated

    def delete(
        self, principal: Principal, resource_id: UUID, expected: ExpectedVersions, *, cascade: bool = False
    ) -> None:
        with db.transaction():
            super().delete(principal, resource_id, expected, cascade=cascade)
            audit_service.record_by(
                principal, "datasource.deleted", target_type="datasource", target_id=resource_id
            )

    def test(self, principal: Principal, datasource_id: UUID) -> ConnectionTestOut:
        """Connect, run a trivial query and inspect the login (the result is stored); a failure or a
        refused login is an answer (`ok: false`), not an error."""
        started = time.perf_counter()
        try:
            with session(principal.organization_id, datasource_id, at_most=INTERACTIVE) as opened:
                opened.ping()
                findings = opened.inspect_login()
        except (DatasourceUnreachable, ConnectorError) as error:
            unreached = login_audit({**_audit_columns(None, ()), "accepted_risks": []})
            return ConnectionTestOut(
                ok=False, latency_ms=_elapsed_ms(started), error=str(error), login_audit=unreached
            )
        audit = _store_inspection(principal.organization_id, datasource_id, findings, "test", principal)
        if audit.status == "refused":
            return ConnectionTestOut(
                ok=False, latency_ms=_elapsed_ms(started), error=refusal_message(audit), login_audit=audit
            )
        return ConnectionTestOut(ok=True, latency_ms=_elapsed_ms(started), login_audit=audit)

    def schema(self, principal: Principal, datasource_id: UUID) -> DatasourceSchema:
        try:
            with session(principal.organization_id, datasource_id, at_most=INTERACTIVE) as opened:
                tables = opened.list_schema()
        except (DatasourceUnreachable, ConnectorError) as error:
            raise DependencyUnavailable(f"The datasource cannot be read: {error}") from None
        return DatasourceSchema(
            tables=[
                SchemaTable(
                    schema_=table.schema,
                    name=table.name,
                    columns=[SchemaColumn(name=column.name, type=column.type) for column in table.columns],
                )
                for table in tables
            ]
        )


class DatasourceUnreachable(Exception):
    """A datasource could not be opened or answered with an error; the message is safe to show."""


class DatasourceUnconfigured(DatasourceUnreachable):
    """The datasource has no connection yet (a bundle created it): no retry will help."""

    def __init__(self) -> None:
        super().__init__("the datasource has no connection yet: an admin sets its connection_string")


def _stored_spec(organization_id: UUID, datasource_id: UUID) -> ConnectionSpec | None:
    """The stored connection string, parsed; None when it can no longer be decrypted or parsed."""
    row = crud.get(CREDENTIALS, organization_id, datasource_id)
    if row is None:
        raise NotFound("No such datasource")
    if row["connection_ciphertext"] is None:
        return None
    try:
        plaintext = crypto.decrypt(bytes(row["connection_ciphertext"]), organization_id)
        return parse(row["type"], plaintext.decode(), organization_id=organization_id)
    except (crypto.DecryptionFailed, ConnectionPolicyError):
        return None
    except crypto.CryptoUnavailable:
        raise DependencyUnavailable("Credentials cannot be decrypted right now; try again shortly") from None


def _store_inspection(
    organization_id: UUID,
    datasource_id: UUID,
    findings: Sequence[LoginFinding],
    trigger: InspectionTrigger,
    principal: Principal | None,
) -> LoginAudit:
    """Weigh the findings against the datasource's accepted risks, store the result and audit it."""
    with db.transaction():
        row = crud.get(DATASOURCES, organization_id, datasource_id, for_update=True)
        if row is None:
            raise NotFound("No such datasource")
        inspection = _audit_columns(findings, row["accepted_risks"])
        crud.update(DATASOURCES, organization_id, datasource_id, inspection)
        audit = login_audit({**inspection, "accepted_risks": row["accepted_risks"]})
        _record_outcome(audit, organization_id, datasource_id, trigger, principal)
    return audit


def admit_run(organization_id: UUID, datasource_id: UUID, opened: Session) -> None:
    """Before a run: inspect a login never inspected (storing the result), and raise LoginNotAdmitted
    when the datasource's login is refused."""
    with db.transaction():
        row = crud.get(DATASOURCES, organization_id, datasource_id)
    if row is None:
        raise NotFound("No such datasource")
    audit = login_audit(row)
    if audit.status == "not_inspected":
        audit = _store_inspection(organization_id, datasource_id, opened.inspect_login(), "run", None)
    if audit.status == "refused":
        raise LoginNotAdmitted(refusal_message(audit))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@contextmanager
def session(
    organization_id: UUID, datasource_id: UUID, *, at_most: Limits | None = None
) -> Iterator[Session]:
    """An open read-only session to a datasource of the organization, for the block (runs use this).
    `at_most` caps the datasource's own timeouts.

    Raises NotFound for another organization's datasource and DatasourceUnreachable when the stored
    credentials, the host policy or the datasource itself say no.
    """
    with db.transaction():
        row = crud.get(CREDENTIALS, organization_id, datasource_id)
    if row is None:
        raise NotFound("No such datasource")
    limits = _capped(DatasourceOptions.model_validate(row["options"]), at_most)
    if row["connection_ciphertext"] is None:
        raise DatasourceUnconfigured
    try:
        plaintext = crypto.decrypt(bytes(row["connection_ciphertext"]), organization_id)
    except crypto.DecryptionFailed:
        raise DatasourceUnreachable(
            "the stored credentials cannot be decrypted; set the connection string again"
        ) from None
    except crypto.CryptoUnavailable:
        raise DependencyUnavailable("Credentials cannot be decrypted right now; try again shortly") from None
    try:
        opened = connect(parse(row["type"], plaintext.decode(), organization_id=organization_id), limits)
    except ConnectionPolicyError as error:
        raise DatasourceUnreachable(f"the connection is refused by policy: {error}") from None
    except ConnectorError as error:
        raise DatasourceUnreachable(str(error)) from None
    try:
        yield opened
    finally:
        opened.close()


DATASOURCES_SERVICE = DatasourceService(DATASOURCES, DatasourceOut, "datasource")
