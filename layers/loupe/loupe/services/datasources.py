"""Datasources: connection strings validated by the policy and encrypted per organization, shown
masked, decrypted only here to connect (test, schema, and sessions for runs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from loupe import db
from loupe.connectors import ConnectionSpec, ConnectorError, DatasourceType, Limits, Session
from loupe.errors import DependencyUnavailable, FieldIssue, InvalidInput, NotFound
from loupe.models.datasources import (
    ConnectionTestOut,
    DatasourceCreate,
    DatasourceOptions,
    DatasourceOut,
    DatasourceSchema,
    DatasourceUpdate,
    SchemaColumn,
    SchemaTable,
)
from loupe.models.identity import Principal
from loupe.repositories import crud
from loupe.repositories.datasources import CREDENTIALS, DATASOURCES
from loupe.security import crypto
from loupe.security.connection_policy import ConnectionPolicyError, check_host, connect, parse
from loupe.services import audit
from loupe.services.resources import ResourceService, Versioned
from loupe.versions import ExpectedVersions

# Test and schema answer within API Gateway's 29 seconds, whatever the datasource's own timeouts.
INTERACTIVE = Limits(connect_timeout_seconds=10, statement_timeout_seconds=15)


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


class DatasourceService(ResourceService[DatasourceCreate, DatasourceUpdate, DatasourceOut]):
    def to_out(self, row: dict[str, Any]) -> DatasourceOut:
        return DatasourceOut(
            id=row["id"],
            name=row["name"],
            type=row["type"],
            connection_string=row["connection_display"],
            options=DatasourceOptions.model_validate(row["options"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def values_for_create(self, principal: Principal, body: DatasourceCreate) -> dict[str, Any]:
        spec = _validated_spec(body.type, body.connection_string, principal.organization_id)
        return {
            "name": body.name,
            "type": body.type,
            "connection_ciphertext": _encrypted(body.connection_string, principal.organization_id),
            "connection_display": spec.display(),
            "options": body.options.model_dump(),
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
        if body.connection_string is not None:
            spec = _validated_spec(current["type"], body.connection_string, principal.organization_id)
            values["connection_ciphertext"] = _encrypted(body.connection_string, principal.organization_id)
            values["connection_display"] = spec.display()
        return values

    def create(self, principal: Principal, body: DatasourceCreate) -> Versioned[DatasourceOut]:
        with db.transaction():
            made = super().create(principal, body)
            audit.record_by(
                principal,
                "datasource.created",
                target_type="datasource",
                target_id=made.resource.id,
                metadata={"name": made.resource.name, "type": made.resource.type},
            )
        return made

    def update(
        self, principal: Principal, resource_id: UUID, body: DatasourceUpdate, expected: ExpectedVersions
    ) -> Versioned[DatasourceOut]:
        with db.transaction():
            updated = super().update(principal, resource_id, body, expected)
            audit.record_by(
                principal,
                "datasource.updated",
                target_type="datasource",
                target_id=resource_id,
                metadata={"fields": sorted(body.model_fields_set)},
            )
        return updated

    def delete(self, principal: Principal, resource_id: UUID, expected: ExpectedVersions) -> None:
        with db.transaction():
            super().delete(principal, resource_id, expected)
            audit.record_by(principal, "datasource.deleted", target_type="datasource", target_id=resource_id)

    def test(self, principal: Principal, datasource_id: UUID) -> ConnectionTestOut:
        """Connect and run a trivial query; a failure is an answer (`ok: false`), not an error."""
        started = time.perf_counter()
        try:
            with session(principal.organization_id, datasource_id, at_most=INTERACTIVE) as opened:
                opened.ping()
        except (DatasourceUnreachable, ConnectorError) as error:
            return ConnectionTestOut(ok=False, latency_ms=_elapsed_ms(started), error=str(error))
        return ConnectionTestOut(ok=True, latency_ms=_elapsed_ms(started))

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
    options = DatasourceOptions.model_validate(row["options"])
    connect_seconds, statement_seconds = options.connect_timeout_seconds, options.statement_timeout_seconds
    if at_most is not None:
        connect_seconds = min(connect_seconds, at_most.connect_timeout_seconds)
        statement_seconds = min(statement_seconds, at_most.statement_timeout_seconds)
    limits = Limits(connect_timeout_seconds=connect_seconds, statement_timeout_seconds=statement_seconds)
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
