"""What a chart draws of a result, by one rule whatever its size (docs/charts.md): rows stream chunk by
chunk, at most MAX_READ_ROWS of them within READ_SECONDS; aggregated charts fold them into groups as they
come, and what is still over a type's bound is sampled evenly or cut, and said so on the chart."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from loupe.models.visualizations import Aggregation

# Rows read at most: a million rows stream in a few seconds and one chunk (50,000 rows) is in memory at
# a time. A larger result is drawn from its first million rows, and the chart says so.
MAX_READ_ROWS = 1_000_000
READ_SECONDS = 10.0
# Marks drawn at most: more points than pixels only slow the renderer down.
MAX_POINTS = 5_000
MAX_BARS = 500
# A pie's smaller slices beyond this many are summed into one "Other" slice.
MAX_SLICES = 12
# Distinct groups an aggregation keeps; rows of groups beyond it are left out.
MAX_GROUPS = 10_000
OTHER = "Other"


def number(value: Any) -> float | None:
    """A cell as a number to draw (a decimal comes stored as text); None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


@dataclass
class Notes:
    """What the drawing left out, shown under the chart's title."""

    items: list[str] = field(default_factory=list)

    def add(self, note: str) -> None:
        if note not in self.items:
            self.items.append(note)


def read_bounded(rows: Iterable[Sequence[Any]], total_rows: int, notes: Notes) -> Iterator[Sequence[Any]]:
    """The rows, stopping at MAX_READ_ROWS or READ_SECONDS (checked every thousand rows)."""
    deadline = time.monotonic() + READ_SECONDS
    for index, row in enumerate(rows):
        if index >= MAX_READ_ROWS:
            notes.add(f"drawn from the first {MAX_READ_ROWS:,} of {total_rows:,} rows")
            return
        if index % 1000 == 999 and time.monotonic() > deadline:
            notes.add(f"drawn from the first {index:,} of {total_rows:,} rows (time bound)")
            return
        yield row


def stride_of(total_rows: int, limit: int) -> int:
    """Every how many rows one is drawn so that at most `limit` are."""
    return max(1, math.ceil(min(total_rows, MAX_READ_ROWS) / limit))


def sampled(
    rows: Iterable[Sequence[Any]], total_rows: int, limit: int, notes: Notes
) -> Iterator[Sequence[Any]]:
    """Every k-th row, k chosen from the row count so that at most `limit` rows come out."""
    stride = stride_of(total_rows, limit)
    if stride > 1:
        notes.add(f"every {stride:,}th of {total_rows:,} rows drawn")
    for index, row in enumerate(rows):
        if index % stride == 0:
            yield row


@dataclass
class Fold:
    """One group's running aggregate."""

    count: int = 0
    numbers: int = 0
    total: float = 0.0
    least: float | None = None
    most: float | None = None

    def add(self, value: Any) -> None:
        if value is None:
            return
        self.count += 1
        measured = number(value)
        if measured is None:
            return
        self.numbers += 1
        self.total += measured
        self.least = measured if self.least is None else min(self.least, measured)
        self.most = measured if self.most is None else max(self.most, measured)

    def value(self, aggregation: Aggregation) -> float | None:
        if aggregation == "count":
            return float(self.count)
        if aggregation == "sum":
            return self.total if self.numbers else None
        if aggregation == "avg":
            return self.total / self.numbers if self.numbers else None
        if aggregation == "min":
            return self.least
        return self.most


@dataclass
class Groups:
    """Aggregates by key, in the order keys first came, at most MAX_GROUPS keys."""

    notes: Notes
    folds: dict[tuple[Any, ...], Fold] = field(default_factory=dict)
    dropped: int = 0

    def add(self, key: tuple[Any, ...], value: Any) -> None:
        try:
            fold = self.folds.get(key)
        except TypeError:
            # A JSON or array cell (unhashable) is a key by its JSON text; every other key is used as it
            # is, with no conversion on this per-row path.
            key = tuple(
                json.dumps(part, sort_keys=True) if isinstance(part, list | dict) else part for part in key
            )
            fold = self.folds.get(key)
        if fold is None:
            if len(self.folds) >= MAX_GROUPS:
                self.dropped += 1
                self.notes.add(f"groups beyond the first {MAX_GROUPS:,} left out")
                return
            fold = self.folds[key] = Fold()
        fold.add(value)


def evenly(items: list[Any], limit: int, notes: Notes, what: str) -> list[Any]:
    """At most `limit` of the items, taken at even steps (the first one always)."""
    if len(items) <= limit:
        return items
    stride = math.ceil(len(items) / limit)
    notes.add(f"every {stride:,}th of {len(items):,} {what} drawn")
    return items[::stride]
