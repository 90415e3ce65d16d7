"""The bundle document (schema version 1): saved objects as definitions named by stable keys, references
by key rather than database id; and the requests and answers of exporting, planning and applying one."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from loupe.connectors import DatasourceType
from loupe.models.common import StrictModel
from loupe.models.datasources import DatasourceName
from loupe.models.revisions import FieldChange

BUNDLE_SCHEMA = "loupe.bundle/1"
# In dependency order: each kind refers only to kinds before it.
BundleKind = Literal[
    "datasources", "snippets", "queries", "visualizations", "dashboards", "canvases", "schedules"
]
BUNDLE_KINDS: tuple[BundleKind, ...] = (
    "datasources",
    "snippets",
    "queries",
    "visualizations",
    "dashboards",
    "canvases",
    "schedules",
)
MAX_OBJECTS = 2_000
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
BundleKey = Annotated[
    str,
    StringConstraints(pattern=KEY_PATTERN.pattern),
    Field(description="Stable across organizations: letters, digits, '.', '_', '-'; at most 100"),
]

BUNDLE_EXAMPLE: dict[str, Any] = {
    "schema": BUNDLE_SCHEMA,
    "source": {"organization_id": "5bccbc0c-9718-4e1b-be25-328321974d2b"},
    "datasources": [{"key": "warehouse", "name": "Warehouse", "type": "postgres"}],
    "snippets": [],
    "queries": [
        {
            "key": "revenue",
            "revision": 3,
            "datasource": "warehouse",
            "name": "Revenue",
            "description": None,
            "sql": "SELECT month, sum(amount) AS revenue FROM orders GROUP BY 1",
            "parameters": [],
            "tags": ["finance"],
        }
    ],
    "visualizations": [
        {
            "key": "revenue-chart",
            "revision": 1,
            "query": "revenue",
            "name": "Revenue",
            "type": "table",
            "options": {},
            "tags": [],
        }
    ],
    "dashboards": [],
    "canvases": [],
}


class BundleSource(BaseModel):
    organization_id: UUID = Field(description="Where it was exported: conflicts are judged against it")


class Bundle(StrictModel):
    """A set of saved objects. Each is the definition the API shows (as in a revision) with a `key`,
    a `revision` (the one exported, when the kind keeps them) and references by key: a query's
    `datasource`, a visualization's `query`, a tile's `visualization`, an options query's `query`, a
    canvas node's `ref`, a schedule's `query`. A datasource is only `{key, name, type}`: never its
    connection; a schedule's alert rules never carry their webhooks (applying keeps those in place)."""

    schema_: Literal["loupe.bundle/1"] = Field("loupe.bundle/1", alias="schema")
    source: BundleSource | None = None
    datasources: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)
    snippets: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)
    queries: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)
    visualizations: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)
    dashboards: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)
    canvases: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)
    schedules: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_OBJECTS)

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [BUNDLE_EXAMPLE]},
    )

    @field_validator(*BUNDLE_KINDS)
    @classmethod
    def _keyed_once(cls, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        for index, item in enumerate(objects):
            key = item.get("key")
            if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
                raise ValueError(
                    f"item {index} has no key of letters, digits, '.', '_' and '-' (at most 100)"
                )
            if key in seen:
                raise ValueError(f"the key {key!r} is used twice")
            seen.add(key)
        return objects


def _comma_separated(value: Any) -> Any:
    """`include=queries,dashboards` as well as `include=queries&include=dashboards`."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [
            part for item in value for part in (item.split(",") if isinstance(item, str) else [item]) if part
        ]
    return value


class BundleDatasource(BaseModel):
    """A bundle's datasource: what names it, never its connection."""

    key: BundleKey
    name: DatasourceName
    type: DatasourceType


class BundleExportQuery(BaseModel):
    """GET /bundles?include=queries,dashboards: which kinds (all when left out)."""

    model_config = ConfigDict(extra="forbid")

    delivery: Literal["inline", "url"] = Field(
        "inline",
        description="`url`: a short-lived signed URL of the bundle instead (for one larger than a response)",
    )
    include: Annotated[list[BundleKind] | None, BeforeValidator(_comma_separated)] = Field(
        None, description="Kinds to export, comma-separated or repeated"
    )


class BundlePlanRequest(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"bundle": BUNDLE_EXAMPLE, "prune": False}]},
    )

    bundle: Bundle | None = Field(None, description="The bundle; or `upload_id` for one uploaded")
    upload_id: UUID | None = Field(
        None, description="A bundle too large for a request, sent to POST /bundles/uploads' URL"
    )
    prune: bool = Field(
        False, description="Also delete the objects of the bundle's kinds that it does not hold"
    )

    @model_validator(mode="after")
    def _one_bundle(self) -> BundlePlanRequest:
        if (self.bundle is None) == (self.upload_id is None):
            raise ValueError("send either `bundle` or `upload_id`")
        return self


class BundleApplyRequest(BundlePlanRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"bundle": BUNDLE_EXAMPLE, "prune": False, "base": "9c1e..."}]},
    )

    base: str = Field(max_length=64, description="The plan's `base`: refused (409) if it changed since")


class PlannedChange(BaseModel):
    action: Literal["create", "update", "delete"]
    kind: BundleKind
    key: BundleKey
    id: UUID | None = Field(description="The object in this organization; null for one to create")
    changes: list[FieldChange] = Field(
        default_factory=list, description="For an update: each field that changes (before: now)"
    )


class BundleConflict(BaseModel):
    kind: BundleKind
    key: str
    code: Literal[
        "changed_since_export", "missing_reference", "missing_datasource", "invalid", "cycle", "in_use"
    ]
    message: str


PLAN_EXAMPLE: dict[str, Any] = {
    "changes": [
        {
            "action": "update",
            "kind": "queries",
            "key": "revenue",
            "id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
            "changes": [{"path": "/tags", "before": [], "after": ["finance"]}],
        }
    ],
    "conflicts": [],
    "datasources": {"warehouse": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d"},
    "unconfigured": [],
    "base": "5d41402abc4b2a76b9719d911017c592",
}


class BundlePlan(BaseModel):
    """What applying the bundle would do; nothing changed yet."""

    model_config = ConfigDict(json_schema_extra={"examples": [PLAN_EXAMPLE]})

    changes: list[PlannedChange]
    conflicts: list[BundleConflict] = Field(description="While there are any, applying is refused")
    datasources: dict[str, UUID] = Field(
        description="Each bundle datasource's key and the datasource of this organization it maps to"
    )
    unconfigured: list[str] = Field(
        description="Keys of the datasources an admin must configure (set connection_string): created by"
        " this plan without credentials, or still without them"
    )
    base: str = Field(description="The state planned against: send it to apply")


class BundleApplied(BundlePlan):
    """The plan as applied, in one transaction."""

    model_config = ConfigDict(json_schema_extra={"examples": [PLAN_EXAMPLE]})


SIGNED_EXAMPLE: dict[str, Any] = {
    "url": "https://results.s3.amazonaws.com/bundles/...json?X-Amz-Signature=...",
    "expires_at": "2026-12-04T10:15:00Z",
}


class BundleDownload(BaseModel):
    """GET /bundles?delivery=url: where the bundle is, for a while."""

    model_config = ConfigDict(json_schema_extra={"examples": [SIGNED_EXAMPLE]})

    url: str = Field(description="GET it (without Loupe's credentials) before `expires_at`")
    expires_at: datetime


class BundleUpload(BaseModel):
    """POST /bundles/uploads: where to PUT a bundle too large for a request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**SIGNED_EXAMPLE, "upload_id": "0f1e2d3c-4b5a-4968-8778-695a4b3c2d1e"}]
        }
    )

    upload_id: UUID = Field(description="Name it in POST /bundles/plan and /bundles/apply")
    url: str = Field(
        description="PUT the bundle's JSON here (Content-Type: application/json) before `expires_at`"
    )
    expires_at: datetime
