"""Sliding-window request counts per bucket, shared by every instance: one appended row per request."""

from __future__ import annotations

from datetime import datetime

from loupe.db import fetch_one


def hit(bucket: str, window_seconds: int, limit: int) -> tuple[bool, datetime | None]:
    """Count this request if the window has room for it: whether it was counted, and the oldest
    counted request's time (when the window frees a place). A refused request is never counted."""
    row = fetch_one(
        "WITH recent AS (SELECT count(*) AS hits, min(created_at) AS oldest FROM rate_limit_hits"
        "  WHERE bucket = %(bucket)s AND created_at > now() - make_interval(secs => %(window)s)),"
        " added AS (INSERT INTO rate_limit_hits (bucket) SELECT %(bucket)s FROM recent"
        "  WHERE hits < %(limit)s RETURNING 1)"
        " SELECT (SELECT count(*) FROM added) = 1 AS counted, oldest FROM recent",
        {"bucket": bucket, "window": window_seconds, "limit": limit},
    )
    assert row is not None
    return bool(row["counted"]), row["oldest"]
