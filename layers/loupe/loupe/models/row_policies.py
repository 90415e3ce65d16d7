"""Requests and responses of row policies and of the claims that bind them (a member's, an API key's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from loupe.models.common import StrictModel
from loupe.models.identity import RoleName
from loupe.models.queries import Description

ClaimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
ClaimText = Annotated[str, StringConstraints(strict=True, max_length=1000)]
ClaimScalar = ClaimText | StrictInt | StrictFloat | StrictBool
ClaimValue = ClaimScalar | Annotated[list[ClaimScalar], Field(max_length=1000)]
Claims = Annotated[
    dict[ClaimName, ClaimValue],
    Field(
        max_length=50,
        description="Values a row policy's predicate binds as :claims.name: text, a number, a boolean, or a"
        " list of them (for IN)",
    ),
]

POLICY_EXAMPLE: JsonDict = {
    "table": "public.orders",
    "predicate": "tenant_id = :claims.tenant AND region IN :claims.regions",
    "applies_to": {
        "roles": ["viewer"],
        "api_keys": [],
        "members": [],
        "embed_tokens": True,
        "share_links": True,
    },
    "description": "Each customer sees its own orders.",
}
POLICY_OUT_EXAMPLE: JsonDict = {
    "id": "8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a",
    "datasource_id": "0b9a8f7e-6d5c-4b3a-8f1e-2d3c4b5a6978",
    **POLICY_EXAMPLE,
    "claims": ["tenant", "regions"],
    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
    "created_at": "2026-12-01T09:14:27Z",
    "updated_at": "2026-12-01T09:14:27Z",
}


class AppliesTo(StrictModel):
    """Whom a policy binds: members and API keys of these roles, these members, these API keys, and
    guests of embed tokens or share links. Anyone it does not name reads the table unfiltered."""

    roles: list[RoleName] = Field(default_factory=list, max_length=3)
    members: list[UUID] = Field(default_factory=list, max_length=1000, description="Users' ids")
    api_keys: list[UUID] = Field(default_factory=list, max_length=1000, description="API keys' ids")
    embed_tokens: bool = False
    share_links: bool = False

    @model_validator(mode="after")
    def _names_someone(self) -> Self:
        if not (self.roles or self.members or self.api_keys or self.embed_tokens or self.share_links):
            raise ValueError(
                "a policy must apply to someone: roles, members, api_keys, embed_tokens or share_links"
            )
        return self


class RowPolicyCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [POLICY_EXAMPLE]})

    table: str = Field(min_length=3, max_length=300, description="The table, schema-qualified: schema.table")
    predicate: str = Field(
        min_length=1,
        max_length=4000,
        description="A condition over the table's own columns; :claims.name binds a claim's value",
    )
    applies_to: AppliesTo
    description: Description = ""


class RowPolicyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [POLICY_OUT_EXAMPLE]})

    id: UUID
    datasource_id: UUID
    table: str = Field(description="As the engine names it: unquoted names folded")
    predicate: str
    claims: list[str] = Field(
        description="The claims the predicate binds, which a principal it applies to needs"
    )
    applies_to: AppliesTo
    description: str
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class RowPolicyList(BaseModel):
    """A datasource's row policies, oldest first (at most 100)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [POLICY_OUT_EXAMPLE]}]})

    items: list[RowPolicyOut]


class ClaimsChange(StrictModel):
    """A member's or an API key's claims, replaced as a whole."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"claims": {"tenant": "acme", "regions": ["eu"]}}]}
    )

    claims: Claims
