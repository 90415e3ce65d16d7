"""Models and field types shared by every resource: the error envelope, the list page, names, tags."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Self, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import to_jsonable_python

from loupe.errors import DependentKind
from loupe.results.page import PAGE_MAX_BYTES, PageBound, body_text, proxy_bytes, take_within

ItemT = TypeVar("ItemT")


def _unique_tags(tags: list[str]) -> list[str]:
    # A repeated tag adds nothing; keep the first of each, in order.
    return list(dict.fromkeys(tags))


DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Field(max_length=20), AfterValidator(_unique_tags)]


def refuse_null(value: Any) -> Any:
    """For PATCH fields that may be left out but not cleared."""
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, and no string is unbounded."""

    model_config = ConfigDict(extra="forbid", str_max_length=100_000)


class ErrorDetail(BaseModel):
    field: str
    issue: str


class ErrorDependent(BaseModel):
    kind: DependentKind
    id: UUID
    name: str


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    error_id: str = Field(examples=["3f2c9a7e4b1d"])
    details: list[ErrorDetail] | None = None
    dependents: list[ErrorDependent] | None = Field(
        None,
        description="With `in_use`: what still uses the resource (the first 100; the message counts them"
        " all). A dashboard uses it through its tiles, a canvas through its nodes.",
    )


class ErrorEnvelope(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "validation_error",
                        "message": "Request validation failed",
                        "error_id": "3f2c9a7e4b1d",
                        "details": [
                            {"field": "body.name", "issue": "String should have at least 1 character"}
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorBody


class Page(BaseModel, Generic[ItemT]):
    """One page of a list: `GET /<collection>` answers with this. Like a page of results, it holds
    at most PAGE_MAX_BYTES of items as Lambda serializes them (queries carry up to 100,000 characters
    of SQL, so 200 of them could pass Lambda's 6 MB), and never less than one item."""

    items: list[ItemT]
    total: int = Field(ge=0, description="Items matching the filters, over all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(
        None, description="The offset of the next page; null once this page reaches the last item"
    )
    truncated_by: PageBound | None = Field(
        None,
        description="What ended the page before the last item: `rows` (the limit asked for) or `bytes`"
        f" (the items reached {PAGE_MAX_BYTES} bytes once serialized, so the page holds fewer than"
        " `limit`); null on the last page",
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        sized = ((item, proxy_bytes(body_text(to_jsonable_python(item))) + 1) for item in self.items)
        kept, overflow = take_within(sized, PAGE_MAX_BYTES)
        if overflow is not None:
            # One item over the budget still makes a page: lists have no export to send it to.
            kept = kept or self.items[:1]
            if len(kept) < len(self.items):
                del self.items[len(kept) :]
                self.truncated_by = "bytes"
        end = self.offset + len(self.items)
        if end < self.total:
            self.next_offset = end
            self.truncated_by = self.truncated_by or "rows"
        return self


SORT_PATTERN = r"^-?[a-z_]{1,40}(,-?[a-z_]{1,40}){0,4}$"


class ListQuery(BaseModel):
    """The query string every `GET /<collection>` accepts (API.md "Lists")."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)
    sort: str | None = Field(
        None, pattern=SORT_PATTERN, description="Fields, `-` for descending, comma-separated"
    )
    q: str | None = Field(
        None, min_length=1, max_length=200, description="Text search over name and description"
    )
    tag: str | None = Field(None, min_length=1, max_length=50)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None


class DeleteQuery(BaseModel):
    """The query string of a delete of what other resources use (datasources, queries, visualizations)."""

    model_config = ConfigDict(extra="forbid")

    cascade: bool = Field(
        False,
        description="Delete what still uses it too (queries of a datasource, visualizations and schedules of"
        " a query; dashboards lose those tiles, canvases those nodes); without it such a delete is a 409"
        " `in_use` listing them",
    )


class ResourceListQuery(ListQuery):
    """The query string of a list of resources that are edited, which filters on `updated_at` too."""

    updated_after: AwareDatetime | None = None
    updated_before: AwareDatetime | None = None
