"""Sliding-window request counts per bucket, shared by every instance: one appended row per request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loupe.db import fetch_one

# The hits of one bucket in its window (parameters: the bucket, the window's seconds), as a CTE `recent`
# that other statements join to count a request in the same round trip as their own work.
RECENT_HITS = (
    "recent AS (SELECT count(*) AS hits, min(created_at) AS oldest FROM rate_limit_hits"
    "  WHERE bucket = %s AND created_at > now() - make_interval(secs => %s))"
)


@dataclass(frozen=True)
class RateWindow:
    bucket: str
    window_seconds: int
    limit: int


def hit(rate: RateWindow) -> tuple[bool, datetime | None]:
    """Count this request if the window has room for it: whether it was counted, and the oldest
    counted request's time (when the window frees a place). A refused request is never counted."""
    row = fetch_one(
        "WITH " + RECENT_HITS + ","  # noqa: S608  # constants
        " added AS (INSERT INTO rate_limit_hits (bucket) SELECT %s FROM recent WHERE hits < %s RETURNING 1)"
        " SELECT EXISTS (SELECT FROM added) AS counted, oldest FROM recent",
        (rate.bucket, rate.window_seconds, rate.bucket, rate.limit),
    )
    assert row is not None
    return bool(row["counted"]), row["oldest"]
