"""Requests and responses of the queries resource: saved SQL with typed `{{ name }}` parameters."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from loupe.models.common import DisplayName, Page, ResourceListQuery, StrictModel, Tags, refuse_null
from loupe.models.time_ranges import PRESETS_DESCRIPTION, TIME_PRESETS

ParameterType = Literal[
    "text", "number", "date", "datetime", "boolean", "enum", "date_range", "datetime_range"
]
ScalarValue = bool | int | float | str
# A range's value: {"preset": ...}, with "from" and "to" for the custom preset (and, in a run, resolved).
RangeValue = dict[str, str]
# A multi-value parameter's value is a list of its type's values.
ParameterValue = ScalarValue | list[ScalarValue] | RangeValue | None
# Each range type, and the type of its ends.
RANGE_TYPES: dict[str, ParameterType] = {"date_range": "date", "datetime_range": "datetime"}
RANGE_PARTS = ("from", "to")
# The most values a multi-value parameter takes: each is a bound placeholder of its own.
MAX_MULTI_VALUES = 1_000

MAX_TEXT_VALUE = 10_000
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


Description = Annotated[str, Field(max_length=10_000)]
Sql = Annotated[str, Field(min_length=1, max_length=100_000), AfterValidator(_not_blank)]
ParameterName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", description="An identifier, used as {{ name }} in the SQL"
    ),
]
EnumOption = Annotated[str, Field(min_length=1, max_length=200)]


def value_issue(
    parameter_type: ParameterType, options: list[str] | None, value: ParameterValue, multi: bool = False
) -> str | None:
    """Why `value` is not a valid value of a parameter of this type (a list of them when `multi`), or
    None when it is."""
    if multi:
        if not isinstance(value, list):
            return "must be a list of values: the parameter is multi-value"
        if len(value) > MAX_MULTI_VALUES:
            return f"must hold at most {MAX_MULTI_VALUES} values"
        for index, item in enumerate(value):
            issue = value_issue(parameter_type, options, item)
            if issue is not None:
                return f"value {index} {issue}"
        return None
    if isinstance(value, list):
        return "must be one value: the parameter is not multi-value"
    if parameter_type in RANGE_TYPES:
        return range_issue(RANGE_TYPES[parameter_type], value)
    if isinstance(value, dict):
        return "must be one value, not an object"
    match parameter_type:
        case "text":
            if not isinstance(value, str):
                return "must be a string"
            if len(value) > MAX_TEXT_VALUE:
                return f"must be at most {MAX_TEXT_VALUE} characters"
        case "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return "must be a finite number"
        case "boolean":
            if not isinstance(value, bool):
                return "must be true or false"
        case "date":
            if not (isinstance(value, str) and ISO_DATE.fullmatch(value) and _parses(date, value)):
                return "must be a date as YYYY-MM-DD"
        case "datetime":
            if not (isinstance(value, str) and ISO_DATETIME.fullmatch(value) and _parses(datetime, value)):
                return "must be an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z"
        case "enum":
            if value not in (options or []):
                return "must be one of the options"
    return None


def range_issue(end_type: ParameterType, value: ParameterValue) -> str | None:
    """Why `value` is not a range whose ends are of `end_type`: a preset, or custom with its two ends."""
    if not isinstance(value, dict):
        return 'must be a range: {"preset": "last_7d"}, or {"preset": "custom", "from": ..., "to": ...}'
    unknown = sorted(set(value) - {"preset", *RANGE_PARTS})
    if unknown:
        return f"has unknown fields: {', '.join(unknown)}"
    preset = value.get("preset")
    if preset not in TIME_PRESETS:
        return f"preset must be one of {', '.join(TIME_PRESETS)}"
    given = [part for part in RANGE_PARTS if part in value]
    if preset != "custom":
        return "takes from and to with the custom preset only" if given else None
    if len(given) < len(RANGE_PARTS):
        return "the custom preset needs from and to"
    for part in RANGE_PARTS:
        issue = value_issue(end_type, None, value[part])
        if issue is not None:
            return f"{part} {issue}"
    kind = date if end_type == "date" else datetime
    try:
        ordered = kind.fromisoformat(value["from"]) < kind.fromisoformat(value["to"])
    except TypeError:
        return "from and to must both have a time zone, or neither"
    return None if ordered else "from must be before to"


def _parses(kind: type[date], text: str) -> bool:
    try:
        kind.fromisoformat(text)
    except ValueError:
        return False
    return True


# The types whose values may come from another query's result (a dropdown).
OPTIONS_QUERY_TYPES = ("text", "number", "date", "datetime")
ColumnName = Annotated[str, Field(min_length=1, max_length=200)]


class OptionsQuery(StrictModel):
    """Where a dropdown's values come from: the latest succeeded result of another saved query."""

    query_id: UUID = Field(description="A saved query of the organization; its latest succeeded run")
    value_column: ColumnName | None = Field(None, description="The column of the values; the first if null")
    label_column: ColumnName | None = Field(
        None, description="The column of the labels shown; the second (or the values') if null"
    )
    parameters: dict[ParameterName, ParameterName] = Field(
        default_factory=dict,
        max_length=20,
        description="Values for the options query's parameters, each from another parameter of the same"
        " query (or filter of the same dashboard), by name: the options then depend on it (cascading)",
    )


class QueryParameter(StrictModel):
    """One declared parameter. Its default, when given, is a valid value of its type."""

    name: ParameterName
    type: ParameterType = Field(
        description="A range (`date_range`, `datetime_range`) is used as `{{ name.from }}` and"
        " `{{ name.to }}`: the half-open range [from, to) its preset names when the query runs, in the"
        f" organization's time zone (a schedule's own); {PRESETS_DESCRIPTION}"
    )
    options: list[EnumOption] | None = Field(
        None,
        max_length=500,
        validate_default=True,
        description="The allowed values; enum only, and required there",
    )
    multi: bool = Field(
        False,
        description=f"Takes a list of values (at most {MAX_MULTI_VALUES}), for `IN {{{{ name }}}}`: each"
        " value is bound on its own, and an empty list matches no row",
    )
    options_query: OptionsQuery | None = Field(
        None,
        description=f"The allowed values are another query's ({', '.join(OPTIONS_QUERY_TYPES)} only): a run"
        " refuses any other (422), and GET /queries/{query_id}/parameters/{name}/options lists them",
    )
    default: ParameterValue = Field(None, description="Used when a run does not give a value")
    required: bool = Field(False, description="A run must give a value (or fall back on the default)")

    @field_validator("options_query")
    @classmethod
    def _options_query_fits_type(
        cls, source: OptionsQuery | None, info: ValidationInfo
    ) -> OptionsQuery | None:
        if source is not None and info.data.get("type") not in OPTIONS_QUERY_TYPES:
            raise ValueError(
                f"only {', '.join(OPTIONS_QUERY_TYPES)} parameters take their values from a query"
            )
        return source

    @field_validator("options")
    @classmethod
    def _options_fit_type(cls, options: list[str] | None, info: ValidationInfo) -> list[str] | None:
        parameter_type = info.data.get("type")
        if parameter_type == "enum":
            if not options:
                raise ValueError("an enum parameter needs at least one option")
            if len(set(options)) != len(options):
                raise ValueError("options must be unique")
        elif options is not None and parameter_type is not None:
            raise ValueError("only enum parameters take options")
        return options

    @field_validator("multi")
    @classmethod
    def _multi_of_values(cls, multi: bool, info: ValidationInfo) -> bool:
        if multi and info.data.get("type") in RANGE_TYPES:
            raise ValueError("a range parameter takes one range, not a list")
        return multi

    @field_validator("default")
    @classmethod
    def _default_fits_type(cls, default: ParameterValue, info: ValidationInfo) -> ParameterValue:
        parameter_type = info.data.get("type")
        # Without a valid type (or, for an enum, valid options) the error is reported there already.
        if (
            default is None
            or parameter_type is None
            or (parameter_type == "enum" and "options" not in info.data)
        ):
            return default
        issue = value_issue(parameter_type, info.data.get("options"), default, info.data.get("multi", False))
        if issue is not None:
            raise ValueError(f"the default {issue}")
        return default


def unique_names(parameters: list[QueryParameter]) -> list[QueryParameter]:
    names = [parameter.name for parameter in parameters]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"parameter names must be unique; repeated: {', '.join(repeated)}")
    return parameters


Parameters = Annotated[list[QueryParameter], Field(max_length=50), AfterValidator(unique_names)]


MONTHLY_REVENUE_SQL = (
    "SELECT date_trunc('month', created_at) AS month, region, sum(amount) AS revenue\n"
    "FROM orders WHERE created_at >= {{ start }}\nGROUP BY 1, 2 ORDER BY 1, 2"
)


class QueryCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Monthly revenue by region",
                    "description": "Order revenue per region and month, from a start date.",
                    "datasource_id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
                    "sql": MONTHLY_REVENUE_SQL,
                    "parameters": [
                        {"name": "start", "type": "date", "default": "2026-01-01", "required": True}
                    ],
                    "tags": ["finance", "revenue"],
                }
            ]
        }
    )

    name: DisplayName
    description: Description | None = None
    datasource_id: UUID = Field(description="A datasource of the caller's organization")
    sql: Sql = Field(description="The SQL, with a {{ name }} placeholder for each declared parameter")
    parameters: Parameters = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)


class QueryUpdate(StrictModel):
    """Only the fields sent change; new sql or parameters are checked against the stored other half."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Monthly revenue by region (net)", "tags": ["finance", "revenue", "net"]}]
        }
    )

    name: DisplayName | None = None
    description: Description | None = None
    datasource_id: UUID | None = None
    sql: Sql | None = None
    parameters: Parameters | None = None
    tags: Tags | None = None

    _present = field_validator("name", "datasource_id", "sql", "parameters", "tags")(refuse_null)


class LatestRun(BaseModel):
    """The query's newest succeeded run, in brief (GET /runs/{id} has the rest)."""

    id: UUID
    finished_at: datetime
    row_count: int


class QueryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
                    "name": "Monthly revenue by region",
                    "description": "Order revenue per region and month, from a start date.",
                    "datasource_id": "7a9e4c1d-2b3f-4e5a-8c6d-9f0e1a2b3c4d",
                    "sql": MONTHLY_REVENUE_SQL,
                    "parameters": [
                        {
                            "name": "start",
                            "type": "date",
                            "default": "2026-01-01",
                            "options": None,
                            "required": True,
                        }
                    ],
                    "revision": 3,
                    "tags": ["finance", "revenue"],
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-11-02T09:14:27Z",
                    "updated_at": "2026-11-18T16:03:51Z",
                    "latest_run": {
                        "id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                        "finished_at": "2026-11-26T06:00:01.412Z",
                        "row_count": 48,
                    },
                }
            ]
        }
    )

    id: UUID
    name: str
    description: str | None
    datasource_id: UUID
    sql: str
    parameters: list[QueryParameter]
    revision: int = Field(
        ge=1,
        description="The query's revision: 1 when created, one more on each change; runs record it, and"
        " GET /queries/{id}/revisions/{n} holds its definition",
    )
    tags: list[str]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    latest_run: LatestRun | None = Field(
        None,
        description="The newest succeeded run, on GET /queries/{id} and after a write (null in lists, and"
        " before any run succeeds); the ETag changes when it does",
    )


class QueryListQuery(ResourceListQuery):
    datasource_id: UUID | None = Field(None, description="Only queries on this datasource")
    created_by: UUID | None = Field(None, description="Only queries this user created")


class ParameterOption(BaseModel):
    value: ScalarValue = Field(description="What a run gives as the parameter's value")
    label: str = Field(description="What a person picks it by")


class ParameterOptionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(
        None, min_length=1, max_length=200, description="Only options whose label or value holds this"
    )
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class ParameterOptionsPage(Page[ParameterOption]):
    """A page of a dropdown's options, from the options query's latest succeeded run."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"value": "emea", "label": "Europe, Middle East and Africa"}],
                    "total": 1,
                    "limit": 100,
                    "offset": 0,
                    "next_offset": None,
                    "truncated_by": None,
                    "run_id": "1d3f5b7d-9f1b-4d5f-8b9d-1f3b5d7f9b1d",
                    "refreshed_at": "2026-11-26T06:00:01.412Z",
                    "options_truncated": False,
                }
            ]
        }
    )

    run_id: UUID = Field(description="The options query's run they come from; run the query to refresh them")
    refreshed_at: datetime | None = Field(description="When that run finished; null while it is pending")
    pending: bool = Field(
        False,
        description="The options query is still running for these values (no items yet): wait for `run_id`"
        " (GET /runs/{id}?wait=20) and ask again",
    )
    options_truncated: bool = Field(description="The result had more rows than the 10,000 taken as options")
