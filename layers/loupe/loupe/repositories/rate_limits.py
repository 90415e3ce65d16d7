"""Sliding-window request counts per bucket, shared by every instance: one appended row per request."""

from __future__ import annotations

from datetime import datetime

from loupe.db import fetch_one


def hit(bucket: str, window_seconds: int) -> tuple[int, datetime | None]:
    """Count this request; the requests in the window including it, and the oldest one's time."""
    row = fetch_one(
        "WITH added AS (INSERT INTO rate_limit_hits (bucket) VALUES (%(bucket)s) RETURNING created_at)"
        " SELECT count(*) + 1 AS hits, min(created_at) AS oldest FROM rate_limit_hits"
        " WHERE bucket = %(bucket)s AND created_at > now() - make_interval(secs => %(window)s)",
        {"bucket": bucket, "window": window_seconds},
    )
    assert row is not None
    return int(row["hits"]), row["oldest"]
