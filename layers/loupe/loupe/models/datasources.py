"""Requests and responses of the datasources resource; connection strings go in, masked ones come out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from loupe.connectors import LOGIN_FINDING_CODES, MAX_FINDING_OBJECTS, DatasourceType, LoginFindingCode
from loupe.models.common import ResourceListQuery
from loupe.security.connection_policy import MAX_CONNECTION_STRING
from loupe.security.sql_guard import valid_function_name

DatasourceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ConnectionString = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=MAX_CONNECTION_STRING,
        description=(
            "postgresql://user:password@host:5432/db, mysql://..., or duckdb:file.duckdb"
            " (a file in the organization's folder)"
        ),
        examples=["postgresql://reader:secret@db.example.com:5432/shop?sslmode=require"],
    ),
]

MAX_ALLOWED_FUNCTIONS = 100


def _function_names(names: list[str]) -> list[str]:
    lowered = list(dict.fromkeys(name.strip().lower() for name in names))
    invalid = [name for name in lowered if not valid_function_name(name)]
    if invalid:
        raise ValueError(
            f"{invalid[0]!r} is not a function name (letters, digits, _ and $, optionally schema.name,"
            " at most 63 characters a part)"
        )
    return lowered


def _distinct(codes: list[LoginFindingCode]) -> list[LoginFindingCode]:
    return list(dict.fromkeys(codes))


AllowedFunctions = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
    Field(
        max_length=MAX_ALLOWED_FUNCTIONS,
        description="Functions the SQL guard allows on this datasource beyond its own catalogue, by name"
        " (`name` or `schema.name`); compared in lower case, duplicates dropped",
        examples=[["public.fiscal_quarter"]],
    ),
    AfterValidator(_function_names),
]
AcceptedRisks = Annotated[
    list[LoginFindingCode],
    Field(
        max_length=len(LOGIN_FINDING_CODES),
        description="Login findings the admin accepts: a login with a `refused` finding is refused"
        " unless its code is listed here",
        examples=[["superuser"]],
    ),
    AfterValidator(_distinct),
]
LoginAuditStatus = Literal["passed", "accepted", "refused", "not_inspected"]
FindingSeverity = Literal["refused", "warning"]


class LoginFindingOut(BaseModel):
    """Something the datasource's login may do beyond reading."""

    code: LoginFindingCode
    severity: FindingSeverity = Field(
        description="`refused`: the datasource is refused unless the code is in accepted_risks;"
        " `warning`: shown, never refused"
    )
    accepted: bool = Field(description="The code is in the datasource's accepted_risks")
    detail: str = Field(description="What the login may do, naming the objects concerned")
    objects: list[str] = Field(max_length=MAX_FINDING_OBJECTS, description="The first objects concerned")
    more_objects: int = Field(ge=0, description="How many more objects are concerned than listed")


class LoginAudit(BaseModel):
    """The latest inspection of the datasource's login."""

    status: LoginAuditStatus = Field(
        description="`passed`: no refused finding; `accepted`: refused findings, each accepted;"
        " `refused`: a refused finding not accepted (runs fail); `not_inspected`: the datasource could"
        " not be reached yet (the runner inspects before the next run)"
    )
    findings: list[LoginFindingOut]
    inspected_at: datetime | None


class DatasourceOptions(BaseModel):
    """How Loupe uses the datasource; unknown keys are refused, so nothing else rides along."""

    model_config = ConfigDict(extra="forbid")

    connect_timeout_seconds: int = Field(10, ge=1, le=30)
    statement_timeout_seconds: int = Field(30, ge=1, le=900)


class DatasourceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Shop replica",
                    "type": "postgres",
                    "connection_string": "postgresql://reader:REDACTED@db.internal:5432/shop",
                    "options": {"connect_timeout_seconds": 5, "statement_timeout_seconds": 60},
                    "allowed_functions": [],
                    "accepted_risks": [],
                }
            ]
        },
    )

    name: DatasourceName
    type: DatasourceType
    connection_string: ConnectionString
    options: DatasourceOptions = Field(default_factory=DatasourceOptions)
    allowed_functions: AllowedFunctions = Field(default_factory=list)
    accepted_risks: AcceptedRisks = Field(default_factory=list)


class DatasourceUpdate(BaseModel):
    """The type stays; a new connection string is validated against it and encrypted again."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Shop replica (read-only)",
                    "options": {"connect_timeout_seconds": 5, "statement_timeout_seconds": 120},
                }
            ]
        },
    )

    name: DatasourceName | None = None
    connection_string: ConnectionString | None = None
    options: DatasourceOptions | None = None
    allowed_functions: AllowedFunctions | None = None
    accepted_risks: AcceptedRisks | None = None


class DatasourceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
                    "name": "Shop replica",
                    "type": "postgres",
                    "connection_string": "postgresql://reader:****@db.internal:5432/shop",
                    "options": {"connect_timeout_seconds": 5, "statement_timeout_seconds": 60},
                    "allowed_functions": [],
                    "accepted_risks": [],
                    "login_audit": {
                        "status": "passed",
                        "findings": [
                            {
                                "code": "write_privileges",
                                "severity": "warning",
                                "accepted": False,
                                "detail": "The login may change data or schema: INSERT on public.orders",
                                "objects": ["INSERT on public.orders"],
                                "more_objects": 0,
                            }
                        ],
                        "inspected_at": "2026-11-01T08:00:00Z",
                    },
                    "configured": True,
                    "created_at": "2026-11-01T08:00:00Z",
                    "updated_at": "2026-11-01T08:00:00Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    type: DatasourceType
    connection_string: str = Field(description="With the password masked as ****; empty until configured")
    options: DatasourceOptions
    allowed_functions: list[str]
    accepted_risks: list[LoginFindingCode]
    login_audit: LoginAudit
    configured: bool = Field(
        True,
        description="False for one a bundle created without credentials: its runs fail"
        " `datasource_unconfigured` until an admin sets `connection_string`",
    )
    created_at: datetime
    updated_at: datetime


class DatasourceListQuery(ResourceListQuery):
    type: DatasourceType | None = None


class ConnectionTestOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "latency_ms": 42.7,
                    "error": None,
                    "login_audit": {
                        "status": "passed",
                        "findings": [],
                        "inspected_at": "2026-11-01T08:00:00Z",
                    },
                }
            ]
        }
    )

    ok: bool = Field(description="Connected, answered, and the login is not refused")
    latency_ms: float = Field(description="Time to connect, answer a trivial query and inspect the login")
    error: str | None = None
    login_audit: LoginAudit = Field(description="The inspection just made (`not_inspected` when unreachable)")


class SchemaColumn(BaseModel):
    name: str
    type: str


class SchemaTable(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(alias="schema", serialization_alias="schema")
    name: str
    columns: list[SchemaColumn]


class DatasourceSchema(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tables": [
                        {
                            "schema": "public",
                            "name": "orders",
                            "columns": [
                                {"name": "id", "type": "bigint"},
                                {"name": "region", "type": "text"},
                                {"name": "amount", "type": "numeric(12,2)"},
                                {"name": "created_at", "type": "timestamp with time zone"},
                            ],
                        }
                    ]
                }
            ]
        }
    )

    tables: list[SchemaTable]
