"""Reads a connector's row stream whole, for tests that look at a few rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loupe.connectors import Column, Session


@dataclass(frozen=True)
class Collected:
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool


def collect(session: Session, sql: str, parameters: Mapping[str, Any] | None, *, max_rows: int) -> Collected:
    """The first `max_rows` rows; `truncated` when the statement had more."""
    rows: list[tuple[Any, ...]] = []
    with session.stream(sql, parameters) as stream:
        for batch in stream.batches:
            rows.extend(batch)
            if len(rows) > max_rows:
                break
    return Collected(stream.columns, rows[:max_rows], len(rows) > max_rows)
