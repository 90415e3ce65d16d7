"""Requests and responses of the visualizations resource, and the options model of each chart type.

Every option has a default, except the columns a chart cannot be drawn without.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self, Union
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from loupe.models.common import DisplayName, ResourceListQuery, StrictModel, Tags, refuse_null

VisualizationType = Literal["table", "line", "bar", "area", "pie", "scatter", "counter", "pivot"]
Aggregation = Literal["none", "count", "sum", "avg", "min", "max"]

ColumnName = Annotated[str, Field(min_length=1, max_length=200, description="A column of the query's result")]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Color = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$", examples=["#1f77b4"])]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def named_columns(self) -> list[str]:
        """The result columns these options name, in order."""
        return []


class Formatting(Options):
    """How numbers are shown."""

    decimals: int | None = Field(None, ge=0, le=10, description="None keeps the value's own precision")
    thousands_separator: bool = True
    prefix: str = Field("", max_length=20, examples=["$"])
    suffix: str = Field("", max_length=20, examples=["%"])


class Axis(Options):
    title: Label | None = None
    scale: Literal["linear", "log"] = "linear"
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class Series(Options):
    column: ColumnName
    label: Label | None = None
    color: Color | None = None
    axis: Literal["left", "right"] = "left"


def _distinct_columns(series: list[Series]) -> list[Series]:
    columns = [item.column for item in series]
    if len(set(columns)) != len(columns):
        raise ValueError("each column may be drawn once")
    return series


class CartesianOptions(Options):
    """Charts on an x axis with one or more y series: line, bar, area, scatter."""

    x: ColumnName
    y: Annotated[list[Series], Field(min_length=1, max_length=20)]
    group_by: ColumnName | None = Field(None, description="Split each series by this column's values")
    aggregation: Aggregation = "none"
    x_axis: Axis = Field(default_factory=Axis)
    y_axis: Axis = Field(default_factory=Axis)
    legend: bool = True
    formatting: Formatting = Field(default_factory=Formatting)

    _distinct = field_validator("y")(_distinct_columns)

    def named_columns(self) -> list[str]:
        return [self.x, *(series.column for series in self.y), *([self.group_by] if self.group_by else [])]


class LineOptions(CartesianOptions):
    interpolation: Literal["linear", "step", "smooth"] = "linear"
    show_points: bool = False


class BarOptions(CartesianOptions):
    stacked: bool = False
    horizontal: bool = False


class AreaOptions(CartesianOptions):
    stacked: bool = False


class ScatterOptions(CartesianOptions):
    point_size: int = Field(4, ge=1, le=50)


class PieOptions(Options):
    label: ColumnName = Field(description="The column naming each slice")
    value: ColumnName = Field(description="The column sizing each slice")
    aggregation: Aggregation = "sum"
    donut: bool = False
    show_percent: bool = True
    formatting: Formatting = Field(default_factory=Formatting)

    def named_columns(self) -> list[str]:
        return [self.label, self.value]


class CounterOptions(Options):
    value: ColumnName = Field(description="The column whose value is shown")
    aggregation: Aggregation = "none"
    target: ColumnName | None = Field(None, description="A column to compare the value with")
    title: Label | None = None
    formatting: Formatting = Field(default_factory=Formatting)

    def named_columns(self) -> list[str]:
        return [self.value, *([self.target] if self.target else [])]


class TableColumn(Options):
    column: ColumnName
    label: Label | None = None
    visible: bool = True
    formatting: Formatting = Field(default_factory=Formatting)


class TableOptions(Options):
    columns: Annotated[list[TableColumn], Field(max_length=500)] = Field(
        default_factory=list, description="Per-column settings; columns not named are shown as they come"
    )
    page_size: int = Field(25, ge=1, le=1000)

    def named_columns(self) -> list[str]:
        return [item.column for item in self.columns]


class PivotOptions(Options):
    rows: Annotated[list[ColumnName], Field(max_length=20)] = Field(default_factory=list)
    columns: Annotated[list[ColumnName], Field(max_length=20)] = Field(default_factory=list)
    values: Annotated[list[ColumnName], Field(max_length=20)] = Field(default_factory=list)
    aggregation: Aggregation = "sum"
    totals: bool = True
    formatting: Formatting = Field(default_factory=Formatting)

    def named_columns(self) -> list[str]:
        return [*self.rows, *self.columns, *self.values]


OPTIONS_BY_TYPE: dict[VisualizationType, type[Options]] = {
    "table": TableOptions,
    "line": LineOptions,
    "bar": BarOptions,
    "area": AreaOptions,
    "pie": PieOptions,
    "scatter": ScatterOptions,
    "counter": CounterOptions,
    "pivot": PivotOptions,
}

OPTIONS_DESCRIPTION = (
    "Validated against the options model of `type` ({}); missing options take their defaults".format(
        ", ".join(f"{name}: {model.__name__}" for name, model in OPTIONS_BY_TYPE.items())
    )
)
OptionsBody = Annotated[dict[str, Any], Field(description=OPTIONS_DESCRIPTION)]


def _one_per_type(role: str, base: type[BaseModel]) -> Any:
    """`base` once per chart type, with `type` fixed and `options` that type's model, discriminated by
    `type` (LineVisualizationCreate...)."""
    fixed: dict[str, Any] = {name: Literal[name] for name in OPTIONS_BY_TYPE}
    variants = tuple(
        create_model(
            f"{name.capitalize()}Visualization{role}",
            __base__=base,
            __module__=__name__,
            type=(fixed[name], ...),
            # Required where the type must name columns (x, value...); its defaults otherwise.
            options=(model, ...) if _needs_columns(model) else (model, Field(default_factory=model)),
        )
        for name, model in OPTIONS_BY_TYPE.items()
    )
    return Annotated[Union[variants], Field(discriminator="type")]  # noqa: UP007


def _needs_columns(model: type[Options]) -> bool:
    return any(field.is_required() for field in model.model_fields.values())


class DocumentedAsUnion(BaseModel):
    """Validated as one model whose `options` the service checks against `type` (so that a 422 names
    `body.options.x`), and documented as `documented_as`: one model per type, discriminated by `type`,
    which is what that check amounts to. A generated client gets each type's options as a model."""

    documented_as: ClassVar[Any]

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: JsonSchemaValue = handler(TypeAdapter(cls.documented_as).core_schema)
        extra = cls.model_config.get("json_schema_extra")
        examples = extra.get("examples") if isinstance(extra, dict) else None
        return {**schema, "title": cls.__name__, "examples": examples}


class _VisualizationCreateFields(StrictModel):
    name: DisplayName
    query_id: UUID = Field(description="A query of the caller's organization")
    tags: Tags = Field(default_factory=list)


class _VisualizationOutFields(BaseModel):
    id: UUID
    name: str
    query_id: UUID
    tags: list[str]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    warnings: list[str]


class VisualizationCreate(StrictModel, DocumentedAsUnion):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Revenue by region",
                    "query_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
                    "type": "line",
                    "options": {
                        "x": "month",
                        "y": [{"column": "revenue", "label": "Revenue", "color": "#1f77b4"}],
                        "group_by": "region",
                        "formatting": {"decimals": 0, "prefix": "€"},
                    },
                    "tags": ["finance"],
                }
            ]
        }
    )

    documented_as = _one_per_type("Create", _VisualizationCreateFields)

    name: DisplayName
    query_id: UUID = Field(description="A query of the caller's organization")
    type: VisualizationType
    options: OptionsBody = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)


class VisualizationUpdate(StrictModel):
    """Only the fields sent change; options come with their type, and are checked together."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Revenue by region, stacked",
                    "type": "area",
                    "options": {
                        "x": "month",
                        "y": [{"column": "revenue", "label": "Revenue"}],
                        "group_by": "region",
                        "stacked": True,
                    },
                }
            ]
        }
    )

    name: DisplayName | None = None
    query_id: UUID | None = None
    type: VisualizationType | None = None
    options: Annotated[
        OptionsBody | None,
        Field(description=f"Sent with `type`, whether or not it changes. {OPTIONS_DESCRIPTION}"),
    ] = None
    tags: Tags | None = None

    _present = field_validator("name", "query_id", "type", "options", "tags")(refuse_null)

    @field_validator("options")
    @classmethod
    def _with_type(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Options are read as the options of one type: the client says which, as a create does.
        if info.data.get("type") is None:
            raise ValueError("send `type` with `options`")
        return options


class VisualizationOut(DocumentedAsUnion):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                    "name": "Revenue by region",
                    "query_id": "c3d2e1f0-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
                    "type": "line",
                    "options": {
                        "x": "month",
                        "y": [{"column": "revenue", "label": "Revenue", "color": "#1f77b4", "axis": "left"}],
                        "group_by": "region",
                        "aggregation": "none",
                        "x_axis": {"title": None, "scale": "linear", "min": None, "max": None},
                        "y_axis": {"title": None, "scale": "linear", "min": None, "max": None},
                        "legend": True,
                        "formatting": {
                            "decimals": 0,
                            "thousands_separator": True,
                            "prefix": "€",
                            "suffix": "",
                        },
                        "interpolation": "linear",
                        "show_points": False,
                    },
                    "tags": ["finance"],
                    "created_by": "5f1c2e8a-3b4d-4c6e-8f0a-1b2c3d4e5f60",
                    "created_at": "2026-11-02T09:31:10Z",
                    "updated_at": "2026-11-02T09:31:10Z",
                    "warnings": [],
                }
            ]
        }
    )

    documented_as = _one_per_type("Out", _VisualizationOutFields)

    id: UUID
    name: str
    query_id: UUID
    type: VisualizationType
    options: dict[str, Any]
    tags: list[str]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="What the options name that the query's latest succeeded result lacks (a renamed or"
        " dropped column); empty when it has them all or the query has not run",
    )


class VisualizationListQuery(ResourceListQuery):
    query_id: UUID | None = Field(None, description="Only visualizations of this query")
    created_by: UUID | None = Field(None, description="Only visualizations this user created")
