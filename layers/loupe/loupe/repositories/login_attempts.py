"""Login attempts per email, for throttling repeated failures."""

from __future__ import annotations

from datetime import datetime

from loupe.db import execute, fetch_one


def lock_email(email: str) -> None:
    """Serialize attempts on one email for the rest of the transaction, so the count is exact."""
    execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", ("login:" + email,))


def recent_failures(email: str, window_seconds: int) -> tuple[int, datetime | None]:
    """Failures within the window since the last success, and the oldest of them."""
    row = fetch_one(
        "SELECT count(*) AS failures, min(created_at) AS oldest FROM login_attempts"
        " WHERE email = %(email)s AND NOT succeeded"
        " AND created_at > now() - make_interval(secs => %(window)s)"
        " AND created_at > coalesce((SELECT max(created_at) FROM login_attempts"
        "   WHERE email = %(email)s AND succeeded), '-infinity')",
        {"email": email, "window": window_seconds},
    )
    assert row is not None
    return int(row["failures"]), row["oldest"]


def record(email: str, ip: str | None, succeeded: bool) -> None:
    execute(
        "INSERT INTO login_attempts (email, ip, succeeded) VALUES (%s, %s::inet, %s)", (email, ip, succeeded)
    )
