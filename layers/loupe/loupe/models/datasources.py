"""Requests and responses of the datasources resource; connection strings go in, masked ones come out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from loupe.connectors import DatasourceType
from loupe.models.common import ResourceListQuery
from loupe.security.connection_policy import MAX_CONNECTION_STRING

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
                }
            ]
        },
    )

    name: DatasourceName
    type: DatasourceType
    connection_string: ConnectionString
    options: DatasourceOptions = Field(default_factory=DatasourceOptions)


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
                    "created_at": "2026-11-01T08:00:00Z",
                    "updated_at": "2026-11-01T08:00:00Z",
                }
            ]
        }
    )

    id: UUID
    name: str
    type: DatasourceType
    connection_string: str = Field(description="With the password masked as ****")
    options: DatasourceOptions
    created_at: datetime
    updated_at: datetime


class DatasourceListQuery(ResourceListQuery):
    type: DatasourceType | None = None


class ConnectionTestOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": True, "latency_ms": 42.7, "error": None}]}
    )

    ok: bool
    latency_ms: float = Field(description="Time to connect and answer a trivial query")
    error: str | None = None


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
