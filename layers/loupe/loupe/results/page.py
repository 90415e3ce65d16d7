"""One page of a run's stored rows: what the results store reads, and what GET /runs/{id}/results answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


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
                    "total_rows": 2,
                    "offset": 0,
                    "limit": 1000,
                }
            ]
        }
    )

    columns: list[ResultColumn]
    rows: list[list[Any]]
    total_rows: int
    offset: int
    limit: int
