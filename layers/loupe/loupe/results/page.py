"""One page of a run's stored rows: what the results store reads, and what GET /runs/{id}/results answers.

A page is bounded by rows and by bytes, measured as Lambda measures its proxy response (see proxy_bytes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# Lambda refuses a proxy response over 6 MB (API Gateway then answers 502). A page's rows stop at 4 MiB
# as they appear in that response, which leaves room for the columns, the headers and the envelope.
PAGE_MAX_BYTES = 4 * 1024 * 1024
# What ended a page before the end of the rows: the `limit` asked for, or PAGE_MAX_BYTES.
PageBound = Literal["rows", "bytes"]


def proxy_bytes(body_text: str) -> int:
    """The bytes a JSON text (one row, one item) takes inside the serialized proxy response: the body
    is a JSON string there, so its quotes and backslashes are escaped again, and both passes write
    anything outside ASCII as \\u escapes."""
    return len(json.dumps(body_text)) - 2


ItemT = TypeVar("ItemT")


def take_within(sized: Iterable[tuple[ItemT, int]], budget: int) -> tuple[list[ItemT], int | None]:
    """The leading items whose sizes add up to at most `budget`, and the size of the first item left
    out (None when every item fit). Stops reading `sized` there, so later items are never produced."""
    kept: list[ItemT] = []
    used = 0
    for item, size in sized:
        if used + size > budget:
            return kept, size
        used += size
        kept.append(item)
    return kept, None


def body_text(value: Any) -> str:
    """A JSON-ready value as the API's serializer writes it into a response body (compact, ASCII)."""
    return json.dumps(value, separators=(",", ":"))


class ResultColumn(BaseModel):
    name: str
    type: str


class RunResults(BaseModel):
    """One page of a succeeded run's rows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "columns": [{"name": "region", "type": "text"}, {"name": "revenue", "type": "numeric"}],
                    "rows": [["EMEA", "182340.50"], ["Americas", "251120.00"]],
                    "total_rows": 3,
                    "offset": 0,
                    "limit": 2,
                    "next_offset": 2,
                    "truncated_by": "rows",
                }
            ]
        }
    )

    columns: list[ResultColumn]
    rows: list[list[Any]]
    total_rows: int
    offset: int
    limit: int
    next_offset: int | None = Field(
        description="The offset of the next page; null once this page reaches the last row"
    )
    truncated_by: PageBound | None = Field(
        description="What ended the page before the last row: `rows` (the limit asked for) or `bytes`"
        f" (the rows reached {PAGE_MAX_BYTES} bytes once serialized, so the page holds fewer than `limit`);"
        " null on the last page"
    )
