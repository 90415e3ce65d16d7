"""Models shared by every resource: the error envelope and the list page."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

ItemT = TypeVar("ItemT")


class ErrorDetail(BaseModel):
    field: str
    issue: str


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    error_id: str = Field(examples=["3f2c9a7e4b1d"])
    details: list[ErrorDetail] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Page(BaseModel, Generic[ItemT]):
    """One page of a list: `GET /<collection>` answers with this."""

    items: list[ItemT]
    total: int = Field(ge=0, description="Items matching the filters, over all pages")
    limit: int
    offset: int
